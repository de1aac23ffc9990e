/**
 * eval.engine: `auto` resolution (src/config/engine.ts), its place in the keys (the resolved engine
 * in the evaluation key, never in the training key; `auto` not in the plan-time run key), and the
 * early EngineUnsupported check on models the torch engine cannot load (activities/eval-engine.ts).
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { resolveRunEngine, torchLoadProblem } from '../../activities/eval-engine';
import { chooseEvalEngine, estimateParameters, TORCH_ENGINE_MIN_PARAMETERS } from '../../src/config/engine';
import { evaluationKey, trainingKey, type RunContent } from '../../src/config/identity';
import { planEvalIdentity, planRuns, type RunSpec } from '../../src/config/plan';
import type { GridConfigInput } from '../../src/config/schema';
import { validateGrid } from '../../src/config/validate';
import { REPO, SAMPLES, SMOLLM2 } from '../helpers/fixtures';

const dirs = mkdtempSync(join(tmpdir(), 'peftgrid-engine-'));
function modelDir(name: string, config: object, files: string[] = ['model.safetensors']): string {
  const dir = join(dirs, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeFileSync(join(dir, 'tokenizer.json'), '{}');
  for (const f of files) writeFileSync(join(dir, f), '');
  return dir;
}

// Llama-2-7B's and SmolLM2-135M's shapes (their config.json fields).
const LLAMA2_7B = {
  vocab_size: 32000,
  hidden_size: 4096,
  intermediate_size: 11008,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 32,
  tie_word_embeddings: false,
};
const SMOL = {
  vocab_size: 49152,
  hidden_size: 576,
  intermediate_size: 1536,
  num_hidden_layers: 30,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  tie_word_embeddings: true,
};

const grid = (engine?: 'auto' | 'onnx' | 'torch', device?: 'auto' | 'cpu' | 'cuda', path = modelDir('small', SMOL)) =>
  ({
    name: 'engine',
    store: 'file:///tmp/peftgrid-engine',
    data: {
      baseUrl: `file://${SAMPLES}`,
      datasets: ['boolq'],
      testSplit: 'test',
      maxTrainPerDataset: 8,
      testSamples: 4,
    },
    models: [{ name: 'm', path, family: 'llama' }],
    methods: [{ method: 'lora', r: 4, alpha: 8 }],
    training: { maxSteps: 4, warmupSteps: 1, checkpointEverySteps: 2, lr: 1e-3, ...(device ? { device } : {}) },
    eval: { maxNewTokens: 8, batchSize: 4, ...(engine ? { engine } : {}) },
  }) satisfies GridConfigInput;
const run = (g: GridConfigInput): RunSpec => planRuns(validateGrid(g, 'test', REPO))[0]!;
const content: RunContent = { model: 'a'.repeat(64), trainData: 'b'.repeat(64), testData: 'c'.repeat(64) };

describe('eval.engine', () => {
  it('estimates parameter counts from config.json within a few percent of the real ones', () => {
    const llama = estimateParameters(LLAMA2_7B)!;
    assert.ok(Math.abs(llama / 6.738e9 - 1) < 0.02, `Llama-2-7B: ${llama}`);
    const smol = estimateParameters(SMOL)!;
    assert.ok(Math.abs(smol / 134.5e6 - 1) < 0.02, `SmolLM2-135M: ${smol}`);
    assert.equal(estimateParameters({ hidden_size: 64 }), null);
  });

  it('auto is torch on a cuda run or above the size threshold, onnx otherwise; an explicit choice wins', () => {
    const big = estimateParameters(LLAMA2_7B);
    assert.equal(chooseEvalEngine({ engine: 'auto' }, { device: 'auto' }, 135e6).engine, 'onnx');
    assert.equal(chooseEvalEngine({ engine: 'auto' }, { device: 'cpu' }, null).engine, 'onnx');
    assert.equal(chooseEvalEngine({ engine: 'auto' }, { device: 'cuda' }, 135e6).engine, 'torch');
    assert.equal(chooseEvalEngine({ engine: 'auto' }, { device: 'auto' }, big).engine, 'torch');
    assert.equal(chooseEvalEngine({ engine: 'auto' }, { device: 'cpu' }, TORCH_ENGINE_MIN_PARAMETERS).engine, 'onnx');
    assert.equal(chooseEvalEngine({ engine: 'onnx' }, { device: 'cuda' }, big).engine, 'onnx');
    assert.equal(chooseEvalEngine({ engine: 'torch' }, { device: 'cpu' }, 1e6).engine, 'torch');
    assert.match(chooseEvalEngine({ engine: 'auto' }, { device: 'auto' }, big).reason, /6\.\dB parameters > 3B/);
  });

  it('resolves from the model directory where the keys are derived', () => {
    assert.equal(resolveRunEngine(run(grid()), modelDir('small', SMOL)).engine, 'onnx');
    const big = modelDir('big', LLAMA2_7B);
    assert.equal(resolveRunEngine(run(grid('auto', 'auto', big)), big).engine, 'torch');
    assert.equal(resolveRunEngine(run(grid('auto', 'cuda')), modelDir('small', SMOL)).engine, 'torch');
    // The real SmolLM2 directory: 135M, onnx under auto.
    assert.equal(resolveRunEngine(run(grid('auto', 'auto', SMOLLM2)), SMOLLM2).engine, 'onnx');
  });

  it('eval.engine torch on a directory the torch engine cannot load is EngineUnsupported, non-retryable, naming model and cause', () => {
    const onnxOnly = modelDir('onnx-only', SMOL, ['model.onnx', 'engine.json']);
    assert.match(torchLoadProblem(onnxOnly)!, /no safetensors or PyTorch weights.*ONNX graph/);
    assert.equal(torchLoadProblem(modelDir('fine', SMOL)), null);
    assert.throws(
      () => resolveRunEngine(run(grid('torch', 'auto', onnxOnly)), onnxOnly),
      (err: unknown) =>
        err instanceof ApplicationFailure &&
        err.type === 'EngineUnsupported' &&
        err.nonRetryable === true &&
        /model m \(.*onnx-only\): it has no safetensors/.test(err.message),
    );
    // Under onnx the same directory is not the torch engine's business.
    assert.equal(resolveRunEngine(run(grid('onnx', 'auto', onnxOnly)), onnxOnly).engine, 'onnx');
  });

  it('the resolved engine is in the evaluation key (torch re-evaluates), never in the training key', () => {
    const r = run(grid());
    const onnxKey = evaluationKey(r, { ...content, engine: 'onnx' });
    const torchKey = evaluationKey(r, { ...content, engine: 'torch' });
    assert.notEqual(torchKey, onnxKey);
    // onnx keeps the key it had before the engine existed: saved onnx results stay reusable.
    assert.equal(onnxKey, evaluationKey(r, content));
    assert.equal(trainingKey(r, { ...content, engine: 'torch' }), trainingKey(r, content));
    // `auto` and an explicit engine that resolve the same share one evaluation.
    assert.equal(evaluationKey(run(grid('torch')), { ...content, engine: 'torch' }), torchKey);
  });

  it('the default auto leaves the plan-time run key as it was; an explicit engine is a new run', () => {
    const path = modelDir('small', SMOL);
    assert.equal(run(grid(undefined, undefined, path)).runKey, run(grid('auto', undefined, path)).runKey);
    assert.notEqual(run(grid('torch', undefined, path)).runKey, run(grid('auto', undefined, path)).runKey);
    // What the run key hashes: eval without `engine` under auto, as configs written before it hashed.
    assert.deepEqual(planEvalIdentity({ maxNewTokens: 8, batchSize: 4, engine: 'auto' }), {
      maxNewTokens: 8,
      batchSize: 4,
    });
    assert.deepEqual(planEvalIdentity({ maxNewTokens: 8, batchSize: 4, engine: 'onnx' }).engine, 'onnx');
  });
});
