// evaluateModel with ONNX Runtime in its engine process: a real tiny export from a file:// store,
// run inside MockActivityEnvironment. Cancellation must stop a pass in progress (the engine
// process is killed), not wait for the evaluation to finish.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { evaluateModel, type EvaluateModelInput, type EvaluateModelResult } from '../../activities/evaluate';
import { scratchDir, SMOLLM2 } from '../helpers/fixtures';
import { stageEvaluation } from '../helpers/eval-input';
import { ensureTinyOnnx } from '../helpers/engine-fixture';
import { generate, loadModel, scoreContinuation } from '../../src/engine';
import { loadTokenizer } from '../../src/data';
import { openStore } from '../../src/store';
import { readTestItems } from '../../activities/test-data';

let root: string;
let onnxDir: string;

before(async () => {
  root = scratchDir('evaluate-engine');
  process.env.PEFTGRID_DATA_DIR = root;
  onnxDir = await ensureTinyOnnx();
});

after(() => rmSync(root, { recursive: true, force: true }));

const env = () => new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
const stage = (runKey: string, items: number, promptLength: number) =>
  stageEvaluation({
    root,
    onnxDir,
    tokenizerDir: SMOLLM2,
    items,
    promptLength,
    runKey,
    maxNewTokens: 4,
    batchSize: 4,
    threads: 1,
  });

test('evaluates every item through the engine process and heartbeats progress', async () => {
  const input = await stage('small', 10, 24);
  const e = env();
  const beats: unknown[] = [];
  e.on('heartbeat', (d: unknown) => beats.push(d));
  const result = await e.run<[EvaluateModelInput], EvaluateModelResult, typeof evaluateModel>(evaluateModel, input);
  assert.equal(result.metrics.overall.n, 10);
  assert.ok(result.throughput.tokensPerSec > 0);
  assert.deepEqual(beats.at(-1), { done: 10, total: 10 });
  // From the first line, then the export's download in bytes, before any prompt runs.
  assert.deepEqual(beats[0], { phase: 'starting' });
  const download = (beats as { phase?: string; bytes?: number; totalBytes?: number }[]).filter(
    (b) => b.phase === 'download-onnx',
  );
  assert.ok(download.length >= 2 && download.at(-1)!.bytes === download.at(-1)!.totalBytes, JSON.stringify(beats));
  assert.ok(download.at(-1)!.totalBytes! > 0);
});

test('length-bucketed chunks and prefill scoring: predictions in item order, equal to a direct engine run', async () => {
  // 70 items (two chunks of at most 64) whose prompt lengths cycle, so sorting moves items across chunks.
  const input = await stage('buckets', 70, 20);
  const result = await env().run<[EvaluateModelInput], EvaluateModelResult, typeof evaluateModel>(evaluateModel, input);
  assert.equal(result.metrics.overall.n, 70);
  const store = openStore(input.storeUrl);
  const lines = (await store.get(`${result.evalPrefix}/predictions.jsonl`)).toString('utf8').trim().split('\n');
  const predictions = lines.map(
    (l) =>
      JSON.parse(l) as { id: string; prediction: string; tokens: number; sumLogProb: number; answerTokens: number },
  );
  const items = await readTestItems(store, input.testData);
  assert.deepEqual(
    predictions.map((p) => p.id),
    items.map((t) => t.id),
  );
  // The old path: one generate over the items in input order, and scoreContinuation apart.
  const model = await loadModel(onnxDir, { intraOpNumThreads: 1, runIn: 'main' });
  try {
    const opts = { maxNewTokens: 4, batchSize: 4 };
    const gen = await generate(
      model,
      items.map((t) => t.promptIds),
      opts,
    );
    const scores = await scoreContinuation(
      model,
      items.map((t) => t.promptIds),
      items.map((t) => t.answerIds),
      opts,
    );
    const tokenizer = await loadTokenizer(SMOLLM2);
    predictions.forEach((p, i) => {
      assert.equal(p.prediction, tokenizer.decode(gen.sequences[i]!.tokens, { skipSpecialTokens: true }).trim(), p.id);
      assert.equal(p.tokens, gen.sequences[i]!.generatedTokens, p.id);
      assert.equal(p.answerTokens, scores[i]!.tokenCount, p.id);
      assert.ok(
        Math.abs(p.sumLogProb - scores[i]!.sumLogProb) < 1e-4,
        `${p.id}: ${p.sumLogProb} vs ${scores[i]!.sumLogProb}`,
      );
    });
  } finally {
    await model.release();
  }
});

