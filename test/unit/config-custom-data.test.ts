import { strict as assert } from 'node:assert';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadGridConfig, parseGridYaml } from '../../src/config/validate';
import { applyOverrides } from '../../src/config/overrides';
import { generateCustomSamples, CUSTOM_SAMPLES } from '../../datasets/custom-samples';
import { SAMPLES_DIR } from '../../src/data/catalog';
import { REPO } from '../helpers/fixtures';

const cwd = mkdtempSync(join(tmpdir(), 'peftgrid-custom-'));
mkdirSync(join(cwd, 'model'));
writeFileSync(join(cwd, 'model', 'config.json'), '{}');
writeFileSync(join(cwd, 'model', 'tokenizer.json'), '{}');
writeFileSync(join(cwd, 'train.jsonl'), '{"question": "q", "answer": "a"}\n');
writeFileSync(join(cwd, 'test.jsonl'), '{"question": "p", "answer": "b"}\n');
mkdirSync(join(cwd, 'hf'));
writeFileSync(join(cwd, 'hf', 'dataset_dict.json'), '{"splits": ["train", "test"]}');

const grid = (datasets: string) => `
name: t
data:
  datasets:
${datasets}
models:
  - {name: tiny, path: ./model, family: llama}
methods:
  - {method: lora}
`;

function issuesOf(yaml: string, sets: string[] = []) {
  try {
    parseGridYaml(yaml, 'test.yaml', cwd, sets);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.issues;
  }
  assert.fail('config was accepted');
}

describe('custom datasets in data.datasets', () => {
  it('accepts JSONL files and hfDisk next to UnifiedQA names; paths become absolute file:// URLs', () => {
    const g = parseGridYaml(
      grid(`    - boolq
    - {name: mine, format: extractive, train: train.jsonl, test: ./test.jsonl}
    - {name: hfmine, format: yes_no, layout: alpaca, hfDisk: hf, splits: {test: validation}}`),
      'test.yaml',
      cwd,
    );
    assert.deepEqual(g.data.datasets![0], 'boolq');
    assert.deepEqual(g.data.datasets![1], {
      name: 'mine',
      format: 'extractive',
      layout: 'qa',
      train: `file://${join(cwd, 'train.jsonl')}`,
      test: `file://${join(cwd, 'test.jsonl')}`,
    });
    assert.deepEqual(g.data.datasets![2], {
      name: 'hfmine',
      format: 'yes_no',
      layout: 'alpaca',
      hfDisk: join(cwd, 'hf'),
      splits: { train: 'train', test: 'validation' },
    });
  });

  it('an unknown format is an error naming the field, the value and the allowed names', () => {
    const issues = issuesOf(grid(`    - {name: mine, format: yesno, train: train.jsonl, test: test.jsonl}`));
    assert.deepEqual(issues, [
      {
        path: 'data.datasets[0].format',
        value: '"yesno"',
        expected: 'one of "yes_no", "multiple_choice", "extractive", "abstractive"',
      },
    ]);
  });

  it('rejects an unknown layout, a missing source, a missing test file, both sources, a UnifiedQA name, duplicates', () => {
    const paths = (yaml: string) => issuesOf(yaml).map((i) => `${i.path}: ${i.expected}`);
    assert.match(
      paths(grid(`    - {name: m, format: yes_no, layout: sharegpt, train: train.jsonl, test: test.jsonl}`))[0]!,
      /layout: one of "qa", "chat", "alpaca"/,
    );
    assert.match(paths(grid(`    - {name: m, format: yes_no}`))[0]!, /^data\.datasets\[0\]: a source: train and test/);
    assert.match(
      paths(grid(`    - {name: m, format: yes_no, train: train.jsonl}`))[0]!,
      /^data\.datasets\[0\]\.test: a JSONL file/,
    );
    assert.match(
      paths(grid(`    - {name: m, format: yes_no, train: nope.jsonl, test: test.jsonl}`))[0]!,
      /^data\.datasets\[0\]\.train: an existing JSONL file/,
    );
    assert.match(
      paths(grid(`    - {name: m, format: yes_no, train: train.jsonl, test: test.jsonl, hfDisk: hf}`))[0]!,
      /hfDisk: one source: train\/test JSONL files, hfDisk or hub \(got train\/test and hfDisk\)/,
    );
    assert.match(paths(grid(`    - {name: m, format: yes_no, hfDisk: model}`))[0]!, /hfDisk: a DatasetDict directory/);
    assert.match(
      paths(grid(`    - {name: boolq, format: yes_no, train: train.jsonl, test: test.jsonl}`))[0]!,
      /name: a name that is not a UnifiedQA dataset/,
    );
    assert.match(
      paths(
        grid(
          `    - {name: m, format: yes_no, train: train.jsonl, test: test.jsonl}\n    - {name: m, format: abstractive, train: train.jsonl, test: test.jsonl}`,
        ),
      )[0]!,
      /^data\.datasets\[1\]\.name: a unique dataset name/,
    );
  });

  it('a hub dataset: owner/name with an optional revision and splits; a bad id or a stray revision is an error', () => {
    const g = parseGridYaml(
      grid(
        `    - {name: h, format: abstractive, layout: chat, hub: acme/chats, revision: v1, splits: {test: validation}}`,
      ),
      't',
      cwd,
    );
    assert.deepEqual(g.data.datasets![0], {
      name: 'h',
      format: 'abstractive',
      layout: 'chat',
      hub: 'acme/chats',
      revision: 'v1',
      splits: { train: 'train', test: 'validation' },
    });
    const paths = (yaml: string) => issuesOf(yaml).map((i) => `${i.path}: ${i.expected}`);
    assert.match(
      paths(grid(`    - {name: h, format: yes_no, hub: "a--b/c"}`))[0]!,
      /^data\.datasets\[0\]\.hub: a hub dataset id/,
    );
    assert.match(
      paths(grid(`    - {name: h, format: yes_no, train: train.jsonl, test: test.jsonl, revision: main}`))[0]!,
      /^data\.datasets\[0\]\.revision: no revision/,
    );
    assert.match(paths(grid(`    - {name: h, format: yes_no, hub: a/b, hfDisk: hf}`))[0]!, /one source/);
  });

  it('remote files are not checked on disk', () => {
    const g = parseGridYaml(
      grid(`    - {name: m, format: yes_no, train: "https://example.org/t.jsonl", test: "s3://b/t.jsonl"}`),
      't',
      cwd,
    );
    assert.equal((g.data.datasets![0] as { train: string }).train, 'https://example.org/t.jsonl');
  });

  it('examples/custom-jsonl.yaml is valid and uses the shipped samples', () => {
    const g = loadGridConfig(join(REPO, 'examples', 'custom-jsonl.yaml'), REPO);
    const custom = g.data.datasets!.filter((d) => typeof d !== 'string');
    assert.deepEqual(
      custom.map((d) => d.name),
      CUSTOM_SAMPLES.map((s) => s.name),
    );
  });

  it('the shipped custom samples are exactly what the seeded generator writes', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'pg-custom-samples-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    for (const { file } of generateCustomSamples(dir, 42))
      assert.ok(
        readFileSync(join(dir, file)).equals(readFileSync(join(SAMPLES_DIR, file))),
        `${file} differs: regenerate`,
      );
  });
});

