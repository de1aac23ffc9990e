// Speculative decoding on real tiny exports: the output must be the target's own greedy output,
// token for token, whatever the draft proposes; the counters must add up.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InferenceSession } from 'onnxruntime-node';
import {
  DraftMismatchError,
  EngineModel,
  checkDraftPair,
  generate,
  generateSpeculative,
  loadModel,
  readEngineConfig,
  type SpeculativeResult,
} from '../../src/engine';
import { ensureSpeculativeFixture, type SpeculativeFixture } from '../../bench/engine-models';
import { makePrompts } from '../helpers/engine-fixture';

const MAX_NEW = 20;
// 24 prompts from 1 to ~90 tokens, so batches mix lengths and 1 is covered.
const LENGTHS = Array.from({ length: 24 }, (_, i) => 1 + ((i * 37) % 90));

let fixture: SpeculativeFixture;
let target: EngineModel;
let shallow: EngineModel;
let random: EngineModel;
let prompts: number[][];
let reference: number[][];
const shallowRuns = new Map<number, SpeculativeResult>();
const scratch = mkdtempSync(join(tmpdir(), 'engine-speculative-'));

before(async () => {
  fixture = await ensureSpeculativeFixture();
  const open = (dir: string) => loadModel(dir, { intraOpNumThreads: 1 });
  [target, shallow, random] = await Promise.all([
    open(fixture.target),
    open(fixture.shallowDraft),
    open(fixture.randomDraft),
  ]);
  prompts = makePrompts(LENGTHS, target.config.vocabSize);
  reference = (await generate(target, prompts, { maxNewTokens: MAX_NEW, batchSize: 8 })).sequences.map((s) => s.tokens);
  for (const gamma of [1, 3, 5]) {
    shallowRuns.set(gamma, await generateSpeculative(target, shallow, prompts, { maxNewTokens: MAX_NEW, gamma }));
  }
});

after(async () => {
  await Promise.all([target, shallow, random].map((m) => m?.release()));
  rmSync(scratch, { recursive: true, force: true });
});

const tokensOf = (result: SpeculativeResult) => result.sequences.map((s) => s.tokens);

/** Counters every run must satisfy, whatever the draft. */
function assertAccounting(result: SpeculativeResult, batchSize: number): void {
  const { stats, sequences } = result;
  for (const [i, s] of sequences.entries()) {
    assert.ok(s.acceptedTokens >= 0 && s.acceptedTokens <= s.proposedTokens, `prompt ${i}`);
    assert.ok(s.acceptanceRate !== null && s.acceptanceRate >= 0 && s.acceptanceRate <= 1, `prompt ${i}`);
    // Each target pass yields its accepted proposals plus its own token; only a pass cut short by
    // an EOS inside the accepted proposals yields one less.
    const perPass = s.generatedTokens - s.acceptedTokens - s.targetPasses;
    assert.ok(perPass === 0 || (perPass === -1 && s.finishReason === 'eos'), `prompt ${i}: ${JSON.stringify(s)}`);
    // One draft pass proposes one token per row.
    if (batchSize === 1) assert.equal(s.draftPasses, s.proposedTokens, `prompt ${i}`);
    assert.equal(s.generatedTokens, s.tokens.length + (s.finishReason === 'eos' ? 1 : 0));
  }
  const sum = (f: (s: (typeof sequences)[number]) => number) => sequences.reduce((a, s) => a + f(s), 0);
  assert.equal(
    stats.generatedTokens,
    sum((s) => s.generatedTokens),
  );
  assert.equal(
    stats.proposedTokens,
    sum((s) => s.proposedTokens),
  );
  assert.equal(
    stats.acceptedTokens,
    sum((s) => s.acceptedTokens),
  );
  assert.equal(stats.acceptanceRate, stats.acceptedTokens / stats.proposedTokens);
  if (batchSize === 1) {
    assert.equal(
      stats.targetPasses,
      sum((s) => s.targetPasses),
    );
    assert.equal(
      stats.draftPasses,
      sum((s) => s.draftPasses),
    );
  }
  assert.ok(Math.abs((stats.tokensPerSecond * stats.wallMs) / 1000 - stats.generatedTokens) < 1e-6);
  assert.ok(stats.targetMs > 0 && stats.draftMs > 0 && stats.targetMs + stats.draftMs <= stats.wallMs);
}

test('a shallow copy of the target as draft: identical to target-only greedy for γ = 1, 3, 5', () => {
  for (const [gamma, result] of shallowRuns) {
    assert.deepEqual(tokensOf(result), reference, `γ = ${gamma}`);
    assertAccounting(result, 1);
    // No EOS within 20 tokens for these prompts: every prompt ran to the limit.
    assert.equal(result.stats.generatedTokens, prompts.length * MAX_NEW);
    // The draft shares embeddings and the first layer: it must agree well beyond chance.
    assert.ok(result.stats.acceptanceRate! > 0.05, `γ = ${gamma}: acceptance ${result.stats.acceptanceRate}`);
    // Accepted proposals save target passes: one pass per token without speculation.
    assert.equal(result.stats.targetPasses, result.stats.generatedTokens - result.stats.acceptedTokens);
    assert.ok(result.stats.targetPasses < prompts.length * MAX_NEW);
  }
});

test('batches of 4 (rows accept different counts, masked cache columns) give the same tokens', async () => {
  const result = await generateSpeculative(target, shallow, prompts, { maxNewTokens: MAX_NEW, gamma: 3, batchSize: 4 });
  assert.deepEqual(tokensOf(result), reference);
  assertAccounting(result, 4);
  assert.ok(result.stats.targetPasses < shallowRuns.get(3)!.stats.targetPasses);
});

