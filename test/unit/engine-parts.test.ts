// Engine building blocks that need no model: padding, positions, batch plan, stop rules,
// engine.json parsing, the graph contract check and the feed check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, type InferenceSession } from 'onnxruntime-node';
import { appendMaskColumn, leftPad, logitsToKeep, positionIds } from '../../src/engine/feeds';
import { scoringLayout } from '../../src/engine/decode-batch';
import { argmaxFromEnd } from '../../src/engine/logits';
import { inInputOrder, lengthBuckets } from '../../src/engine/buckets';
import { planBatches, preparePrompts } from '../../src/engine/prompts';
import { SequenceState } from '../../src/engine/sequence-state';
import { percentile } from '../../src/engine/stats';
import { parseEngineConfig, type EngineConfig } from '../../src/engine/config';
import { kvNames, validateGraph } from '../../src/engine/contract';
import { checkFeed } from '../../src/engine/feed-check';
import { EngineConfigError, FeedError, GraphContractError } from '../../src/engine/errors';

test('leftPad right-aligns rows and masks the pads', () => {
  const batch = leftPad([[5, 6, 7], [8]], 0);
  assert.equal(batch.width, 3);
  assert.deepEqual([...batch.ids], [5, 6, 7, 0, 0, 8]);
  assert.deepEqual([...batch.mask], [1, 1, 1, 0, 0, 1]);
});

