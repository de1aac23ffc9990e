import { strict as assert } from 'node:assert';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, parseGridYaml } from '../../src/config/validate';
import { expandMethod, planRuns } from '../../src/config/plan';
import { gridJsonSchema } from '../../src/config/schema';
import { REPO } from '../helpers/fixtures';

const cwd = mkdtempSync(join(tmpdir(), 'peftgrid-config-'));
mkdirSync(join(cwd, 'model'));
writeFileSync(join(cwd, 'model', 'config.json'), '{}');
writeFileSync(join(cwd, 'model', 'tokenizer.json'), '{}');

const base = `
name: t
models:
  - {name: tiny, path: ./model, family: llama}
methods:
  - {method: lora, r: [8, 16], alpha: 16}
  - {method: icl, shots: [0, 3]}
`;

function issuesOf(yaml: string) {
  try {
    parseGridYaml(yaml, 'test.yaml', cwd);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.issues;
  }
  assert.fail('config was accepted');
}

describe('grid config', () => {
  it('applies the study defaults', () => {
    const g = parseGridYaml(base, 'test.yaml', cwd);
    assert.equal(g.training.maxSteps, 200);
    assert.equal(g.training.lr, 2e-5);
    assert.equal(g.training.warmupSteps, 30);
    assert.equal(g.training.scheduler, 'linear');
    assert.equal(g.training.optimizer, 'adamw_8bit');
    assert.equal(g.training.batchSize, 8);
    assert.equal('evalBatchSize' in g.training, false, 'training.evalBatchSize is gone: eval.batchSize is the one evaluation uses');
    assert.ok(g.store.startsWith('file:///'), 'relative store resolved to an absolute file URL');
    assert.equal(g.models[0]!.path, join(cwd, 'model'));
  });

  it('expands list-valued fields into runs with stable keys', () => {
    const g = parseGridYaml(base, 'test.yaml', cwd);
    const runs = planRuns(g);
    assert.equal(runs.length, 4);
    assert.deepEqual(runs.map((r) => r.label), ['lora r=8 alpha=16 dropout=0.05', 'lora r=16 alpha=16 dropout=0.05', 'icl shots=0', 'icl shots=3']);
    assert.deepEqual(planRuns(parseGridYaml(base, 'test.yaml', cwd)).map((r) => r.runKey), runs.map((r) => r.runKey));
    assert.equal(new Set(runs.map((r) => r.runKey)).size, 4);
    assert.equal(runs[2]!.trains, false);
    assert.equal(runs[3]!.shots, 3);
    // A change that affects results changes the key; the same run keeps it.
    const other = planRuns(parseGridYaml(base + 'training: {maxSteps: 10, warmupSteps: 0}\n', 'test.yaml', cwd));
    assert.notEqual(other[0]!.runKey, runs[0]!.runKey);
  });

  it('keeps string lists (targetModules) as one value', () => {
    assert.equal(expandMethod({ method: 'lora', r: 8, alpha: 16, dropout: 0.1, targetModules: ['q_proj', 'v_proj'] }).length, 1);
  });

  it('names the path, the value and the expectation for each problem', () => {
    const issues = issuesOf(`
name: t
models:
  - {name: tiny, path: ./model, family: llama, colour: red}
methods:
  - {method: lora, r: "eight"}
  - {method: dora}
training: {maxSteps: -1}
`);
    const byPath = new Map(issues.map((i) => [i.path, i]));
    assert.match(byPath.get('models[0].colour')!.expected, /unknown field/);
    assert.equal(byPath.get('methods[0].r')!.value, '"eight"');
    assert.equal(byPath.get('methods[1].method')!.value, '"dora"');
    assert.match(byPath.get('methods[1].method')!.expected, /lora, qlora, adalora, ia3, prompt_tuning/);
    assert.ok(byPath.has('training.maxSteps'), JSON.stringify(issues));
  });

  it('rejects a missing model directory, duplicate names, unknown datasets and speculative models', () => {
    const issues = issuesOf(`
name: t
data: {datasets: [boolq, ../etc]}
models:
  - {name: a, path: ./nope, family: llama}
  - {name: a, path: ./model, family: gemma}
methods: [{method: ia3}]
speculative: [{target: a, draft: b}]
`);
    const paths = issues.map((i) => i.path);
    assert.ok(paths.includes('models[0].path'), JSON.stringify(issues));
    assert.ok(paths.includes('models[1].name'));
    assert.ok(paths.includes('data.datasets[1]'));
    assert.ok(paths.includes('speculative[0].draft'));
  });

  it('rejects a speculative pair whose tokenizers differ', () => {
    mkdirSync(join(cwd, 'other'), { recursive: true });
    writeFileSync(join(cwd, 'other', 'config.json'), '{}');
    writeFileSync(join(cwd, 'other', 'tokenizer.json'), '{"model": "different"}');
    const issues = issuesOf(`
name: t
models:
  - {name: a, path: ./model, family: llama}
  - {name: b, path: ./other, family: llama}
methods: [{method: icl}]
speculative: [{target: a, draft: b}]
`);
    assert.equal(issues[0]!.path, 'speculative[0].draft');
    assert.match(issues[0]!.expected, /same tokenizer/);
  });

  it('reports YAML syntax errors with a line number', () => {
    const issues = issuesOf('name: t\nmodels: [\n');
    assert.match(issues[0]!.path, /yaml line/);
  });

  it('publishes a JSON Schema, and the committed schema/grid.schema.json is current', () => {
    const schema = gridJsonSchema() as { properties: Record<string, unknown> };
    assert.ok(schema.properties.models && schema.properties.methods && schema.properties.training);
    const committed = readFileSync(join(REPO, 'schema', 'grid.schema.json'), 'utf8');
    assert.equal(committed, JSON.stringify(schema, null, 2) + '\n', 'regenerate it: npx peftgrid schema > schema/grid.schema.json');
  });

  it("expands a per-method lr into the run's training config and its key", () => {
    const yaml = 'name: t\nmodels: [{name: tiny, path: ./model, family: llama}]\nmethods:\n  - {method: prompt_tuning, lr: [0.03, 0.3]}\n  - {method: lora}\n';
    const grid = parseGridYaml(yaml, 'test.yaml', cwd);
    const runs = planRuns(grid);
    assert.deepEqual(runs.map((r) => r.training.lr), [0.03, 0.3, grid.training.lr]);
    assert.deepEqual(runs.map((r) => r.label), ['prompt_tuning numVirtualTokens=20 lr=0.03', 'prompt_tuning numVirtualTokens=20 lr=0.3', 'lora r=8 alpha=16 dropout=0.05']);
    assert.equal(new Set(runs.map((r) => r.runKey)).size, 3);
    assert.ok(runs.every((r) => !('lr' in r.method)), 'the trainer gets lr in training, not as a method field');
  });
});
