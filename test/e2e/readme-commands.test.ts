/**
 * End to end: every `npx peftgrid …` line in README.md's code blocks, run as written (through bash,
 * in a fresh `git clone` of HEAD) on the embedded stack with this test's own ports and data dir.
 * Each line must print something and exit with its documented code; a README line this test does
 * not know fails it, so a new command in the README gets a check here.
 *
 * The clone has only committed files (commit before running this), with node_modules, .venv and
 * .data/models linked from the repository instead of reinstalled. One substitution, for time: the
 * clone's examples/study-small.yaml is cut to one tiny random-init model × LoRA + zero-shot ICL
 * with a few steps, so that `grid start examples/study-small.yaml --wait` runs in minutes; the
 * study's full shape on tiny models is test/e2e/study-small.test.ts.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { REPO, SAMPLES, scratchDir, tinyModel } from '../helpers/fixtures';
import { npxPeftgrid } from './npx';

const PORT = 17253;
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const dir = scratchDir('e2e-readme');
const clone = join(dir, 'peftgrid');
const env = {
  ...process.env,
  PEFTGRID_DATA_DIR: join(dir, 'data'),
  PEFTGRID_TEMPORAL_PORT: String(PORT),
  PEFTGRID_UI_PORT: '18253',
  TEMPORAL_ADDRESS: `127.0.0.1:${PORT}`,
  PEFTGRID_UI_URL: 'http://localhost:18253',
};

/** The `npx peftgrid …` lines of the fenced code blocks of a markdown text, comments stripped. */
export function readmeCommands(markdown: string): string[] {
  const lines: string[] = [];
  for (const block of markdown.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)) {
    for (const raw of block[1]!.split('\n')) {
      const line = raw.replace(/\s+#.*$/, '').trim();
      if (/^npx peftgrid\b/.test(line)) lines.push(line);
    }
  }
  return lines;
}

interface Expectation {
  /** Exit code the README documents. */
  code: number;
  /** What stdout must show (every command prints something). */
  out: RegExp;
  timeoutMs?: number;
}

/**
 * README lines this test knows but does not run, with why. The "Run on a real cluster" block
 * needs temporal-server built from its Go module (tens of minutes on a fresh machine, so it is
 * opt-in: `bash infra/bootstrap.sh --with-cluster`); `npm run test:cluster` runs that path.
 */
const NOT_RUN_HERE: Record<string, string> = {
  'cluster up': 'the local cluster (npm run test:cluster)',
  'run examples/demo.yaml --wait': 'it runs against the local cluster of the line before',
  'cluster down': 'the local cluster (npm run test:cluster)',
};

