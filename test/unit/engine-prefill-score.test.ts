// One prefill per item (issue #15): generate scores reference continuations from its own prefill,
// keeps greedy tokens identical, and the graph returns only the logits it is asked for.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from 'onnxruntime-node';
import { generate, loadModel, scoreContinuation, type EngineModel } from '../../src/engine';
import { fullInputs, leftPad, logitsToKeep } from '../../src/engine/feeds';
import { KvCache } from '../../src/engine/kv-cache';
import { ensurePreLogitsCountOnnx, ensureTinyOnnx, makePrompts } from '../helpers/engine-fixture';

const MAX_NEW = 8;
let model: EngineModel;

before(async () => {
  model = await loadModel(await ensureTinyOnnx(), { intraOpNumThreads: 1 });
});

after(async () => {
  await model?.release();
});

test('num_logits_to_keep = 1 returns only the last position, equal to that column of all of them', async () => {
  const { vocabSize } = model.config;
  const batch = leftPad(makePrompts([6, 3], vocabSize), model.config.padTokenId);
  const run = async (keep: number) => {
    const cache = KvCache.empty(model.config, 2);
    const out = await model.run({ ...fullInputs(batch), ...cache.feed(), ...logitsToKeep(model.inputNames, keep) }, [
      'logits',
    ]);
    return out.logits as Tensor;
  };
  const all = await run(0);
  const last = await run(1);
  const three = await run(3);
  assert.deepEqual(all.dims, [2, 6, vocabSize]);
  assert.deepEqual(last.dims, [2, 1, vocabSize]);
  assert.deepEqual(three.dims, [2, 3, vocabSize]);
  const a = all.data as Float32Array;
  const l = last.data as Float32Array;
  for (let r = 0; r < 2; r++) {
    for (let v = 0; v < vocabSize; v += 97) {
      assert.ok(Math.abs(a[(r * 6 + 5) * vocabSize + v]! - l[r * vocabSize + v]!) < 1e-5, `row ${r} vocab ${v}`);
    }
  }
  // An export without the input gets no feed for it (it returns every position).
  assert.deepEqual(logitsToKeep(['input_ids'], 1), {});
});

test('scores from the generation prefill equal scoreContinuation within 1e-4; tokens are unchanged', async () => {
  const { vocabSize } = model.config;
  const prompts = makePrompts([5, 1, 12, 8, 3, 9], vocabSize);
  const continuations = makePrompts([3, 1, 4, 2, 6, 1], vocabSize).map((c) => c.map((t) => (t * 7) % vocabSize));
  const plain = await generate(model, prompts, { maxNewTokens: MAX_NEW, batchSize: 4 });
  const old = await scoreContinuation(model, prompts, continuations, { batchSize: 4 });
  for (const batchSize of [4, 1, 8]) {
    const joint = await generate(model, prompts, {
      maxNewTokens: MAX_NEW,
      batchSize,
      scoreContinuations: continuations,
    });
    assert.deepEqual(
      joint.sequences.map((s) => s.tokens),
      plain.sequences.map((s) => s.tokens),
      `batch ${batchSize}`,
    );
    assert.equal(joint.scoredInPrefill, prompts.length);
    joint.scores!.forEach((s, i) => {
      assert.equal(s.tokenCount, old[i]!.tokenCount);
      assert.equal(s.truncated, false);
      assert.ok(
        Math.abs(s.sumLogProb - old[i]!.sumLogProb) < 1e-4,
        `item ${i}: ${s.sumLogProb} vs ${old[i]!.sumLogProb}`,
      );
    });
  }
});

test('items the prefill cannot score (truncated, empty, too long, bad) fall back to scoreContinuation', async () => {
  const { maxPositions, vocabSize } = model.config;
  const [p, c] = makePrompts([4, 3], vocabSize);
  const [long] = makePrompts([maxPositions - 2], vocabSize); // truncated for generation (room for MAX_NEW)
  const prompts = [p!, p!, long!, [], p!, p!];
  const continuations = [c!, [], c!, c!, [vocabSize + 5], long!];
  const joint = await generate(model, prompts, { maxNewTokens: MAX_NEW, scoreContinuations: continuations });
  const old = await scoreContinuation(model, prompts, continuations);
  assert.equal(joint.scoredInPrefill, 1);
  joint.scores!.forEach((s, i) => {
    assert.equal(s.tokenCount, old[i]!.tokenCount, `item ${i}`);
    assert.equal(s.truncated, old[i]!.truncated, `item ${i}`);
    assert.equal(s.error, old[i]!.error, `item ${i}`);
    assert.ok(Math.abs(s.sumLogProb - old[i]!.sumLogProb) < 1e-4, `item ${i}`);
  });
  await assert.rejects(generate(model, [p!], { scoreContinuations: [] }), TypeError);
});

test('an export without num_logits_to_keep (before issue #15) still loads and gives the same tokens and scores', async () => {
  const old = await loadModel(await ensurePreLogitsCountOnnx(), { intraOpNumThreads: 1 });
  try {
    assert.ok(!old.inputNames.includes('num_logits_to_keep'));
    const { vocabSize } = model.config;
    const prompts = makePrompts([5, 1, 12, 8], vocabSize);
    const continuations = makePrompts([3, 1, 4, 2], vocabSize);
    const opts = { maxNewTokens: MAX_NEW, batchSize: 4, scoreContinuations: continuations };
    const [a, b] = [await generate(model, prompts, opts), await generate(old, prompts, opts)];
    assert.deepEqual(
      b.sequences.map((s) => s.tokens),
      a.sequences.map((s) => s.tokens),
    );
    b.scores!.forEach((s, i) => assert.ok(Math.abs(s.sumLogProb - a.scores![i]!.sumLogProb) < 1e-4, `item ${i}`));
  } finally {
    await old.release();
  }
});
