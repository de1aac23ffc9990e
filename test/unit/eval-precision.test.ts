// eval.precision (fp32 | int8 | a list): absent and fp32 keep every key a config had before the
// option; int8 is its own run and evaluation with the same training; a list plans both.
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { chooseEvalEngine } from '../../src/config/engine';
import { evaluationKey, trainingKey, type RunContent } from '../../src/config/identity';
import { planRuns, type RunSpec } from '../../src/config/plan';
import { ConfigError, validateGrid } from '../../src/config/validate';
import type { GridConfigInput } from '../../src/config/schema';
import { REPO, SAMPLES } from '../helpers/fixtures';

const dirs = mkdtempSync(join(tmpdir(), 'peftgrid-precision-'));
const modelDir = (name: string) => {
  mkdirSync(join(dirs, name), { recursive: true });
  writeFileSync(join(dirs, name, 'config.json'), '{}');
  writeFileSync(join(dirs, name, 'tokenizer.json'), '{}');
  return join(dirs, name);
};
const base: GridConfigInput = {
  name: 'precision',
  store: 'file:///tmp/peftgrid-precision',
  data: { baseUrl: `file://${SAMPLES}`, datasets: ['boolq'], testSplit: 'test', maxTrainPerDataset: 8, testSamples: 4 },
  models: [{ name: 'm', path: modelDir('m'), family: 'llama' }],
  methods: [
    { method: 'lora', r: 4, alpha: 8 },
    { method: 'icl', shots: [0] },
  ],
  training: { maxSteps: 4, warmupSteps: 1, checkpointEverySteps: 2, lr: 1e-3 },
  eval: { maxNewTokens: 8, batchSize: 4 },
};
const plan = (evalPatch: Record<string, unknown> = {}): RunSpec[] =>
  planRuns(validateGrid({ ...base, eval: { ...base.eval, ...evalPatch } }, 'test', REPO));
const content: RunContent = { model: 'a'.repeat(64), trainData: 'b'.repeat(64), testData: 'c'.repeat(64) };
const keys = (runs: RunSpec[]) =>
  runs.map((r) => [r.runKey, trainingKey(r, content), evaluationKey(r, content), r.label].join(' '));

describe('eval.precision', () => {
  it('absent or fp32 (alone or in a list) leaves every run key, evaluation key and label as before', () => {
    const before = keys(plan());
    assert.deepEqual(keys(plan({ precision: 'fp32' })), before);
    assert.deepEqual(keys(plan({ precision: ['fp32'] })), before);
    assert.equal(plan()[0]!.eval.precision, undefined);
  });

  it('int8 is another run and evaluation of the same training (its label says int8)', () => {
    const [fp32] = plan();
    const [int8] = plan({ precision: 'int8' });
    assert.equal(int8!.eval.precision, 'int8');
    assert.notEqual(int8!.runKey, fp32!.runKey);
    assert.equal(trainingKey(int8!, content), trainingKey(fp32!, content));
    assert.notEqual(evaluationKey(int8!, content), evaluationKey(fp32!, content));
    assert.equal(int8!.label, `${fp32!.label} · int8`);
  });

  it('a list plans each run once per precision; a repeated precision is planned once', () => {
    const both = plan({ precision: ['fp32', 'int8', 'int8'] });
    assert.equal(both.length, 4);
    const fp32 = both.filter((r) => r.eval.precision === undefined).map((r) => r.runKey);
    const int8 = both.filter((r) => r.eval.precision === 'int8').map((r) => r.runKey);
    assert.deepEqual(
      fp32,
      plan().map((r) => r.runKey),
    );
    assert.deepEqual(
      int8,
      plan({ precision: 'int8' }).map((r) => r.runKey),
    );
  });

  it('rejects an unknown precision and int8 with the torch engine, naming the field', () => {
    assert.throws(
      () => plan({ precision: 'int4' }),
      (e: unknown) => e instanceof ConfigError && /eval\.precision/.test(e.message),
    );
    assert.throws(
      () => plan({ precision: ['fp32', 'int8'], engine: 'torch' }),
      (e: unknown) =>
        e instanceof ConfigError &&
        /eval\.precision: got \["fp32","int8"\], expected fp32 with eval\.engine torch/.test(e.message),
    );
  });

  it('auto resolves an int8 run to the onnx engine even where it would pick torch', () => {
    const choice = chooseEvalEngine({ engine: 'auto', precision: 'int8' }, { device: 'cuda' }, 7e9);
    assert.equal(choice.engine, 'onnx');
    assert.equal(chooseEvalEngine({ engine: 'auto' }, { device: 'cuda' }, 7e9).engine, 'torch');
  });
});
