// Greedy generation on the real tiny export, checked against PyTorch HF generate.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generate, loadModel, type EngineModel, type GenerateResult } from '../../src/engine';
import { ensureTinyOnnx, makePrompts, referenceGreedy } from '../helpers/engine-fixture';

const MAX_NEW = 12;
// Different lengths in one batch, so every row but the longest is left-padded; 1 is the edge case.
const LENGTHS = [5, 1, 12, 8, 3];

let model: EngineModel;
let prompts: number[][];
let batched: GenerateResult;

before(async () => {
  model = await loadModel(await ensureTinyOnnx(), { intraOpNumThreads: 1 });
  prompts = makePrompts(LENGTHS, model.config.vocabSize);
  batched = await generate(model, prompts, { maxNewTokens: MAX_NEW, batchSize: 8 });
});

after(async () => {
  await model?.release();
});

const tokensOf = (result: GenerateResult) => result.sequences.map((s) => s.tokens);

test('one left-padded batch reproduces HF greedy generate run one prompt at a time', async () => {
  const { eosTokenIds, padTokenId } = model.config;
  const reference = await referenceGreedy(prompts, MAX_NEW, eosTokenIds, padTokenId);
  assert.equal(batched.stats.batches.length, 1);
  batched.sequences.forEach((seq, i) => {
    const ref = reference[i]!;
    const endsWithEos = ref.length > 0 && eosTokenIds.includes(ref.at(-1)!);
    assert.deepEqual(seq.tokens, endsWithEos ? ref.slice(0, -1) : ref, `prompt ${i} (length ${LENGTHS[i]})`);
    assert.equal(seq.finishReason, endsWithEos ? 'eos' : 'length');
    assert.equal(seq.hitLimit, !endsWithEos);
    assert.equal(seq.generatedTokens, ref.length);
  });
});

test('without the KV cache the tokens are identical', async () => {
  const uncached = await generate(model, prompts, { maxNewTokens: MAX_NEW, batchSize: 8, useCache: false });
  assert.deepEqual(tokensOf(uncached), tokensOf(batched));
});

test('batch sizes 1 and 4 give the same outputs as one batch, in input order', async () => {
  const one = await generate(model, prompts, { maxNewTokens: MAX_NEW, batchSize: 1 });
  const four = await generate(model, prompts, { maxNewTokens: MAX_NEW, batchSize: 4 });
  assert.equal(one.stats.batches.length, 5);
  // Sorted by length (1, 3, 5, 8, 12) and cut where padding is least (planBatches): [1, 3, 5] pads
  // to 5 and [8, 12] to 12, 39 tokens, where fixed chunks [1, 3, 5, 8] + [12] would pad to 44.
  assert.deepEqual(
    four.stats.batches.map((b) => [b.size, b.promptWidth]),
    [
      [3, 5],
      [2, 12],
    ],
  );
  assert.deepEqual(tokensOf(one), tokensOf(batched));
  assert.deepEqual(tokensOf(four), tokensOf(batched));
});

