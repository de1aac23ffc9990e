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
    assert.equal(
      'evalBatchSize' in g.training,
      false,
      'training.evalBatchSize is gone: eval.batchSize is the one evaluation uses',
    );
    assert.ok(g.store.startsWith('file:///'), 'relative store resolved to an absolute file URL');
    assert.equal(g.models[0]!.path, join(cwd, 'model'));
  });

  it('expands list-valued fields into runs with stable keys', () => {
    const g = parseGridYaml(base, 'test.yaml', cwd);
    const runs = planRuns(g);
    assert.equal(runs.length, 4);
    assert.deepEqual(
      runs.map((r) => r.label),
      ['lora r=8 alpha=16 dropout=0.05', 'lora r=16 alpha=16 dropout=0.05', 'icl shots=0', 'icl shots=3'],
    );
    assert.deepEqual(
      planRuns(parseGridYaml(base, 'test.yaml', cwd)).map((r) => r.runKey),
      runs.map((r) => r.runKey),
    );
    assert.equal(new Set(runs.map((r) => r.runKey)).size, 4);
    assert.equal(runs[2]!.trains, false);
    assert.equal(runs[3]!.shots, 3);
    // A change that affects results changes the key; the same run keeps it.
    const other = planRuns(
      parseGridYaml(base + 'training: {maxSteps: 10, warmupSteps: 0, checkpointEverySteps: 5}\n', 'test.yaml', cwd),
    );
    assert.notEqual(other[0]!.runKey, runs[0]!.runKey);
  });

  it('keeps string lists (targetModules) as one value', () => {
    assert.equal(
      expandMethod({ method: 'lora', r: 8, alpha: 16, dropout: 0.1, targetModules: ['q_proj', 'v_proj'] }).length,
      1,
    );
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

  it('plans a prompt-lookup pair without a draft model, and rejects a lookup pair that names one', () => {
    const yaml = (pair: string) => `
name: t
models:
  - {name: a, path: ./model, family: llama}
methods: [{method: icl}]
speculative: [${pair}]
`;
    const grid = parseGridYaml(yaml('{target: a, drafting: prompt-lookup, gamma: 5}'), 'test.yaml', cwd);
    const run = planRuns(grid).find((r) => r.method.method === 'speculative')!;
    assert.deepEqual(run.method, { method: 'speculative', gamma: 5, promptLookup: { maxNgram: 3 } });
    assert.equal(run.draft, undefined);
    assert.match(run.runKey, /^a__spec-lookup-n3-g5__[0-9a-f]{8}$/);
    assert.equal(run.label, 'speculative prompt-lookup n=3 gamma=5');
    // The parsed config gains no defaults (they would change every older grid's id).
    assert.deepEqual(grid.speculative[0], { target: 'a', drafting: 'prompt-lookup', gamma: 5 });
    const bad = issuesOf(yaml('{target: a, drafting: prompt-lookup, draft: a}'));
    assert.equal(bad[0]!.path, 'speculative[0].draft');
    assert.match(bad[0]!.expected, /no draft with drafting: prompt-lookup/);
    const missing = issuesOf(yaml('{target: a, maxNgram: 2}')).map((i) => i.path);
    assert.deepEqual(missing, ['speculative[0].draft', 'speculative[0].maxNgram']);
    const unknown = issuesOf(yaml('{target: a, drafting: ngram}'));
    assert.equal(unknown[0]!.path, 'speculative[0].drafting');
  });

  it('plans a distilled pair with its defaults resolved at plan time, and rejects distill on other drafting', () => {
    const yaml = (pair: string) => `
name: t
models:
  - {name: a, path: ./model, family: llama}
  - {name: b, path: ./model, family: llama}
methods: [{method: icl}]
training: {warmupSteps: 30, checkpointEverySteps: 25}
eval: {maxNewTokens: 12}
speculative: [${pair}]
`;
    const grid = parseGridYaml(
      yaml('{target: a, draft: b, drafting: distilled, distill: {steps: 20}}'),
      'test.yaml',
      cwd,
    );
    // The parsed config gains no defaults (they would change every older grid's id).
    assert.deepEqual(grid.speculative[0], {
      target: 'a',
      draft: 'b',
      drafting: 'distilled',
      distill: { steps: 20 },
      gamma: 4,
    });
    const run = planRuns(grid).find((r) => r.method.method === 'speculative')!;
    assert.deepEqual(run.method, {
      method: 'speculative',
      draft: 'b',
      gamma: 4,
      distill: { steps: 20, lr: 2e-4, maxNewTokens: 12, method: 'lora' },
    });
    assert.match(run.runKey, /^a__spec-distill-b-g4__[0-9a-f]{8}$/);
    assert.equal(run.label, 'speculative distilled draft=b lora steps=20 gamma=4');
    assert.equal(run.trains, false);
    assert.deepEqual(run.distill!.method, { method: 'lora', r: 8, alpha: 16, dropout: 0.05 });
    // Warm-up and cadence capped at the distill steps; the rest is the grid's training.
    assert.deepEqual(
      { ...run.distill!.training },
      { ...grid.training, maxSteps: 20, lr: 2e-4, warmupSteps: 20, checkpointEverySteps: 20 },
    );
    const full = planRuns(
      parseGridYaml(
        yaml('{target: a, draft: b, drafting: distilled, distill: {method: full, maxNewTokens: 3}}'),
        'test.yaml',
        cwd,
      ),
    ).find((r) => r.method.method === 'speculative')!;
    assert.deepEqual(full.distill!.method, { method: 'full' });
    assert.equal(full.distill!.training.lr, 5e-5);
    assert.equal(full.distill!.maxNewTokens, 3);
    assert.notEqual(full.runKey, run.runKey);
    // A plain model pair keeps the key it had: no distill in its method, no training in its identity.
    const plain = planRuns(parseGridYaml(yaml('{target: a, draft: b}'), 'test.yaml', cwd)).find(
      (r) => r.method.method === 'speculative',
    )!;
    assert.deepEqual(plain.method, { method: 'speculative', draft: 'b', gamma: 4 });
    assert.equal(plain.distill, undefined);
    const stray = issuesOf(yaml('{target: a, draft: b, distill: {steps: 5}}'));
    assert.equal(stray[0]!.path, 'speculative[0].distill');
    assert.match(stray[0]!.expected, /no distill with drafting: model/);
    const noDraft = issuesOf(yaml('{target: a, drafting: distilled}'));
    assert.equal(noDraft[0]!.path, 'speculative[0].draft');
    const badMethod = issuesOf(yaml('{target: a, draft: b, drafting: distilled, distill: {method: ia3}}'));
    assert.equal(badMethod[0]!.path, 'speculative[0].distill.method');
  });

  describe('rejects what the trainer would reject later, naming path, value and expectation', () => {
    const grid = (extra: string, methods = '[{method: lora}]') =>
      `name: t\nmodels: [{name: tiny, path: ./model, family: llama}]\nmethods: ${methods}\n${extra}\n`;
    const only = (yaml: string) => {
      const issues = issuesOf(yaml);
      assert.equal(issues.length, 1, JSON.stringify(issues));
      return issues[0]!;
    };
    const accepts = (yaml: string) => assert.doesNotThrow(() => parseGridYaml(yaml, 'test.yaml', cwd));

    it('a store URL with a scheme no backend serves', () => {
      const issue = only(grid('store: ftp://example.com/peftgrid'));
      assert.deepEqual([issue.path, issue.value], ['store', '"ftp://example.com/peftgrid"']);
      assert.match(issue.expected, /file:\/\/dir or s3:\/\/bucket\/prefix/);
      assert.equal(only(grid('store: "s3://"')).path, 'store', 's3:// needs a bucket');
      for (const ok of ['file://.data/store', 's3://bucket/prefix', 's3://bucket', './store', '/abs/store'])
        accepts(grid(`store: "${ok}"`));
      assert.equal(only(grid('data: {baseUrl: "gopher://x/y"}')).path, 'data.baseUrl');
    });

    it('dropout 1 (and each value of a dropout list)', () => {
      const issue = only(grid('', '[{method: lora, dropout: 1}]'));
      assert.deepEqual([issue.path, issue.value], ['methods[0].dropout', '1']);
      assert.match(issue.expected, /<\s*1/);
      const listed = only(grid('', '[{method: qlora, dropout: [0.05, 1]}]'));
      assert.deepEqual([listed.path, listed.value], ['methods[0].dropout[1]', '1']);
      assert.equal(
        only(grid('', '[{method: adalora, dropout: -0.1, tinit: 1, tfinal: 1}]')).path,
        'methods[0].dropout',
      );
      accepts(grid('', '[{method: lora, dropout: [0, 0.999]}]'));
    });

    it('an AdaLoRA targetR above initR, in any (initR, targetR) combination', () => {
      const issue = only(grid('', '[{method: adalora, initR: 4, targetR: 8}]'));
      assert.deepEqual([issue.path, issue.value], ['methods[0].targetR', '8']);
      assert.match(issue.expected, /at most initR \(4\)/);
      // initR 12 with targetR 8 is fine, but the grid also runs initR 6 with targetR 8.
      const combo = only(grid('', '[{method: adalora, initR: [12, 6], targetR: [4, 8]}]'));
      assert.deepEqual([combo.path, combo.value], ['methods[0].targetR', '8']);
      assert.match(combo.expected, /initR \(6\)/);
      accepts(grid('', '[{method: adalora, initR: [8, 12], targetR: [4, 8]}]'));
    });

    it('an (IA)3 feedforwardModules that is not a subset of targetModules', () => {
      const issue = only(grid('', '[{method: ia3, targetModules: [k_proj, v_proj], feedforwardModules: [down_proj]}]'));
      assert.deepEqual([issue.path, issue.value], ['methods[0].feedforwardModules', '["down_proj"]']);
      assert.match(issue.expected, /subset of targetModules \["k_proj","v_proj"\] \(not in it: down_proj\)/);
      assert.match(
        only(grid('', '[{method: ia3, feedforwardModules: [down_proj]}]')).expected,
        /targetModules given too/,
      );
      accepts(grid('', '[{method: ia3, targetModules: [k_proj, down_proj], feedforwardModules: [down_proj]}]'));
    });

    it('maxLength below 2, a negative seed', () => {
      const issue = only(grid('training: {maxLength: 1}'));
      assert.deepEqual([issue.path, issue.value], ['training.maxLength', '1']);
      assert.match(issue.expected, />=\s*2/);
      assert.equal(only(grid('training: {seed: -1}')).path, 'training.seed');
      accepts(grid('training: {maxLength: 2, seed: 0}'));
    });

    it('the rules between method fields that trainer/spec.py applies, case by case (test/fixtures/method-rules.json)', () => {
      const { cases } = JSON.parse(readFileSync(join(REPO, 'test', 'fixtures', 'method-rules.json'), 'utf8')) as {
        cases: { method: Record<string, unknown>; training: Record<string, unknown>; ok: boolean; field?: string }[];
      };
      for (const c of cases) {
        // warmup and checkpoint cadence are grid-only policies: kept within maxSteps so they stay out of it.
        const maxSteps = Number(c.training.maxSteps ?? 200);
        const yaml = grid(
          `training: ${JSON.stringify({ warmupSteps: 0, checkpointEverySteps: maxSteps, ...c.training })}`,
          `[${JSON.stringify(c.method)}]`,
        );
        if (c.ok) accepts(yaml);
        else assert.equal(only(yaml).path, `methods[0].${c.field}`, JSON.stringify(c));
      }
    });

    it('checkpointEverySteps greater than maxSteps (durability silently off)', () => {
      const issue = only(grid('training: {maxSteps: 40, warmupSteps: 0, checkpointEverySteps: 50}'));
      assert.deepEqual([issue.path, issue.value], ['training.checkpointEverySteps', '50']);
      assert.match(issue.expected, /at most training.maxSteps \(40\)/);
      accepts(grid('training: {maxSteps: 40, warmupSteps: 0, checkpointEverySteps: 40}'));
    });
  });

  it('reports YAML syntax errors with a line number', () => {
    const issues = issuesOf('name: t\nmodels: [\n');
    assert.match(issues[0]!.path, /yaml line/);
  });

  it('publishes a JSON Schema, and the committed schema/grid.schema.json is current', () => {
    const schema = gridJsonSchema() as { properties: Record<string, unknown> };
    assert.ok(schema.properties.models && schema.properties.methods && schema.properties.training);
    const committed = readFileSync(join(REPO, 'schema', 'grid.schema.json'), 'utf8');
    assert.equal(
      committed,
      JSON.stringify(schema, null, 2) + '\n',
      'regenerate it: npx peftgrid schema > schema/grid.schema.json',
    );
  });

  it("expands a per-method lr into the run's training config and its key", () => {
    const yaml =
      'name: t\nmodels: [{name: tiny, path: ./model, family: llama}]\nmethods:\n  - {method: prompt_tuning, lr: [0.03, 0.3]}\n  - {method: lora}\n';
    const grid = parseGridYaml(yaml, 'test.yaml', cwd);
    const runs = planRuns(grid);
    assert.deepEqual(
      runs.map((r) => r.training.lr),
      [0.03, 0.3, grid.training.lr],
    );
    assert.deepEqual(
      runs.map((r) => r.label),
      [
        'prompt_tuning numVirtualTokens=20 lr=0.03',
        'prompt_tuning numVirtualTokens=20 lr=0.3',
        'lora r=8 alpha=16 dropout=0.05',
      ],
    );
    assert.equal(new Set(runs.map((r) => r.runKey)).size, 3);
    assert.ok(
      runs.every((r) => !('lr' in r.method)),
      'the trainer gets lr in training, not as a method field',
    );
  });
});
