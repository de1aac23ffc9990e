// bench/eval-qa.ts's --llamacpp flag: which llama.cpp sides run, and a bad value named in the error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LLAMACPP_DEFAULT, parseLlamacppFlag } from '../../bench/llamacpp-side';

test('the default runs both GGUF types one prompt at a time and batched', () => {
  assert.deepEqual(parseLlamacppFlag(LLAMACPP_DEFAULT), [
    { type: 'f32', batched: false },
    { type: 'f32', batched: true },
    { type: 'q8_0', batched: false },
    { type: 'q8_0', batched: true },
  ]);
});

test('"no" runs none; a list keeps its order', () => {
  assert.deepEqual(parseLlamacppFlag('no'), []);
  assert.deepEqual(parseLlamacppFlag('q8_0-batch, f32'), [
    { type: 'q8_0', batched: true },
    { type: 'f32', batched: false },
  ]);
});

test('an unknown type is an error naming it and the expected values', () => {
  assert.throws(
    () => parseLlamacppFlag('f32,q4_0'),
    /--llamacpp: got "q4_0"; expected "no" or a comma list of f32, f32-batch, q8_0, q8_0-batch/,
  );
  assert.throws(() => parseLlamacppFlag('batch'), /got "batch"/);
});
