import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { distillKey, evaluationKey, trainingKey, type RunContent } from '../../src/config/identity';
import { planRuns, type RunSpec } from '../../src/config/plan';
import { validateGrid } from '../../src/config/validate';
import type { GridConfigInput } from '../../src/config/schema';
import { REPO, SAMPLES } from '../helpers/fixtures';

// Model directories only need to exist here: their bytes enter the keys as RunContent.model.
const dirs = mkdtempSync(join(tmpdir(), 'peftgrid-ids-'));
const modelDir = (name: string) => {
  mkdirSync(join(dirs, name), { recursive: true });
  writeFileSync(join(dirs, name, 'config.json'), '{}');
  writeFileSync(join(dirs, name, 'tokenizer.json'), '{}');
  return join(dirs, name);
};

const base: GridConfigInput = {
  name: 'ids',
  store: 'file:///tmp/peftgrid-ids',
  data: { baseUrl: `file://${SAMPLES}`, datasets: ['boolq'], testSplit: 'test', maxTrainPerDataset: 8, testSamples: 4 },
  models: [
    { name: 'm', path: modelDir('m'), family: 'llama' },
    { name: 'd', path: modelDir('d'), family: 'llama' },
  ],
  methods: [
    { method: 'lora', r: 4, alpha: 8 },
    { method: 'icl', shots: [0] },
  ],
  training: { maxSteps: 4, warmupSteps: 1, checkpointEverySteps: 2, lr: 1e-3 },
  eval: { maxNewTokens: 8, batchSize: 4 },
  speculative: [{ target: 'm', draft: 'd', gamma: 3 }],
};

const plan = (patch: Partial<GridConfigInput> = {}): RunSpec[] =>
  planRuns(validateGrid({ ...base, ...patch }, 'test', REPO));
const content: RunContent = {
  model: 'a'.repeat(64),
  trainData: 'b'.repeat(64),
  testData: 'c'.repeat(64),
  draft: 'd'.repeat(64),
};
const lora = (runs: RunSpec[]) => runs.find((r) => r.method.method === 'lora')!;
const icl = (runs: RunSpec[]) => runs.find((r) => r.method.method === 'icl')!;
const spec = (runs: RunSpec[]) => runs.find((r) => r.method.method === 'speculative')!;

