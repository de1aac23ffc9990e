import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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
