// loadModel / EngineModel.run against the real tiny export and broken copies of it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor } from 'onnxruntime-node';
import {
  EngineConfigError,
  EngineError,
  FeedError,
  GraphContractError,
  ModelLoadError,
  SessionRunError,
  loadModel,
  type EngineModel,
} from '../../src/engine';
import { ensureRenamedOnnx, ensureTinyOnnx, makeCorruptModelDir } from '../helpers/engine-fixture';

let dir: string;
let model: EngineModel;
const scratch = mkdtempSync(join(tmpdir(), 'engine-session-'));

before(async () => {
  dir = await ensureTinyOnnx();
  model = await loadModel(dir, { intraOpNumThreads: 1 });
});

after(async () => {
  await model?.release();
  rmSync(scratch, { recursive: true, force: true });
});

test('loadModel opens the export and exposes the contract I/O', () => {
  const { numLayers } = model.config;
  assert.equal(model.executionProvider, 'cpu');
  assert.ok(model.inputNames.includes('input_ids'));
  assert.ok(model.inputNames.includes(`past_key_values.${numLayers - 1}.value`));
  assert.ok(model.outputNames.includes(`present.${numLayers - 1}.value`));
  // The export takes the logits count too (issue #15); contract.ts accepts exports without it.
  assert.ok(model.inputNames.includes('num_logits_to_keep'));
  assert.equal(model.inputNames.length, 4 + 2 * numLayers);
  assert.equal(model.outputNames.length, 1 + 2 * numLayers);
});

test('renamed graph I/O → GraphContractError naming the tensors', async () => {
  const renamed = await ensureRenamedOnnx();
  await assert.rejects(loadModel(renamed), (e: unknown) => {
    assert.ok(e instanceof GraphContractError, String(e));
    assert.deepEqual(e.missingInputs, ['past_key_values.0.key']);
    assert.deepEqual(e.unexpectedInputs, ['past.0.key']);
    assert.deepEqual(e.missingOutputs, ['present.1.value']);
    assert.deepEqual(e.unexpectedOutputs, ['present_1_value']);
    assert.match(e.message, /missing inputs: past_key_values\.0\.key/);
    return true;
  });
});

test('truncated model.onnx → ModelLoadError, not a crash', async () => {
  const corrupt = await makeCorruptModelDir(join(scratch, 'corrupt'));
  await assert.rejects(
    loadModel(corrupt),
    (e: unknown) => e instanceof ModelLoadError && /model\.onnx/.test(e.message),
  );
});

test('missing engine.json → EngineConfigError; missing model.onnx → ModelLoadError', async () => {
  const noConfig = join(scratch, 'no-config');
  mkdirSync(noConfig);
  await assert.rejects(
    loadModel(noConfig),
    (e: unknown) => e instanceof EngineConfigError && /engine\.json/.test(e.message),
  );
  const noModel = join(scratch, 'no-model');
  mkdirSync(noModel);
  copyFileSync(join(dir, 'engine.json'), join(noModel, 'engine.json'));
  await assert.rejects(
    loadModel(noModel),
    (e: unknown) => e instanceof ModelLoadError && /does not exist/.test(e.message),
  );
});

test('executionProvider: cuda either runs on CUDA or fails with ModelLoadError; auto falls back to cpu', async () => {
  try {
    const cuda = await loadModel(dir, { executionProvider: 'cuda' });
    assert.equal(cuda.executionProvider, 'cuda');
    await cuda.release();
  } catch (e) {
    assert.ok(e instanceof ModelLoadError, String(e));
  }
  const auto = await loadModel(dir, { executionProvider: 'auto', intraOpNumThreads: 1 });
  assert.ok(['cpu', 'cuda'].includes(auto.executionProvider));
  await auto.release();
  await assert.rejects(loadModel(dir, { intraOpNumThreads: -1 }), TypeError);
});

function prefillFeed(batch: number, seq: number, maskWidth = seq): Record<string, Tensor> {
  const { numLayers, numKvHeads, headDim } = model.config;
  const ids = (n: number) => new BigInt64Array(n).fill(5n);
  const feed: Record<string, Tensor> = {
    input_ids: new Tensor('int64', ids(batch * seq), [batch, seq]),
    attention_mask: new Tensor('int64', ids(batch * maskWidth).fill(1n), [batch, maskWidth]),
    position_ids: new Tensor('int64', new BigInt64Array(batch * seq), [batch, seq]),
    num_logits_to_keep: new Tensor('int64', BigInt64Array.of(0n), []), // 0: every position
  };
  for (let l = 0; l < numLayers; l++) {
    for (const kind of ['key', 'value']) {
      feed[`past_key_values.${l}.${kind}`] = new Tensor('float32', new Float32Array(0), [
        batch,
        numKvHeads,
        0,
        headDim,
      ]);
    }
  }
  return feed;
}

test('run checks the feed before ORT and reports names, dims and types', async () => {
  const good = prefillFeed(2, 3);
  const out = await model.run(good);
  assert.deepEqual(out.logits!.dims, [2, 3, model.config.vocabSize]);
  const { position_ids: _dropped, ...missing } = good;
  await assert.rejects(
    model.run(missing),
    (e: unknown) => e instanceof FeedError && /missing inputs: position_ids/.test(e.message),
  );
  const wrongType = { ...good, input_ids: new Tensor('int32', new Int32Array(6), [2, 3]) };
  await assert.rejects(
    model.run(wrongType),
    (e: unknown) => e instanceof FeedError && /input_ids int32 \[2,3\]/.test(e.message),
  );
});

test('an ORT failure is rethrown as SessionRunError with the feed description', async () => {
  // Batch 2 ids with a batch 3 mask passes the name/type/rank checks but not the graph.
  const bad = { ...prefillFeed(2, 3), attention_mask: new Tensor('int64', new BigInt64Array(9).fill(1n), [3, 3]) };
  await assert.rejects(model.run(bad), (e: unknown) => {
    assert.ok(e instanceof SessionRunError, String(e));
    assert.match(e.feed, /input_ids int64 \[2,3\]; attention_mask int64 \[3,3\]/);
    assert.match(e.feed, /past_key_values\.0\.key float32 \[2,\d+,0,\d+\]/);
    return true;
  });
});

test('run after release throws EngineError; release is idempotent', async () => {
  const m = await loadModel(dir, { intraOpNumThreads: 1 });
  await m.release();
  await m.release();
  await assert.rejects(m.run(prefillFeed(1, 1)), EngineError);
});