test('positionIds = cumsum(mask) − 1 clamped at 0', () => {
  const mask = Uint8Array.from([0, 0, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual([...positionIds(mask, 2, 4)].map(Number), [0, 0, 0, 1, 0, 1, 2, 3]);
});

test('appendMaskColumn adds one column per row', () => {
  const out = appendMaskColumn(Uint8Array.from([0, 1, 1, 1]), 2, 2, 1);
  assert.deepEqual([...out], [0, 1, 1, 1, 1, 1]);
});

test('preparePrompts: empty → error, bad ids → error, long → truncated from the left or error', () => {
  const [empty, bad, fits, long] = preparePrompts([[], [1, 99], [1, 2, 3], [1, 2, 3, 4, 5]], 3, 50, 'truncate');
  assert.equal(empty!.error, 'empty prompt');
  assert.match(bad!.error!, /99 outside the vocabulary/);
  assert.deepEqual(fits, { index: 2, tokens: [1, 2, 3], truncated: false });
  assert.deepEqual(long, { index: 3, tokens: [3, 4, 5], truncated: true });
  const [strict] = preparePrompts([[1, 2, 3, 4]], 3, 50, 'error');
  assert.match(strict!.error!, /4 tokens, more than 3/);
});

test('planBatches sorts by length (stable) and chunks', () => {
  const items = [[1, 1, 1], [2], [3, 3], [4], [5, 5, 5, 5]].map((tokens, index) => ({ index, tokens }));
  const plan = planBatches(items, 2).map((b) => b.map((i) => i.index));
  assert.deepEqual(plan, [[1, 3], [2, 0], [4]]);
});

test('planBatches with a plan: cuts where padding costs more than a batch, within batchSize and the token budget', () => {
  const lengths = [400, 410, 420, 430, 780, 790, 800, 805];
  const items = lengths.map((n, index) => ({ index, tokens: new Array<number>(n).fill(1) }));
  const padded = (plan: (typeof items)[]) =>
    plan.reduce((sum, b) => sum + b.length * Math.max(...b.map((i) => i.tokens.length)), 0);
  // One batch of 8 pads every row to 805 (6440 tokens); two of 4 pad to 430 and 805 (4940).
  const plan = planBatches(items, 8, { overheadTokens: 100, tokenBudget: 1e9 });
  assert.deepEqual(
    plan.map((b) => b.map((i) => i.index)),
    [
      [0, 1, 2, 3],
      [4, 5, 6, 7],
    ],
  );
  assert.equal(padded(plan), 4940);
  // A batch cost above the saving keeps one batch; batchSize still bounds every batch.
  assert.equal(planBatches(items, 8, { overheadTokens: 2000, tokenBudget: 1e9 }).length, 1);
  assert.ok(planBatches(items, 3, { overheadTokens: 1, tokenBudget: 1e9 }).every((b) => b.length <= 3));
  // Similar lengths keep full batches, as the plain chunks would.
  const similar = [60, 61, 62, 63, 64, 65].map((n, index) => ({ index, tokens: new Array<number>(n).fill(1) }));
  assert.deepEqual(
    planBatches(similar, 3, { overheadTokens: 32, tokenBudget: 1e9 }).map((b) => b.length),
    [3, 3],
  );
  // Every item appears exactly once, in length order.
  // The token budget bounds rows × width; a row wider than the budget still runs, alone.
  const budgeted = planBatches(items, 8, { overheadTokens: 0, tokenBudget: 1700 });
  assert.ok(budgeted.every((b) => b.length === 1 || b.length * b.at(-1)!.tokens.length <= 1700));
  assert.deepEqual(
    planBatches([{ index: 0, tokens: new Array<number>(900).fill(1) }], 8, { overheadTokens: 0, tokenBudget: 100 })
      .length,
    1,
  );
  const flat = planBatches(items, 3, { overheadTokens: 50, tokenBudget: 2000 }).flat();
  assert.deepEqual(
    flat.map((i) => i.index),
    [0, 1, 2, 3, 4, 5, 6, 7],
  );
});

test('SequenceState: EOS ends and is not output; post-EOS tokens ignored; limit; stop sequences', () => {
  const rules = { eosTokenIds: new Set([2]), stopSequences: [[7, 8]], maxNewTokens: 4 };
  const eos = new SequenceState(rules);
  for (const t of [5, 2, 9, 9]) eos.accept(t);
  assert.deepEqual([eos.tokens, eos.finishReason, eos.generated], [[5], 'eos', 2]);
  const limit = new SequenceState(rules);
  for (const t of [5, 6, 5, 6, 5]) limit.accept(t);
  assert.deepEqual([limit.tokens, limit.finishReason, limit.generated], [[5, 6, 5, 6], 'length', 4]);
  const stop = new SequenceState(rules);
  for (const t of [5, 7, 8, 1]) stop.accept(t);
  assert.deepEqual([stop.tokens, stop.finishReason, stop.generated], [[5], 'stop', 3]);
  // An EOS as the last allowed token is an EOS finish, not a limit hit.
  const lastEos = new SequenceState(rules);
  for (const t of [5, 6, 5, 2]) lastEos.accept(t);
  assert.equal(lastEos.finishReason, 'eos');
});

test('percentile interpolates; empty → null', () => {
  assert.equal(percentile([], 50), null);
  assert.equal(percentile([3, 1, 2], 50), 2);
  assert.equal(percentile([1, 2, 3, 4], 50), 2.5);
  assert.ok(Math.abs(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 95)! - 10.5) < 1e-12);
});

const config: EngineConfig = {
  numLayers: 2,
  numKvHeads: 2,
  headDim: 16,
  vocabSize: 100,
  bosTokenId: 1,
  eosTokenIds: [2],
  padTokenId: 2,
  maxPositions: 64,
  dtype: 'float32',
};

test('parseEngineConfig accepts the contract and names a bad field, its value and the expectation', () => {
  assert.deepEqual(parseEngineConfig({ ...config }), config);
  assert.throws(
    () => parseEngineConfig({ ...config, numKvHeads: 0 }),
    (e: unknown) => e instanceof EngineConfigError && e.field === 'numKvHeads' && /numKvHeads = 0/.test(e.message),
  );
  assert.throws(() => parseEngineConfig({ ...config, eosTokenIds: [200] }), /< vocabSize/);
  assert.throws(() => parseEngineConfig({ ...config, dtype: 'float16' }), /dtype = "float16"/);
  assert.throws(() => parseEngineConfig(null), EngineConfigError);
});

type Meta = InferenceSession.ValueMetadata;
const tensorMeta = (name: string, type: 'int64' | 'float32' | 'float16', shape: (number | string)[]): Meta => ({
  name,
  isTensor: true,
  type,
  shape,
});

function fakeSession(config: EngineConfig) {
  const kv = kvNames(config.numLayers);
  const inputMetadata: Meta[] = [
    tensorMeta('input_ids', 'int64', ['b', 's']),
    tensorMeta('attention_mask', 'int64', ['b', 't']),
    tensorMeta('position_ids', 'int64', ['b', 's']),
    ...kv.map((n) => tensorMeta(n.past, 'float32', ['b', 2, 'p', 16])),
  ];
  const outputMetadata: Meta[] = [
    tensorMeta('logits', 'float32', ['b', 's', 100]),
    ...kv.map((n) => tensorMeta(n.present, 'float32', ['b', 2, 't', 16])),
  ];
  return {
    inputMetadata,
    outputMetadata,
    get inputNames() {
      return this.inputMetadata.map((m) => m.name);
    },
    get outputNames() {
      return this.outputMetadata.map((m) => m.name);
    },
  };
}

test('validateGraph accepts a contract graph', () => {
  validateGraph(fakeSession(config), config);
});

test('validateGraph accepts the optional num_logits_to_keep input, with or without it', () => {
  const session = fakeSession(config);
  session.inputMetadata.push(tensorMeta('num_logits_to_keep', 'int64', []));
  validateGraph(session, config);
  session.inputMetadata[session.inputMetadata.length - 1] = tensorMeta('num_logits_to_keep', 'float32', []);
  assert.throws(() => validateGraph(session, config), /num_logits_to_keep.*type float32, expected int64/);
  const feed = logitsToKeep(session.inputNames, 3);
  assert.deepEqual(feed.num_logits_to_keep!.dims, []);
  assert.equal(feed.num_logits_to_keep!.data[0], 3n);
});

test('scoringLayout: prompts end in one column, continuations follow, right-padded and masked', () => {
  const { batch, promptWidth, longest } = scoringLayout([[5, 6, 7], [8]], [[9], [10, 11]], 0);
  assert.equal(promptWidth, 3);
  assert.equal(longest, 2);
  assert.deepEqual([...batch.ids], [5, 6, 7, 9, 0, 0, 0, 8, 10, 11]);
  assert.deepEqual([...batch.mask], [1, 1, 1, 1, 0, 0, 0, 1, 1, 1]);
  // Position ids continue the prompt into the continuation: 0 1 2 3 | 0 1 2 (pads 0).
  assert.deepEqual([...positionIds(batch.mask, 2, 5)].map(Number), [0, 1, 2, 3, 3, 0, 0, 0, 1, 2]);
});

test('argmaxFromEnd reads all-position and kept-tail logits alike', () => {
  const vocab = 3;
  // rows 2, seq 3: row 0 argmaxes 0,1,2; row 1 argmaxes 2,2,0.
  const full = Float32Array.from([9, 0, 0, 0, 9, 0, 0, 0, 9, 0, 0, 9, 0, 0, 9, 9, 0, 0]);
  const t = (data: Float32Array, seq: number) => new Tensor('float32', data, [2, seq, vocab]);
  assert.deepEqual(argmaxFromEnd(t(full, 3), 2, vocab, 1), [2, 0]);
  assert.deepEqual(argmaxFromEnd(t(full, 3), 2, vocab, 2), [1, 2]);
  const tail = Float32Array.from([0, 9, 0, 0, 0, 9, 0, 0, 9, 9, 0, 0]);
  assert.deepEqual(argmaxFromEnd(t(tail, 2), 2, vocab, 2), [1, 2]);
  assert.throws(() => argmaxFromEnd(t(tail, 2), 2, vocab, 3), /2 positions/);
});

test('validateGraph names missing, unexpected and mismatched tensors', () => {
  const session = fakeSession(config);
  session.inputMetadata[3] = tensorMeta('past.0.key', 'float32', ['b', 2, 'p', 16]);
  session.outputMetadata[0] = tensorMeta('logits', 'float16', ['b', 's', 100]);
  session.outputMetadata[1] = tensorMeta('present.0.key', 'float32', ['b', 4, 't', 16]);
  assert.throws(
    () => validateGraph(session, config),
    (e: unknown) => {
      assert.ok(e instanceof GraphContractError);
      assert.deepEqual(e.missingInputs, ['past_key_values.0.key']);
      assert.deepEqual(e.unexpectedInputs, ['past.0.key']);
      assert.deepEqual(
        e.mismatched.map((m) => m.name),
        ['logits', 'present.0.key'],
      );
      assert.match(e.message, /type float16, expected float32/);
      assert.match(e.message, /dim 1 is 4, engine.json implies 2/);
      return true;
    },
  );
  // A config with more layers than the graph: the extra layers' tensors are missing.
  assert.throws(
    () => validateGraph(fakeSession(config), { ...config, numLayers: 3 }),
    /missing inputs: past_key_values\.2\.key/,
  );
});

test('checkFeed reports missing/unknown names, wrong types and ranks, and describes the feed', () => {
  const inputs = fakeSession(config).inputMetadata.slice(0, 3);
  const ids = new Tensor('int64', new BigInt64Array(2), [1, 2]);
  checkFeed({ input_ids: ids, attention_mask: ids, position_ids: ids }, inputs);
  assert.throws(
    () =>
      checkFeed(
        {
          input_ids: new Tensor('int32', new Int32Array(2), [1, 2]),
          attention_mask: new Tensor('int64', new BigInt64Array(2), [2]),
          extra: ids,
        },
        inputs,
      ),
    (e: unknown) => {
      assert.ok(e instanceof FeedError);
      assert.match(e.message, /missing inputs: position_ids/);
      assert.match(e.message, /unknown inputs: extra/);
      assert.match(e.message, /input_ids: type int32, graph expects int64/);
      assert.match(e.message, /attention_mask: rank 1, graph expects 2/);
      assert.equal(e.feed, 'input_ids int32 [1,2]; attention_mask int64 [2]; extra int64 [1,2]');
      return true;
    },
  );
});

test('lengthBuckets sorts by length (stable) across chunks; inInputOrder restores input order', () => {
  const lengths = [9, 2, 7, 2, 5, 1, 8];
  const chunks = lengthBuckets(lengths, 3);
  assert.deepEqual(chunks, [[5, 1, 3], [4, 2, 6], [0]]);
  // Each chunk's "result" is the item's own length tagged by its chunk position.
  const results = chunks.map((chunk) => chunk.map((i) => `len${lengths[i]}#${i}`));
  assert.deepEqual(
    inInputOrder(chunks, results),
    lengths.map((l, i) => `len${l}#${i}`),
  );
  assert.throws(() => inInputOrder(chunks, [results[0]!, results[1]!]), RangeError);
  assert.throws(() => inInputOrder([[0, 0]], [['a', 'b']]), RangeError);
  assert.throws(() => lengthBuckets(lengths, 0), TypeError);
  assert.deepEqual(lengthBuckets([], 4), []);
});