test('throughput counts each sequence only up to its own EOS', async () => {
  // With no EOS every row runs to the limit; then pick as EOS a token that ends some rows early
  // while at least one other row never produces it, so that the batch keeps stepping.
  const free = tokensOf(await generate(model, prompts, { maxNewTokens: MAX_NEW, eosTokenIds: [] }));
  const candidates = [...new Set(free.flat())].filter(
    (t) =>
      free.some((out) => out.indexOf(t) >= 0 && out.indexOf(t) < MAX_NEW - 2) && free.some((out) => !out.includes(t)),
  );
  assert.ok(candidates.length > 0, `no usable EOS candidate in ${JSON.stringify(free)}`);
  const eos = candidates[0]!;
  const result = await generate(model, prompts, { maxNewTokens: MAX_NEW, eosTokenIds: [eos] });
  let expectedTotal = 0;
  result.sequences.forEach((seq, i) => {
    const stop = free[i]!.indexOf(eos);
    const expected = stop >= 0 ? stop + 1 : MAX_NEW;
    expectedTotal += expected;
    assert.deepEqual(seq.tokens, stop >= 0 ? free[i]!.slice(0, stop) : free[i], `prompt ${i}`);
    assert.equal(seq.generatedTokens, expected);
    assert.equal(seq.finishReason, stop >= 0 ? 'eos' : 'length');
  });
  const { stats } = result;
  assert.equal(stats.generatedTokens, expectedTotal);
  assert.ok(expectedTotal < prompts.length * MAX_NEW, 'some row must have stopped early');
  assert.ok(Math.abs((stats.tokensPerSecond * stats.wallMs) / 1000 - expectedTotal) < 1e-6);
  const limited = result.sequences.filter((s) => s.hitLimit).length;
  assert.equal(stats.hitLimitFraction, limited / prompts.length);
  // The batch stepped until its last row finished: MAX_NEW − 1 decode steps after the prefill.
  assert.equal(stats.batches[0]!.stepMs.length, MAX_NEW - 1);
  assert.ok(stats.ttftP50Ms! > 0 && stats.perTokenP50Ms! > 0 && stats.perTokenP95Ms! >= stats.perTokenP50Ms!);
});

test('stop sequences end a row and are removed from its output', async () => {
  const free = tokensOf(batched);
  const stopSeq = free[0]!.slice(2, 4);
  const result = await generate(model, [prompts[0]!], { maxNewTokens: MAX_NEW, stopSequences: [stopSeq] });
  const seq = result.sequences[0]!;
  assert.equal(seq.finishReason, 'stop');
  // The first place the output ends with stopSeq is at or before index 4.
  const end = free[0]!.findIndex((_, j) => j >= 1 && free[0]![j - 1] === stopSeq[0] && free[0]![j] === stopSeq[1]);
  assert.deepEqual(seq.tokens, free[0]!.slice(0, end - 1));
  assert.equal(seq.generatedTokens, end + 1);
});

test('empty prompts and bad ids are per-item errors; the other prompts still run', async () => {
  const result = await generate(model, [[], prompts[0]!, [model.config.vocabSize]], { maxNewTokens: MAX_NEW });
  const [empty, ok, bad] = result.sequences;
  assert.deepEqual([empty!.finishReason, empty!.error, empty!.tokens], ['error', 'empty prompt', []]);
  assert.equal(bad!.finishReason, 'error');
  assert.match(bad!.error!, /outside the vocabulary/);
  assert.deepEqual(ok!.tokens, batched.sequences[0]!.tokens);
  assert.equal(result.stats.generatedTokens, ok!.generatedTokens);
});

test('too-long prompts are cut from the left (flagged) or, on request, errors', async () => {
  const { maxPositions, vocabSize } = model.config;
  const maxNew = 4;
  const [long] = makePrompts([maxPositions - maxNew + 3], vocabSize);
  const truncated = await generate(model, [long!], { maxNewTokens: maxNew });
  const kept = long!.slice(3);
  const direct = await generate(model, [kept], { maxNewTokens: maxNew });
  assert.equal(truncated.sequences[0]!.truncated, true);
  assert.equal(direct.sequences[0]!.truncated, false);
  assert.deepEqual(truncated.sequences[0]!.tokens, direct.sequences[0]!.tokens);
  const refused = await generate(model, [long!], { maxNewTokens: maxNew, longPrompt: 'error' });
  assert.equal(refused.sequences[0]!.finishReason, 'error');
  assert.match(refused.sequences[0]!.error!, /more than/);
});

test('invalid options are rejected before any work', async () => {
  await assert.rejects(generate(model, prompts, { maxNewTokens: 0 }), TypeError);
  await assert.rejects(generate(model, prompts, { batchSize: 0 }), TypeError);
  await assert.rejects(generate(model, prompts, { maxNewTokens: model.config.maxPositions }), TypeError);
  await assert.rejects(generate(model, prompts, { stopSequences: [[]] }), TypeError);
});
