// Prompt-lookup decoding on a real tiny export: proposals come from the sequence itself, and the
// output must be the target's own greedy output, token for token, whatever they propose.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  EngineModel,
  generate,
  generatePromptLookup,
  loadModel,
  lookupProposal,
  type SpeculativeResult,
} from '../../src/engine';
import { ensureSpeculativeFixture } from '../../bench/engine-models';
import { makePrompts } from '../helpers/engine-fixture';

const MAX_NEW = 20;
let target: EngineModel;
let prompts: number[][];
let reference: number[][];

before(async () => {
  const fixture = await ensureSpeculativeFixture();
  target = await loadModel(fixture.target, { intraOpNumThreads: 1 });
  // Half the prompts repeat a span, as a passage that an answer is copied from does; the others
  // have no repeats, so their proposals come only from what the model itself generates.
  const plain = makePrompts(
    Array.from({ length: 12 }, (_, i) => 8 + ((i * 29) % 60)),
    target.config.vocabSize,
  );
  prompts = plain.map((p, i) => (i % 2 ? p : [...p, ...p.slice(0, Math.ceil(p.length / 2))]));
  reference = (await generate(target, prompts, { maxNewTokens: MAX_NEW, batchSize: 4 })).sequences.map((s) => s.tokens);
});

after(async () => {
  await target?.release();
});

test('lookupProposal: the tokens after the latest earlier match of the longest suffix n-gram', () => {
  // Suffix [1, 2] last occurred at index 4 (latest beats the one at 0): propose what followed it.
  assert.deepEqual(lookupProposal([1, 2, 7, 8, 1, 2, 9, 9, 1, 2], 3, 4), [9, 9, 1, 2]);
  assert.deepEqual(lookupProposal([1, 2, 7, 8, 1, 2, 9, 9, 1, 2], 3, 1), [9]);
  // A 3-gram match wins over a later 1-gram one.
  assert.deepEqual(lookupProposal([5, 6, 7, 1, 4, 7, 5, 6, 7], 3, 2), [1, 4]);
  // Falls back to shorter n-grams, and the proposal stops at the end of the sequence.
  assert.deepEqual(lookupProposal([3, 9, 4, 3], 3, 5), [9, 4, 3]);
  assert.deepEqual(lookupProposal([1, 2, 3, 4], 3, 4), []);
  assert.deepEqual(lookupProposal([1, 2, 1, 2], 3, 0), []);
  assert.deepEqual(lookupProposal([7], 3, 2), []);
});

test('lookupProposal: earlier outputs are searched at each n after the sequence itself, newest first', () => {
  const corpus = [
    [40, 41, 42, 43],
    [50, 7, 8, 60, 61],
    [70, 7, 8, 80, 81, 82],
  ];
  // [7, 8] is not earlier in the sequence: the newest output with it proposes what followed there.
  assert.deepEqual(lookupProposal([1, 2, 7, 8], 3, 2, corpus), [80, 81]);
  // The sequence's own 2-gram match wins over the outputs' at the same n …
  assert.deepEqual(lookupProposal([7, 8, 5, 7, 8], 3, 2, corpus), [5, 7]);
  // … and a longer match in the outputs wins over a shorter one in the sequence.
  assert.deepEqual(lookupProposal([3, 8, 4, 42], 3, 1, [[1, 3, 8, 9, 4, 42, 43]]), [43]);
  assert.deepEqual(lookupProposal([4, 41, 42], 3, 3, corpus), [43]);
  // A match at an output's very end has nothing after it.
  assert.deepEqual(lookupProposal([9, 43], 3, 2, corpus), []);
  assert.deepEqual(lookupProposal([1, 2, 3], 3, 2, []), []);
});

function assertAccounting(result: SpeculativeResult): void {
  for (const [i, s] of result.sequences.entries()) {
    assert.ok(s.acceptedTokens >= 0 && s.acceptedTokens <= s.proposedTokens, `prompt ${i}`);
    assert.equal(s.draftPasses, 0, `prompt ${i}: no draft model`);
    // Each target pass yields its accepted proposals plus its own token (one less when an EOS
    // inside the accepted proposals cut it short).
    const extra = s.generatedTokens - s.acceptedTokens - s.targetPasses;
    assert.ok(extra === 0 || (extra === -1 && s.finishReason === 'eos'), `prompt ${i}: ${JSON.stringify(s)}`);
  }
  const { stats } = result;
  assert.equal(
    stats.acceptedTokens,
    result.sequences.reduce((a, s) => a + s.acceptedTokens, 0),
  );
  assert.equal(stats.draftPasses, 0);
  assert.equal(stats.draftMs, 0);
}

test('identical to target-only greedy decoding for γ = 1, 4 and batches of 1 and 4, in fewer target passes', async () => {
  for (const [gamma, batchSize] of [
    [1, 1],
    [4, 1],
    [4, 4],
  ] as const) {
    const result = await generatePromptLookup(target, prompts, { maxNewTokens: MAX_NEW, gamma, batchSize });
    const label = `γ = ${gamma}, batch ${batchSize}`;
    assert.deepEqual(
      result.sequences.map((s) => s.tokens),
      reference,
      label,
    );
    assertAccounting(result);
    // A tiny random model repeats itself, and half the prompts repeat spans: lookups must hit.
    assert.ok(
      result.stats.proposedTokens > 0 && result.stats.acceptedTokens > 0,
      `${label}: ${JSON.stringify(result.stats)}`,
    );
    if (batchSize === 1) assert.ok(result.stats.targetPasses < result.stats.generatedTokens, label);
  }
});

test('history: earlier outputs cut target passes, and the tokens stay the target-only ones', async () => {
  const options = { maxNewTokens: MAX_NEW, gamma: 4 };
  const alone = await generatePromptLookup(target, prompts, options);
  // Each prompt again, with every output (its own among them) as history: its own output is the
  // longest match there is, so far fewer passes are needed; the tokens cannot change.
  const withHistory = await generatePromptLookup(target, prompts, { ...options, history: reference });
  assert.deepEqual(
    withHistory.sequences.map((s) => s.tokens),
    reference,
  );
  assertAccounting(withHistory);
  assert.ok(
    withHistory.stats.targetPasses < alone.stats.targetPasses,
    `${withHistory.stats.targetPasses} passes with history vs ${alone.stats.targetPasses} without`,
  );
});

test('runs in the calling thread as in the engine process, and rejects bad options', async () => {
  const local = await loadModel(target.dir, { intraOpNumThreads: 1, runIn: 'main' });
  try {
    const result = await generatePromptLookup(local, prompts.slice(0, 4), { maxNewTokens: MAX_NEW, gamma: 3 });
    assert.deepEqual(
      result.sequences.map((s) => s.tokens),
      reference.slice(0, 4),
    );
  } finally {
    await local.release();
  }
  await assert.rejects(
    generatePromptLookup(target, prompts, { maxNgram: 0 }),
    /maxNgram must be an integer in \[1, 16\]/,
  );
  await assert.rejects(generatePromptLookup(target, prompts, { gamma: 0 }), /gamma must be an integer/);
});
