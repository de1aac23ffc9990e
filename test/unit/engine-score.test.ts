// scoreContinuation on the real tiny export, checked against a float64 PyTorch forward pass.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel, scoreContinuation, type EngineModel } from '../../src/engine';
import { perplexity } from '../../src/metrics';
import { ensureTinyOnnx, makePrompts, referenceLogProbs } from '../helpers/engine-fixture';

let model: EngineModel;

before(async () => {
  model = await loadModel(await ensureTinyOnnx(), { intraOpNumThreads: 1 });
});

after(async () => {
  await model?.release();
});

test('summed log-probs match PyTorch for pairs of different lengths in one padded batch', async () => {
  const vocab = model.config.vocabSize;
  const prompts = makePrompts([6, 1, 10, 3], vocab);
  const continuations = makePrompts([4, 7, 1, 5], vocab).map((c) => c.map((t) => (t * 3) % vocab));
  const reference = await referenceLogProbs(prompts, continuations);
  for (const batchSize of [8, 1]) {
    const scores = await scoreContinuation(model, prompts, continuations, { batchSize });
    scores.forEach((score, i) => {
      assert.equal(score.tokenCount, continuations[i]!.length);
      assert.equal(score.error, undefined);
      assert.ok(Math.abs(score.sumLogProb - reference[i]!) < 1e-3, `pair ${i}: ${score.sumLogProb} vs ${reference[i]}`);
    });
  }
  // A random model is close to uniform over the vocabulary: perplexity near the vocab size.
  const scores = await scoreContinuation(model, prompts, continuations);
  const ppl = perplexity(
    scores.reduce((s, x) => s + x.sumLogProb, 0),
    scores.reduce((s, x) => s + x.tokenCount, 0),
  );
  assert.ok(ppl > vocab / 4 && ppl < vocab * 4, `perplexity ${ppl}`);
});

test('edge cases: empty continuation scores 0 over 0 tokens; empty prompt is an error; too long is truncated', async () => {
  const { maxPositions, vocabSize } = model.config;
  const [p, c] = makePrompts([4, 3], vocabSize);
  const [long] = makePrompts([maxPositions], vocabSize);
  const scores = await scoreContinuation(model, [p!, [], long!, p!], [[], c!, c!, long!]);
  assert.deepEqual(scores[0], { sumLogProb: 0, tokenCount: 0, truncated: false });
  assert.equal(scores[1]!.error, 'empty prompt');
  assert.equal(scores[2]!.truncated, true);
  assert.equal(scores[2]!.tokenCount, 3);
  assert.ok(scores[2]!.sumLogProb < 0);
  assert.match(scores[3]!.error!, /continuation has/);
  await assert.rejects(scoreContinuation(model, [p!], []), TypeError);
});
