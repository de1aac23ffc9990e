import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO } from '../helpers/fixtures';

// bench/gpu-check.sh runs on a GPU machine nobody here can reach: the least it must do is parse,
// document its flags and refuse what it does not know before touching anything.
const SCRIPT = join(REPO, 'bench', 'gpu-check.sh');
const bash = (...args: string[]) => spawnSync('bash', args, { cwd: REPO, encoding: 'utf8', timeout: 30_000 });

test('gpu-check.sh passes bash -n', () => {
  const r = bash('-n', SCRIPT);
  assert.equal(r.status, 0, r.stderr);
});

test('gpu-check.sh --help documents every flag and exits 0 without starting anything', () => {
  const r = bash(SCRIPT, '--help');
  assert.equal(r.status, 0, r.stderr);
  for (const flag of ['--cpu-smoke', '--out', '--steps', '--no-7b', '--keep', '--help'])
    assert.match(r.stdout, new RegExp(`\\[${flag}\\b`), `--help does not mention ${flag}`);
  assert.match(r.stdout, /SIGKILL/);
  assert.match(r.stdout, /speculative/);
  assert.doesNotMatch(r.stdout, /set -euo/);
});

test('gpu-check.sh rejects an unknown flag with exit 2', () => {
  const r = bash(SCRIPT, '--gpu-smoke');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown argument '--gpu-smoke'/);
});

// The summary reads the merged result fields (RunResult.training.{peakMemoryBytes, peakMemorySource,
// mfu, gradientCheckpointing}, engine, precision): a figure a run lacks prints "n/a", never a guess.
test('gpu-check-summary prints the resources fields, engine and precision, and the torch-vs-onnx agreement', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpu-check-summary-'));
  const run = (over: Record<string, unknown>) => ({
    runKey: 'k',
    model: 'small',
    method: 'icl',
    label: 'icl shots=0',
    status: 'completed',
    throughput: { tokensPerSec: 12.5, ttftMsP50: 1, tokenLatencyMsP50: 1, tokenLatencyMsP95: 1, hitLimitFraction: 0 },
    ...over,
  });
  const train = run({
    method: 'lora',
    label: 'lora r=16',
    training: {
      steps: 4,
      trainLoss: 1,
      trainPerplexity: 2,
      tokensPerSec: 104,
      peakMemoryBytes: 2.5e9,
      peakMemorySource: 'ru_maxrss',
      gradientCheckpointing: false,
    },
    engine: 'torch',
    precision: 'fp32',
  });
  const lines = (p: string, rows: Array<{ id: string; prediction: string; sumLogProb: number }>) => {
    mkdirSync(join(dir, 'store', p), { recursive: true });
    writeFileSync(join(dir, 'store', p, 'predictions.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  };
  lines('t', [
    { id: 'a', prediction: 'paris', sumLogProb: -1 },
    { id: 'b', prediction: 'blue', sumLogProb: -2 },
  ]);
  lines('o', [
    { id: 'a', prediction: 'paris', sumLogProb: -1.001 },
    { id: 'b', prediction: 'red', sumLogProb: -2 },
  ]);
  const grid = (name: string, runs: unknown[]) => {
    writeFileSync(join(dir, name), JSON.stringify({ gridId: name, runs }));
    return join(dir, name);
  };
  const t = grid('torch.json', [train, run({ evalPrefix: 't', engine: 'torch', precision: 'fp32' })]);
  const o = grid('onnx.json', [run({ evalPrefix: 'o', engine: 'onnx', precision: 'fp32' })]);
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'bench/gpu-check-summary.ts', '--store', join(dir, 'store'), '--agree', t, '--agree', o, t, o],
    { cwd: REPO, encoding: 'utf8', timeout: 30_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /\| lora r=16 \(small\) \| completed \| 104 \| n\/a \| 2\.50 \(ru_maxrss\) \| off \| 12\.5 \| torch \| fp32 \|/,
  );
  assert.match(
    r.stdout,
    /\| icl shots=0 \(small\) \| completed \| n\/a \| n\/a \| n\/a \| n\/a \| 12\.5 \| onnx \| fp32 \|/,
  );
  assert.match(
    r.stdout,
    /torch \(torch, fp32\) vs onnx \(onnx, fp32\) greedy outputs: 1\/2 items identical \(50\.0%\)/,
  );
  assert.match(r.stdout, /max \|Δ Σ ln p\(answer\)\| per item 1\.00e-3/);
});

test('large-model-cpu.ts rejects an unknown --only phase before building anything', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/large-model-cpu.ts', '--only', 'train,bogus'], {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.notEqual(r.status, 0);
  assert.match(
    r.stderr,
    /--only: got 'bogus'; expected a comma-separated list of stage, export, train, guard, generate/,
  );
});

test('gpu-check-summary refuses --agree with one file instead of comparing nothing', () => {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'bench/gpu-check-summary.ts', '--agree', 'a.json', 'b.json'],
    {
      cwd: REPO,
      encoding: 'utf8',
      timeout: 30_000,
    },
  );
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--agree: got 1 file\(s\) \(a\.json\); expected two/);
});