describe('--set path=value', () => {
  const base = grid(`    - boolq`);

  it('overrides fields by dotted path, values typed as YAML, list entries by index', () => {
    const g = parseGridYaml(base, 't', cwd, [
      'training.maxSteps=40',
      'training.warmupSteps=4',
      'models.0.family=gemma',
      'methods.0.r=[4, 8]',
      'eval.threads=2',
      'training.gradientCheckpointing=false',
      'name=renamed',
    ]);
    assert.equal(g.training.maxSteps, 40);
    assert.equal(g.models[0]!.family, 'gemma');
    assert.deepEqual((g.methods[0] as { r: number[] }).r, [4, 8]);
    assert.equal(g.eval.threads, 2);
    assert.equal(g.training.gradientCheckpointing, false);
    assert.equal(g.name, 'renamed');
  });

  it('an overridden value is validated like the file: the error names the path', () => {
    assert.deepEqual(
      issuesOf(base, ['training.maxSteps=-4']).map((i) => [i.path, i.value]),
      [['training.maxSteps', '-4']],
    );
    assert.deepEqual(
      issuesOf(base, ['training.maxStep=4']).map((i) => i.path),
      ['training.maxStep'],
    );
    assert.deepEqual(
      issuesOf(base, ['models.0.family=gpt']).map((i) => i.path),
      ['models[0].family'],
    );
  });

  it('malformed --set arguments and impossible paths are errors', () => {
    assert.match(issuesOf(base, ['training.maxSteps'])[0]!.expected, /path=value/);
    assert.match(issuesOf(base, ['=4'])[0]!.expected, /path=value/);
    assert.match(issuesOf(base, ['models.5.name=x'])[0]!.expected, /list index from 0 to 1/);
    assert.match(issuesOf(base, ['name.first=x'])[0]!.expected, /an object or list/);
  });

  it('does not modify the document it is given', () => {
    const doc = { training: { maxSteps: 1 } };
    const { doc: out } = applyOverrides(doc, ['training.maxSteps=2']);
    assert.deepEqual(doc, { training: { maxSteps: 1 } });
    assert.deepEqual(out, { training: { maxSteps: 2 } });
    // Only the first `=` separates: the value keeps the rest.
    assert.deepEqual(applyOverrides({}, ['a.b=x=y']).doc, { a: { b: 'x=y' } });
  });
});

describe('peftgrid validate --set (the CLI as typed)', () => {
  /** Runs main() with stdout captured; returns its exit code (a ConfigError is exit 2) and output. */
  async function cli(args: string[]): Promise<{ code: number; out: string }> {
    const { main, exitCodeOf } = await import('../../src/cli/main');
    const writes: string[] = [];
    const out = process.stdout.write.bind(process.stdout);
    const err = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((s: string) => writes.push(s) > 0) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => writes.push(s) > 0) as typeof process.stderr.write;
    try {
      return { code: await main(args).catch(exitCodeOf), out: writes.join('') };
    } finally {
      process.stdout.write = out;
      process.stderr.write = err;
    }
  }

  it('applies repeated --set before validating, and names the path of a bad one', async () => {
    const file = join(cwd, 'grid.yaml');
    writeFileSync(file, grid(`    - boolq`));
    const prev = process.cwd();
    process.chdir(cwd);
    try {
      const ok = await cli(['validate', file, '--offline', '--json', '--set', 'methods.0.r=[4, 8]']);
      assert.equal(ok.code, 0, ok.out);
      assert.equal((JSON.parse(ok.out) as { runs: unknown[] }).runs.length, 2, 'the list from --set expands the grid');
      const bad = await cli([
        'validate',
        file,
        '--offline',
        '--set',
        'training.maxSteps=0',
        '--set',
        'eval.batchSize=2',
      ]);
      assert.equal(bad.code, 2);
      assert.match(
        bad.out,
        /with --set training\.maxSteps=0 --set eval\.batchSize=2:\n {2}- training\.maxSteps: got 0/,
      );
    } finally {
      process.chdir(prev);
    }
  });
});