/** Every README line, by what follows `npx peftgrid `. */
const EXPECTED: Record<string, Expectation> = {
  '--help': { code: 0, out: /^peftgrid — durable PEFT[\s\S]*Usage: peftgrid <command>/ },
  '--version': { code: 0, out: new RegExp(`^${VERSION.replace(/\./g, '\\.')}\\n$`) },
  'validate examples/demo.yaml': { code: 0, out: /^examples\/demo\.yaml: valid — 2 run\(s\)/ },
  'validate examples/custom-jsonl.yaml': { code: 0, out: /^examples\/custom-jsonl\.yaml: valid — 2 run\(s\)/ },
  'validate examples/demo.yaml --set training.maxSteps=20': {
    code: 0,
    out: /^examples\/demo\.yaml: valid — 2 run\(s\)/,
  },
  schema: { code: 0, out: /^\{\n\s+"\$schema"/ },
  'dev up': {
    code: 0,
    out: new RegExp(`Temporal server: up at 127\\.0\\.0\\.1:${PORT}[\\s\\S]*pollers cpu=1 gpu=1`),
    timeoutMs: 180_000,
  },
  'dev status': { code: 0, out: /Temporal server: up[\s\S]*worker: +running/ },
  'grid list': { code: 0, out: /peftgrid-grid-study-small-/ },
  'dev down': { code: 0, out: /embedded stack stopped/ },
  'grid start examples/study-small.yaml --wait': { code: 0, out: /2 runs: 2 completed/, timeoutMs: 15 * 60_000 },
};

/** The clone's examples/study-small.yaml, cut to minutes (see the header). */
function cutStudySmall(): void {
  const file = join(clone, 'examples', 'study-small.yaml');
  const doc = parse(readFileSync(file, 'utf8')) as {
    store: string;
    data: object;
    training: object;
    eval: object;
    speculative?: unknown;
    models: { name: string; path: string; family: string }[];
    methods: { method: string; shots?: number[] }[];
  };
  doc.models = [{ ...doc.models[0]!, path: tinyModel('llama'), family: 'llama' }];
  doc.methods = [doc.methods.find((m) => m.method === 'lora')!, { method: 'icl', shots: [0] }];
  delete doc.speculative;
  doc.store = `file://${join(dir, 'store')}`;
  Object.assign(doc.data, { baseUrl: `file://${SAMPLES}`, maxTrainPerDataset: 16, testSamples: 8 });
  Object.assign(doc.training, { maxSteps: 4, warmupSteps: 1, checkpointEverySteps: 2 });
  Object.assign(doc.eval, { maxNewTokens: 4, batchSize: 8 });
  writeFileSync(file, stringify(doc));
}

describe('README.md commands on a fresh clone', { timeout: 25 * 60_000 }, () => {
  after(() => {
    npxPeftgrid(['dev', 'down'], { cwd: clone, env });
  });

  it('finds the README lines, and knows each of them', () => {
    const lines = readmeCommands(readFileSync(join(REPO, 'README.md'), 'utf8'));
    for (const need of ['--help', '--version', 'dev up', 'grid start examples/study-small.yaml --wait']) {
      assert.ok(
        lines.includes(`npx peftgrid ${need}`),
        `README.md has no \`npx peftgrid ${need}\` line: ${lines.join(' | ')}`,
      );
    }
    for (const line of lines) {
      const args = line.replace(/^npx peftgrid /, '');
      assert.ok(
        EXPECTED[args] || NOT_RUN_HERE[args],
        `README line \`${line}\` has no expectation in this test: add one`,
      );
    }
  });

  it('runs every line as written, in README order', (t) => {
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: REPO,
      encoding: 'utf8',
    });
    if (dirty) t.diagnostic(`uncommitted changes are not in the clone:\n${dirty}`);
    execFileSync('git', ['clone', '--quiet', REPO, clone], { stdio: ['ignore', 'ignore', 'inherit'] });
    for (const p of ['node_modules', '.venv']) symlinkSync(join(REPO, p), join(clone, p));
    mkdirSync(join(clone, '.data'));
    symlinkSync(join(REPO, '.data', 'models'), join(clone, '.data', 'models'));
    cutStudySmall();

    const lines = readmeCommands(readFileSync(join(clone, 'README.md'), 'utf8'));
    for (const line of lines) {
      const args = line.replace(/^npx peftgrid /, '');
      if (NOT_RUN_HERE[args] && !EXPECTED[args]) {
        t.diagnostic(`not run here: \`${line}\` (${NOT_RUN_HERE[args]})`);
        continue;
      }
      const want = EXPECTED[args]!;
      const res = spawnSync('bash', ['-c', line], {
        cwd: clone,
        env,
        encoding: 'utf8',
        timeout: want.timeoutMs ?? 120_000,
      });
      const shown = `\`${line}\` exited ${res.status ?? res.signal}\n--- stdout\n${res.stdout.slice(-3000)}\n--- stderr\n${res.stderr.slice(-3000)}`;
      assert.equal(res.status, want.code, shown);
      assert.ok(res.stdout.trim().length > 0, `prints something: ${shown}`);
      assert.match(res.stdout, want.out, shown);
    }
  });
});