test('prompt-lookup speculative evaluation: the same predictions as plain decoding, with its speculation figures', async () => {
  const plain = await stage('lookup-plain', 12, 24);
  const spec = { ...(await stage('lookup-spec', 12, 24)), speculative: { gamma: 4, promptLookup: { maxNgram: 3 } } };
  const run = (input: EvaluateModelInput) =>
    env().run<[EvaluateModelInput], EvaluateModelResult, typeof evaluateModel>(evaluateModel, input);
  const [a, b] = [await run(plain), await run(spec)];
  const predictions = async (r: EvaluateModelResult, input: EvaluateModelInput) =>
    (await openStore(input.storeUrl).get(`${r.evalPrefix}/predictions.jsonl`))
      .toString('utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const { id, prediction, tokens } = JSON.parse(l) as { id: string; prediction: string; tokens: number };
        return { id, prediction, tokens };
      });
  assert.deepEqual(await predictions(b, spec), await predictions(a, plain));
  assert.equal(a.throughput.speedup, undefined);
  const t = b.throughput;
  assert.ok(t.speedup! > 0 && t.targetOnlyTokensPerSec! > 0, JSON.stringify(t));
  assert.ok(t.acceptanceRate !== undefined && t.tokensPerTargetPass! >= 1, JSON.stringify(t));
});

test('prompts longer than the context: cut under longPrompt truncate, not run under error, counted either way', async () => {
  // maxPositions 512 − maxNewTokens 4 = 508: of lengths 510 … 504, items 0 and 1 are too long.
  const cut = await stage('long-cut', 7, 510);
  const refused = await stage('long-refused', 7, 510);
  refused.eval = { ...refused.eval, longPrompt: 'error' };
  const run = (input: EvaluateModelInput) =>
    env().run<[EvaluateModelInput], EvaluateModelResult, typeof evaluateModel>(evaluateModel, input);
  const a = await run(cut);
  assert.equal(a.throughput.truncatedPrompts, 2);
  assert.equal(a.throughput.failedItems, 0);
  const b = await run(refused);
  assert.equal(b.throughput.truncatedPrompts, 0);
  assert.equal(b.throughput.failedItems, 2);
  const lines = (await openStore(refused.storeUrl).get(`${b.evalPrefix}/predictions.jsonl`))
    .toString('utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { id: string; error?: string; finishReason: string });
  assert.deepEqual(
    lines.filter((p) => p.error).map((p) => [p.id, p.error, p.finishReason]),
    [
      ['item-0', 'prompt has 510 tokens, more than 508', 'error'],
      ['item-1', 'prompt has 509 tokens, more than 508', 'error'],
    ],
  );
  assert.equal(b.metrics.overall.n, 7, 'an item that did not run still counts (it scores 0)');
});

test('cancellation kills the engine process mid-pass instead of waiting for the evaluation', async () => {
  // 1,024 prompts of ~250 tokens: 16 chunks of 64. Cancelled once the first chunk has reported,
  // so the kill lands inside a later chunk's pass whatever this machine's speed (a fixed 4 s wait
  // once outlived the whole evaluation after prefill got cheaper).
  const input = await stage('long', 1024, 250);
  const e = env();
  const beats: { done?: number; total?: number }[] = [];
  let firstChunk!: () => void;
  const firstChunkDone = new Promise<void>((r) => (firstChunk = r));
  e.on('heartbeat', (d: { done?: number; total?: number }) => {
    beats.push(d);
    if (d.done) firstChunk();
  });
  const running = e.run<[EvaluateModelInput], EvaluateModelResult, typeof evaluateModel>(evaluateModel, input);
  running.catch(() => firstChunk()); // a failure shows at the assertion below, not as a hang
  await firstChunkDone;
  const t0 = performance.now();
  e.cancel();
  await assert.rejects(running, (err: unknown) => err instanceof CancelledFailure);
  const stopMs = performance.now() - t0;
  assert.ok(stopMs < 3000, `the activity took ${stopMs.toFixed(0)} ms to stop after cancellation`);
  const last = beats.filter((b) => b.done !== undefined).at(-1)!;
  assert.ok(last.done! < last.total!, `cancelled after the evaluation finished: ${JSON.stringify(last)}`);
});
