// eval.precision int8 through the real activities: exportModel quantizes the committed fp32 export
// (`python -m trainer quantize`, fetched, not redone) into its own committed prefix next to it,
// once; evaluateModel on that prefix runs the int8 graph in the engine process and says so.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { exportModel, int8PrefixFor, onnxPrefixFor } from '../../activities/export';
import { evaluateModel, type EvaluateModelInput, type EvaluateModelResult } from '../../activities/evaluate';
import type { ExportModelInput, ExportModelResult } from '../../src/contracts';
import { openStore, putDirectory, readManifest } from '../../src/store';
import { scratchDir, SMOLLM2 } from '../helpers/fixtures';
import { stageEvaluation } from '../helpers/eval-input';
import { ensureTinyOnnx, HF_DIR } from '../helpers/engine-fixture';

let root: string;
let onnxDir: string;

before(async () => {
  root = scratchDir('export-int8');
  process.env.PEFTGRID_DATA_DIR = root;
  onnxDir = await ensureTinyOnnx();
});

after(() => rmSync(root, { recursive: true, force: true }));

const env = () => new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });

test('int8: quantized next to the fp32 export, committed once, evaluated as int8 with its parity', async () => {
  const staged = await stageEvaluation({
    root,
    onnxDir,
    tokenizerDir: SMOLLM2,
    items: 8,
    promptLength: 16,
    runKey: 'int8-eval',
    maxNewTokens: 4,
    batchSize: 4,
    threads: 1,
  });
  const store = openStore(staged.storeUrl);
  const exportInput: ExportModelInput = {
    storeUrl: staged.storeUrl,
    runKey: null,
    modelName: 'tiny',
    modelPath: HF_DIR,
    method: { method: 'icl' },
    adapterPrefix: null,
    modelHash: 'f'.repeat(64),
    precision: 'int8',
  };
  // The fp32 export is already committed: the activity must quantize it, not export again.
  const fp32Prefix = onnxPrefixFor(exportInput);
  await putDirectory(store, fp32Prefix, onnxDir, { maxAbsDiff: 1e-6 });
  const run = () => env().run<[ExportModelInput], ExportModelResult, typeof exportModel>(exportModel, exportInput);
  const exported = await run();
  assert.equal(exported.onnxPrefix, int8PrefixFor(fp32Prefix));
  assert.equal(exported.maxAbsDiff, 1e-6);
  const parity = exported.precisionParity!;
  assert.ok(parity.tokens > 0 && parity.agreement >= 0 && parity.agreement <= 1, JSON.stringify(parity));
  assert.equal(parity.belowThreshold, parity.agreement < parity.threshold);
  const manifest = await readManifest<{ precisionParity: unknown }>(store, exported.onnxPrefix);
  assert.deepEqual(manifest!.meta.precisionParity, parity);
  const engineJson = JSON.parse((await store.get(`${exported.onnxPrefix}/engine.json`)).toString('utf8')) as {
    weightDtype: string;
  };
  assert.equal(engineJson.weightDtype, 'int8');
  const fp32Engine = JSON.parse(readFileSync(join(onnxDir, 'engine.json'), 'utf8')) as { weightDtype: string };
  assert.equal(fp32Engine.weightDtype, 'float32');

  // Committed: a second call (a retry, another run of the model) returns it without quantizing.
  const t0 = performance.now();
  assert.deepEqual(await run(), exported);
  assert.ok(performance.now() - t0 < 5000, 'reused, not quantized again');

  const input: EvaluateModelInput = {
    ...staged,
    onnxPrefix: exported.onnxPrefix,
    eval: { ...staged.eval, precision: 'int8' },
  };
  const result = await env().run<[EvaluateModelInput], EvaluateModelResult, typeof evaluateModel>(evaluateModel, input);
  assert.equal(result.precision, 'int8');
  assert.equal(result.engine, 'onnx');
  assert.deepEqual(result.precisionParity, parity);
  assert.equal(result.metrics.overall.n, 8);
  const saved = JSON.parse(
    (await store.get(`${result.evalPrefix}/metrics.json`)).toString('utf8'),
  ) as EvaluateModelResult;
  assert.deepEqual(saved.precisionParity, parity);
});
