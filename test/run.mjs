#!/usr/bin/env node
// Runs the test tiers in order: unit → python (pytest) → workflow → e2e.
// `node test/run.mjs [tier ...]` runs only the named tiers. Exits non-zero if any tier fails.
import { spawnSync } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const all = ['unit', 'python', 'workflow', 'e2e'];
const tiers = process.argv.slice(2).length ? process.argv.slice(2) : all;

function tsFiles(dir) {
  const abs = join(root, 'test', dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs).filter((f) => f.endsWith('.test.ts')).sort().map((f) => join('test', dir, f));
}

let failed = 0;
for (const tier of tiers) {
  if (!all.includes(tier)) {
    console.error(`unknown test tier "${tier}"; expected one of ${all.join(', ')}`);
    process.exit(2);
  }
  console.log(`\n=== ${tier} tests ===`);
  let res;
  if (tier === 'python') {
    res = spawnSync(join(root, '.venv/bin/python'), ['-m', 'pytest', '-q', 'test/python'], { cwd: root, stdio: 'inherit' });
  } else {
    const files = tsFiles(tier);
    if (files.length === 0) { console.log(`(no ${tier} tests)`); continue; }
    // Workflow and e2e tests share one dev server and real CPU-heavy training: run files one at a time.
    const conc = tier === 'unit' ? [] : ['--test-concurrency=1'];
    res = spawnSync(process.execPath, ['--import', 'tsx', '--test', ...conc, ...files], { cwd: root, stdio: 'inherit' });
  }
  if (res.status !== 0) { failed++; console.error(`${tier} tests failed (exit ${res.status ?? res.signal})`); }
}
process.exit(failed ? 1 : 0);