test('an unrelated random draft: acceptance is low, the output is still the target’s', async () => {
  const result = await generateSpeculative(target, random, prompts, { maxNewTokens: MAX_NEW, gamma: 3 });
  assert.deepEqual(tokensOf(result), reference);
  assertAccounting(result, 1);
  assert.ok(result.stats.acceptanceRate! < shallowRuns.get(3)!.stats.acceptanceRate!);
  assert.ok(result.stats.acceptanceRate! < 0.05, `acceptance ${result.stats.acceptanceRate}`);
});

test('EOS ends a sequence wherever it falls in a round and is counted like generate counts it', async () => {
  // An EOS that some outputs contain early (in the middle of a round, or as an accepted proposal)
  // while others never produce it.
  const candidates = [...new Set(reference.flat())].filter(
    (t) =>
      reference.filter((out) => out.includes(t) && out.indexOf(t) < MAX_NEW - 3).length >= 2 &&
      reference.some((out) => !out.includes(t)),
  );
  assert.ok(candidates.length > 0, 'no usable EOS candidate');
  const eosTokenIds = [candidates[0]!];
  const expected = await generate(target, prompts, { maxNewTokens: MAX_NEW, eosTokenIds });
  for (const batchSize of [1, 4]) {
    const result = await generateSpeculative(target, shallow, prompts, {
      maxNewTokens: MAX_NEW,
      gamma: 3,
      eosTokenIds,
      batchSize,
    });
    result.sequences.forEach((s, i) => {
      const e = expected.sequences[i]!;
      assert.deepEqual(
        [s.tokens, s.finishReason, s.generatedTokens],
        [e.tokens, e.finishReason, e.generatedTokens],
        `prompt ${i}`,
      );
    });
    assert.equal(result.stats.generatedTokens, expected.stats.generatedTokens);
    assert.ok(result.sequences.some((s) => s.finishReason === 'eos'));
    assert.equal(result.stats.hitLimitFraction, expected.stats.hitLimitFraction);
    assertAccounting(result, batchSize);
  }
});

test('stop sequences, empty prompts and bad ids behave as in generate', async () => {
  const stopSequences = [reference[3]!.slice(4, 6)];
  const inputs = [[], prompts[3]!, [target.config.vocabSize]];
  const spec = await generateSpeculative(target, shallow, inputs, { maxNewTokens: MAX_NEW, stopSequences });
  const plain = await generate(target, inputs, { maxNewTokens: MAX_NEW, stopSequences });
  const pick = (s: { tokens: number[]; finishReason: string; generatedTokens: number; error?: string }) => [
    s.tokens,
    s.finishReason,
    s.generatedTokens,
    s.error,
  ];
  assert.deepEqual(spec.sequences.map(pick), plain.sequences.map(pick));
  assert.equal(spec.sequences[1]!.finishReason, 'stop');
});

test('drafts with another vocabulary or tokenizer are refused before any pass', async () => {
  // An engine.json copy claiming another vocabulary size, checked from the files alone …
  const badVocab = join(scratch, 'bad-vocab');
  const config = JSON.parse(readFileSync(join(fixture.randomDraft, 'engine.json'), 'utf8')) as Record<string, unknown>;
  const writeConfig = (dir: string, patch: Record<string, unknown>) => {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'engine.json'), JSON.stringify({ ...config, ...patch }));
  };
  writeConfig(badVocab, { vocabSize: target.config.vocabSize + 64 });
  const side = async (dir: string) => ({ dir, config: await readEngineConfig(join(dir, 'engine.json')) });
  await assert.rejects(checkDraftPair(target, await side(badVocab)), (e: unknown) => {
    assert.ok(e instanceof DraftMismatchError);
    assert.equal(e.field, 'vocabSize');
    assert.deepEqual([e.targetValue, e.draftValue], [target.config.vocabSize, target.config.vocabSize + 64]);
    return true;
  });
  // … and through generateSpeculative with an opened model carrying that config: nothing runs.
  const session = await InferenceSession.create(join(fixture.randomDraft, 'model.onnx'));
  const mismatched = new EngineModel(session, (await side(badVocab)).config, badVocab, 'cpu');
  try {
    await assert.rejects(generateSpeculative(target, mismatched, prompts.slice(0, 2)), DraftMismatchError);
  } finally {
    await mismatched.release();
  }
  // Tokenizer hashes are compared where both engine.json files carry one.
  const [shaA, shaB] = [join(scratch, 'sha-a'), join(scratch, 'sha-b')];
  writeConfig(shaA, { tokenizerSha256: 'a'.repeat(64) });
  writeConfig(shaB, { tokenizerSha256: 'b'.repeat(64) });
  await assert.rejects(checkDraftPair(await side(shaA), await side(shaB)), /tokenizerSha256/);
  await checkDraftPair(await side(shaA), await side(shaA));
  // An export from before engine.json carried the hash: vocabSize decides.
  const noSha = join(scratch, 'no-sha');
  writeConfig(noSha, { tokenizerSha256: undefined });
  await checkDraftPair(await side(shaA), await side(noSha));
  // Exports record it now: the fixture pair shares one tokenizer, so one hash.
  assert.match(String(config.tokenizerSha256), /^[0-9a-f]{64}$/);
  assert.equal(
    JSON.parse(readFileSync(join(fixture.target, 'engine.json'), 'utf8')).tokenizerSha256,
    config.tokenizerSha256,
  );
});

test('invalid options are TypeErrors', async () => {
  for (const options of [{ gamma: 0 }, { gamma: 2.5 }, { batchSize: 0 }, { maxNewTokens: 0 }, { eosTokenIds: [-1] }]) {
    await assert.rejects(
      generateSpeculative(target, shallow, prompts.slice(0, 1), options),
      TypeError,
      JSON.stringify(options),
    );
  }
});
