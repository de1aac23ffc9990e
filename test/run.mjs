#!/usr/bin/env node
// Runs the test tiers in order: unit → python (pytest) → activity → workflow → e2e.
// `node test/run.mjs [tier ...]` runs only the named tiers. Exits non-zero if any tier fails.
// `acceptance` is opt-in (never in the default run): examples/study.yaml end to end, 29 runs of 200
// steps, hours on a laptop CPU (`npm run test:acceptance`; PEFTGRID_STUDY_SMOKE_STEPS=N shortens it).
// `tracking` is opt-in: a real MLflow server (`bootstrap.sh --with-mlflow`, ~800 MB) and two tiny
// trainings, one killed and resumed, 2-5 min (`npm run test:tracking`).
// `cluster` is opt-in too: the fault suite on a real temporal-server + PostgreSQL with mTLS
// (`npm run test:cluster`; the first run builds the server, minutes).
import { spawnSync } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const all = ['unit', 'python', 'activity', 'workflow', 'e2e'];
const optIn = ['acceptance', 'tracking', 'cluster'];
const tiers = process.argv.slice(2).length ? process.argv.slice(2) : all;

function tsFiles(dir) {
  const abs = join(root, 'test', dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs)
    .filter((f) => f.endsWith('.test.ts'))
    .sort()
    .map((f) => join('test', dir, f));
}

// Test logs stay readable: peftgrid's own logs at warn unless asked otherwise.
process.env.PEFTGRID_LOG_LEVEL ??= 'warn';
let failed = 0;
for (const tier of tiers) {
  if (!all.includes(tier) && !optIn.includes(tier)) {
    console.error(`unknown test tier "${tier}"; expected one of ${[...all, ...optIn].join(', ')}`);
    process.exit(2);
  }
  console.log(`\n=== ${tier} tests ===`);
  let res;
  if (tier === 'python') {
    res = spawnSync(join(root, '.venv/bin/python'), ['-m', 'pytest', '-q', 'test/python'], {
      cwd: root,
      stdio: 'inherit',
    });
  } else {
    const files = tsFiles(tier);
    if (files.length === 0) {
      console.log(`(no ${tier} tests)`);
      continue;
    }
    // Activity, workflow and e2e tests start real servers and run real training: one file at a time.
    const conc = tier === 'unit' ? [] : ['--test-concurrency=1'];
    res = spawnSync(process.execPath, ['--import', 'tsx', '--test', ...conc, ...files], {
      cwd: root,
      stdio: 'inherit',
    });
  }
  if (res.status !== 0) {
    failed++;
    console.error(`${tier} tests failed (exit ${res.status ?? res.signal})`);
  }
}
process.exit(failed ? 1 : 0);