describe('run identity: a distilled draft', () => {
  const distilled = (pair: Record<string, unknown> = {}, patch: Partial<GridConfigInput> = {}) =>
    spec(plan({ speculative: [{ target: 'm', draft: 'd', gamma: 3, drafting: 'distilled', ...pair }], ...patch }));

  it('is keyed by what the distilled weights depend on, not by gamma or eval settings', () => {
    const k0 = distillKey(distilled(), content)!;
    assert.match(k0, /^m__spec-distill-d__d[0-9a-f]{16}$/);
    assert.equal(distillKey(distilled({ gamma: 5 }), content), k0);
    assert.equal(distillKey(distilled({}, { eval: { maxNewTokens: 8, batchSize: 2 } }), content), k0);
    assert.equal(
      distillKey(distilled({ distill: { maxNewTokens: 8 } }), content),
      k0,
      'eval.maxNewTokens is the default',
    );
    assert.equal(distillKey(distilled({}, { training: { ...base.training, checkpointEverySteps: 1 } }), content), k0);
    for (const d of [{ steps: 50 }, { lr: 1e-3 }, { method: 'full' }, { maxNewTokens: 4 }])
      assert.notEqual(distillKey(distilled({ distill: d }), content), k0, JSON.stringify(d));
    assert.notEqual(distillKey(distilled({}, { training: { ...base.training, seed: 1 } }), content), k0);
    for (const c of [{ model: 'e'.repeat(64) }, { draft: 'e'.repeat(64) }, { trainData: 'e'.repeat(64) }])
      assert.notEqual(distillKey(distilled(), { ...content, ...c }), k0, JSON.stringify(c));
    assert.equal(distillKey(spec(plan()), content), null, 'a plain model pair has none');
    assert.throws(() => distillKey(distilled(), { ...content, trainData: null }), /needs the draft's fingerprint/);
  });

  it('evaluates under a key of its own, which follows the distilled draft', () => {
    const e0 = evaluationKey(distilled(), content);
    assert.match(e0, /^m__spec-distill-d-g3__e[0-9a-f]{16}$/);
    assert.notEqual(e0, evaluationKey(spec(plan()), content), 'not the undistilled pair');
    assert.notEqual(evaluationKey(distilled(), { ...content, trainData: 'e'.repeat(64) }), e0);
    assert.notEqual(evaluationKey(distilled({ distill: { steps: 9 } }), content), e0);
    assert.equal(trainingKey(distilled(), content), null, 'the pair itself does not train');
    // The undistilled pair's evaluation key ignores the training data, as it always did.
    assert.equal(
      evaluationKey(spec(plan()), { ...content, trainData: 'e'.repeat(64) }),
      evaluationKey(spec(plan()), content),
    );
  });
});

describe('run identity: training key and evaluation key', () => {
  it('changing eval.* leaves the training key unchanged and changes the evaluation key', () => {
    const before = plan();
    for (const evalPatch of [
      { maxNewTokens: 16, batchSize: 4 },
      { maxNewTokens: 8, batchSize: 2 },
      { maxNewTokens: 8, batchSize: 4, threads: 1 },
    ]) {
      const after = plan({ eval: evalPatch });
      assert.notEqual(lora(after).runKey, lora(before).runKey, 'the run (workflow id) is a new one');
      assert.equal(trainingKey(lora(after), content), trainingKey(lora(before), content), JSON.stringify(evalPatch));
      assert.notEqual(
        evaluationKey(lora(after), content),
        evaluationKey(lora(before), content),
        JSON.stringify(evalPatch),
      );
      assert.notEqual(evaluationKey(icl(after), content), evaluationKey(icl(before), content));
      assert.notEqual(evaluationKey(spec(after), content), evaluationKey(spec(before), content));
    }
  });

  it('changing checkpointEverySteps or device changes neither key: the adapter and its evaluation are the same', () => {
    const before = plan();
    const after = plan({ training: { ...base.training, checkpointEverySteps: 1, device: 'cpu' } });
    assert.equal(trainingKey(lora(after), content), trainingKey(lora(before), content));
    assert.equal(evaluationKey(lora(after), content), evaluationKey(lora(before), content));
  });

  it('training settings, the model bytes and the tokenized data each change the training key', () => {
    const t0 = trainingKey(lora(plan()), content)!;
    assert.match(t0, /^m__lora-r4__t[0-9a-f]{16}$/);
    const keys = [
      trainingKey(lora(plan({ training: { ...base.training, lr: 2e-3 } })), content),
      trainingKey(lora(plan({ training: { ...base.training, maxSteps: 6 } })), content),
      trainingKey(lora(plan({ methods: [{ method: 'lora', r: 4, alpha: 16 }] })), content),
      trainingKey(lora(plan()), { ...content, model: 'e'.repeat(64) }),
      trainingKey(lora(plan()), { ...content, trainData: 'f'.repeat(64) }),
    ];
    for (const k of keys) assert.notEqual(k, t0);
    assert.equal(new Set(keys).size, keys.length);
    // …and so the evaluation key, which is built on it.
    assert.notEqual(
      evaluationKey(lora(plan()), { ...content, model: 'e'.repeat(64) }),
      evaluationKey(lora(plan()), content),
    );
    assert.notEqual(
      evaluationKey(lora(plan()), { ...content, testData: 'f'.repeat(64) }),
      evaluationKey(lora(plan()), content),
    );
  });

  it('the same model bytes at another path or name train to the same key (bytes, not names)', () => {
    const moved = plan({ models: [{ name: 'm', path: modelDir('elsewhere/m'), family: 'llama' }, base.models[1]!] });
    assert.equal(trainingKey(lora(moved), content), trainingKey(lora(plan()), content));
  });

  it('untrained runs have no training key; their evaluation key follows the base model and the draft', () => {
    const runs = plan();
    assert.equal(trainingKey(icl(runs), content), null);
    assert.equal(trainingKey(spec(runs), content), null);
    assert.match(evaluationKey(icl(runs), content), /^m__icl-shot0__e[0-9a-f]{16}$/);
    assert.match(evaluationKey(spec(runs), content), /^m__spec-d-g3__e[0-9a-f]{16}$/);
    assert.notEqual(evaluationKey(icl(runs), { ...content, model: 'e'.repeat(64) }), evaluationKey(icl(runs), content));
    assert.notEqual(
      evaluationKey(spec(runs), { ...content, draft: 'e'.repeat(64) }),
      evaluationKey(spec(runs), content),
    );
    assert.throws(
      () => trainingKey(lora(runs), { ...content, trainData: null }),
      /needs the sha256 of its tokenized training data/,
    );
  });
});
