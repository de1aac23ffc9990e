/**
 * Grid-scale soak with chaos (issue #16 item 3). One grid of ≥ 100 tiny LoRA runs (tiny random-init
 * Llama on CPU: each run really trains, exports to ONNX and evaluates), continued as new every
 * `--runs-per-execution` runs, on three worker processes (2 gpu-queue, 1 cpu-queue) connected as
 * production connects them. Pass 1 is fault-free; pass 2 runs the same grid while a chaos loop
 * SIGKILLs a random worker every 20–60 s (seeded) and restarts it. Each pass has its own namespace,
 * grid id and fresh store (content keys would otherwise let pass 2 reuse pass 1's results). Then:
 * every run of both passes must complete and pass 2's results must equal pass 1's run by run
 * (bench/soak-compare.ts says what is compared); the table (runs, wall times, kills, activity
 * retries, largest history, continue-as-new count) is printed and written to `--out`/soak.json.
 *
 *   node --import tsx bench/cluster-soak.ts [--runs 100] [--trained N] [--steps 2] [--target cluster|dev]
 *     [--store file|s3] [--seed N] [--runs-per-execution ⌈runs/3⌉] [--out DIR] [--quick]
 *
 * --target cluster (default) uses the local cluster (infra/cluster: PEFTGRID_CLUSTER_* pick its
 * directory and ports; the server must already be built); --target dev a dev server of its own.
 * --quick: 6 runs (2 per execution), to try the script. Kills stay 20–60 s apart: much closer than
 * the 60–120 s heartbeat timeouts that detect a dead worker, activities would hardly ever finish.
 * Exits 1 when a run failed or a compared field differs.
 */
import './quiet-logs';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { registerNamespace } from '../infra/cluster-stack';
import { TASK_QUEUES } from '../src/common/constants';
import { temporalSettings } from '../src/common/temporal-env';
import { planRuns } from '../src/config/plan';
import type { GridProgress, GridResult, RunResult } from '../src/contracts';
import { REPO } from '../test/helpers/fixtures';
import { ensureCluster, type ClusterHandle } from '../test/helpers/cluster';
import { startS3Server, type S3Server } from '../test/helpers/s3-server';
import { localTemporal, tinyLoraGrid } from '../test/helpers/tiny-grid';
import { waitForPollers } from '../test/helpers/worker-process';
import { comparePasses, type PassComparison } from './soak-compare';
import { readGridHistories, type GridHistories } from './soak-histories';
import { FLEET, startChaos, startFleet, type Kill } from './soak-workers';

const { values } = parseArgs({
  options: {
    runs: { type: 'string' },
    trained: { type: 'string' },
    steps: { type: 'string', default: '2' },
    target: { type: 'string', default: 'cluster' },
    store: { type: 'string', default: 'file' },
    seed: { type: 'string' },
    'runs-per-execution': { type: 'string' },
    'kill-min-ms': { type: 'string' },
    'kill-max-ms': { type: 'string' },
    out: { type: 'string' },
    's3-port': { type: 'string', default: '28333' },
    quick: { type: 'boolean', default: false },
  },
});

function intArg(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new TypeError(`--${name}: got ${value}, expected an integer ≥ ${min}`);
  return n;
}

const quick = values.quick;
const RUNS = intArg('runs', values.runs, quick ? 6 : 100);
const STEPS = intArg('steps', values.steps, 2);
// Three executions of the grid chain: two continue-as-new.
const PER_EXECUTION = intArg('runs-per-execution', values['runs-per-execution'], Math.ceil(RUNS / 3));
const KILL_MIN_MS = intArg('kill-min-ms', values['kill-min-ms'], 20_000);
const KILL_MAX_MS = intArg('kill-max-ms', values['kill-max-ms'], 60_000);
// A fresh seed per invocation unless given; printed, so a soak can be replayed kill for kill.
const SEED = intArg('seed', values.seed, Date.now() % 2 ** 31, 0);
if (values.target !== 'cluster' && values.target !== 'dev')
  throw new TypeError(`--target: got ${values.target}, expected cluster or dev`);
if (values.store !== 'file' && values.store !== 's3')
  throw new TypeError(`--store: got ${values.store}, expected file or s3`);
const STAMP = Date.now().toString(36);
// Absolute: the store URL is built from it (`file://<OUT>/…`), and a relative path would read as a host.
const OUT = resolve(values.out ?? join(REPO, '.data', 'bench', `cluster-soak-${STAMP}`));
// SeaweedFS takes S3_BASE..S3_BASE+15 (test/helpers/s3-server.ts).
const S3_BASE = intArg('s3-port', values['s3-port'], 28333);

// --trained N: N of the runs fine-tune (train, export, evaluate); the rest evaluate only, as a
// study's baselines and speculative pairs do: zero- and one-shot ICL, then prompt-lookup pairs
// (gamma × maxNgram), all on the base model's one export. Default: every run trains.
const TRAINED = Math.min(RUNS, intArg('trained', values.trained, RUNS));
const ICL_SHOTS = [0, 1].slice(0, RUNS - TRAINED);
const LOOKUP = RUNS - TRAINED - ICL_SHOTS.length;

/** Learning rates that make TRAINED distinct runs with four ranks: runs differ in what they learn. */
function gridMethods(): Record<string, unknown>[] {
  const ranks = [2, 4, 8, 16];
  const lrs = Array.from({ length: Math.ceil(TRAINED / ranks.length) }, (_, i) =>
    Number((1e-3 * (1 + i / 10)).toFixed(6)),
  );
  return [
    ...(TRAINED ? [{ method: 'lora', r: ranks, alpha: 8, lr: lrs }] : []),
    ...(ICL_SHOTS.length ? [{ method: 'icl', shots: ICL_SHOTS }] : []),
  ];
}

/** LOOKUP distinct prompt-lookup pairs on the tiny model: gamma 1…8, then maxNgram 1, 2, …. */
function gridSpeculative(): Record<string, unknown>[] {
  return Array.from({ length: LOOKUP }, (_, i) => ({
    target: 'tiny-llama',
    drafting: 'prompt-lookup',
    gamma: 1 + (i % 8),
    maxNgram: 1 + Math.floor(i / 8),
  }));
}

const secs = (ms: number) => `${(ms / 1000).toFixed(0)} s`;

interface PassReport {
  pass: 'fault-free' | 'chaos';
  namespace: string;
  gridId: string;
  store: string;
  wallMs: number;
  completed: number;
  failed: { runKey: string; status: string; error?: string }[];
  kills: Kill[];
  workerStarts: Record<string, number>;
  /** Worker exits the bench did not cause, by worker. */
  workerCrashes: Record<string, number>;
  histories: GridHistories;
  results: RunResult[];
}

async function runPass(
  target: ClusterHandle,
  pass: PassReport['pass'],
  index: number,
  s3: S3Server | undefined,
): Promise<PassReport> {
  const namespace = `soak-${STAMP}-p${index}`;
  await registerNamespace({ ...target.settings, namespace }, (l) => console.log(`[soak] ${l}`));
  const dir = join(OUT, `pass-${index}`);
  const store = s3 ? `s3://${s3.bucket}/soak-${STAMP}-p${index}` : `file://${join(dir, 'store')}`;
  const grid = tinyLoraGrid({
    name: `soak-p${index}`,
    store,
    maxSteps: STEPS,
    // One checkpoint mid-run when there is a mid-run: a kill during training resumes from it.
    checkpointEverySteps: Math.max(1, Math.floor(STEPS / 2)),
    device: 'cpu',
    extra: {
      methods: gridMethods(),
      ...(LOOKUP ? { speculative: gridSpeculative() } : {}),
      concurrency: { gpu: 2, cpu: 2 },
    },
  });
  const all = planRuns(grid);
  const runs = [...all.filter((r) => r.trains).slice(0, TRAINED), ...all.filter((r) => !r.trains)];
  const client = new Client({ connection: target.connection, namespace });
  const fleet = startFleet(target, namespace, join(dir, 'workers'), (l) => console.log(l));
  try {
    await waitForPollers(client, 180_000);
    const gridId = `soak-${STAMP}-p${index}`;
    console.log(
      `[soak] pass ${index} (${pass}): ${runs.length} runs, grid ${gridId}, namespace ${namespace}, store ${store}`,
    );
    const t0 = Date.now();
    const handle = await client.workflow.start('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: gridId,
      args: [{ gridId, grid, runs, runsPerExecution: PER_EXECUTION }],
    });
    const chaos =
      pass === 'chaos'
        ? startChaos(fleet, { seed: SEED, minMs: KILL_MIN_MS, maxMs: KILL_MAX_MS }, (l) => console.log(l))
        : undefined;
    let asking = false;
    const ticker = setInterval(() => {
      if (asking) return; // a query waits while the cpu worker (which answers it) is down
      asking = true;
      void client.workflow
        .getHandle(gridId)
        .query<GridProgress>('progress')
        .then((p) => {
          const done = p.runs.filter((r) => r.phase === 'completed' || r.phase === 'failed').length;
          console.log(`[soak] pass ${index}: ${done}/${runs.length} runs finished at +${secs(Date.now() - t0)}`);
        })
        .catch(() => undefined) // the grid is between executions or its worker is down: next tick
        .finally(() => (asking = false));
    }, 60_000);
    let result: GridResult;
    try {
      result = (await handle.result()) as GridResult;
    } finally {
      clearInterval(ticker);
      await chaos?.stop();
    }
    const wallMs = Date.now() - t0;
    const failed = result.runs
      .filter((r) => r.status !== 'completed')
      .map((r) => ({ runKey: r.runKey, status: r.status, error: r.error }));
    const histories = await readGridHistories(client, gridId, handle.firstExecutionRunId);
    return {
      pass,
      namespace,
      gridId,
      store,
      wallMs,
      completed: result.runs.length - failed.length,
      failed,
      kills: chaos?.kills ?? [],
      workerStarts: Object.fromEntries(fleet.members.map((m) => [m.name, m.starts])),
      workerCrashes: Object.fromEntries(fleet.members.map((m) => [m.name, m.crashes])),
      histories,
      results: result.runs,
    };
  } finally {
    await fleet.stop();
  }
}

/** The Temporal to run on: the local cluster (as production: mTLS, PostgreSQL) or a dev server. */
async function openTarget(): Promise<{ target: ClusterHandle; close(): Promise<void> }> {
  if (values.target === 'cluster') {
    const bin = join(process.env.PEFTGRID_CACHE ?? join(homedir(), '.cache', 'peftgrid'), 'bin');
    for (const b of ['temporal-server', 'temporal-sql-tool'])
      if (!existsSync(join(bin, b)))
        throw new Error(`${join(bin, b)} is missing: build it first (bash infra/bootstrap.sh --with-cluster)`);
    const target = await ensureCluster();
    return { target, close: () => target.connection.close() };
  }
  const env = await localTemporal();
  const address = env.connection.options.address;
  const settings = temporalSettings({ TEMPORAL_ADDRESS: address });
  const connection = await Connection.connect({ address });
  return {
    target: { settings, env: { TEMPORAL_ADDRESS: address }, connection, client: new Client({ connection }) },
    async close() {
      await connection.close();
      await env.teardown();
    },
  };
}

function table(passes: PassReport[], cmp: PassComparison): string {
  const [a, b] = passes as [PassReport, PassReport];
  const r = (p: PassReport) => p.histories.retries;
  const row = (name: string, x: string | number, y: string | number) => `| ${name} | ${x} | ${y} |`;
  const largest = (p: PassReport) =>
    `${p.histories.largestByEvents.events} events (${p.histories.largestByEvents.workflowId}); ` +
    `${(p.histories.largestByBytes.bytes / 1024).toFixed(1)} KiB (${p.histories.largestByBytes.workflowId})`;
  return [
    '| | pass 1: fault-free | pass 2: chaos |',
    '| --- | --- | --- |',
    row('runs completed', `${a.completed} / ${a.results.length}`, `${b.completed} / ${b.results.length}`),
    row('wall time', secs(a.wallMs), `${secs(b.wallMs)} (${(b.wallMs / a.wallMs).toFixed(2)}× pass 1)`),
    row(
      'worker SIGKILLs',
      0,
      `${b.kills.length} (${FLEET.map(({ name }) => `${name} ${b.kills.filter((k) => k.worker === name).length}`).join(', ')})`,
    ),
    row(
      'activity retries Σ(attempt−1)',
      r(a).activityRetries,
      `${r(b).activityRetries} over ${r(b).retriedActivities} activities`,
    ),
    row(
      'ActivityTaskFailed / TimedOut events',
      `${r(a).activityFailed} / ${r(a).activityTimedOut}`,
      `${r(b).activityFailed} / ${r(b).activityTimedOut}`,
    ),
    row(
      'WorkflowTaskTimedOut / Failed events',
      `${r(a).workflowTaskTimedOut} / ${r(a).workflowTaskFailed}`,
      `${r(b).workflowTaskTimedOut} / ${r(b).workflowTaskFailed}`,
    ),
    row(
      'grid executions (continue-as-new)',
      `${a.histories.gridExecutions} (${a.histories.continueAsNew})`,
      `${b.histories.gridExecutions} (${b.histories.continueAsNew})`,
    ),
    row('largest workflow history', largest(a), largest(b)),
    row('histories read', a.histories.executions, b.histories.executions),
    row(
      'runs equal to pass 1',
      '–',
      `${cmp.identical} / ${cmp.compared} (${cmp.fields} fields, ${cmp.differences.length} differ)`,
    ),
  ].join('\n');
}

/** soak.json: the settings, each pass without its per-run results, the comparison and the table. */
function writeSummary(passes: PassReport[], cmp?: PassComparison, md?: string): void {
  const summary = {
    seed: SEED,
    runs: RUNS,
    trained: TRAINED,
    steps: STEPS,
    runsPerExecution: PER_EXECUTION,
    target: values.target,
    store: values.store,
    killEveryMs: [KILL_MIN_MS, KILL_MAX_MS],
    passes: passes.map(({ results: _r, ...p }) => p),
    ...(cmp ? { comparison: cmp, table: md } : { incomplete: 'pass 2 has not finished' }),
  };
  writeFileSync(join(OUT, 'soak.json'), `${JSON.stringify(summary, null, 2)}\n`);
  // Per-run results too: what the comparison read, for a look at any difference.
  for (const p of passes) writeFileSync(join(OUT, `results-${p.pass}.json`), `${JSON.stringify(p.results, null, 2)}\n`);
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  console.log(
    `[soak] seed ${SEED}; ${RUNS} runs (${TRAINED} fine-tuned × ${STEPS} steps, ${ICL_SHOTS.length} ICL, ${LOOKUP} prompt-lookup), ${PER_EXECUTION} runs per execution, target ${values.target}, ` +
      `store ${values.store}, kills every ${KILL_MIN_MS / 1000}–${KILL_MAX_MS / 1000} s; out ${OUT}`,
  );
  const s3 = values.store === 's3' ? await startS3Server(join(OUT, 's3'), S3_BASE) : undefined;
  if (s3) Object.assign(process.env, s3.env); // the workers inherit the bench's environment
  const { target, close } = await openTarget();
  const passes: PassReport[] = [];
  try {
    passes.push(await runPass(target, 'fault-free', 1, s3));
    const p1 = passes[0]!;
    console.log(
      `[soak] pass 1: ${p1.completed}/${p1.results.length} completed in ${secs(p1.wallMs)}, ` +
        `${p1.histories.gridExecutions} grid executions`,
    );
    // Written now too: a pass 2 cut short still leaves pass 1's figures.
    writeSummary(passes);
    passes.push(await runPass(target, 'chaos', 2, s3));
  } finally {
    await close();
    await s3?.stop();
  }
  const cmp = comparePasses(passes[0]!.results, passes[1]!.results);
  for (const d of cmp.differences.slice(0, 50))
    console.log(`[soak] DIFF ${d.runKey} ${d.field}: pass 1 ${JSON.stringify(d.a)}, pass 2 ${JSON.stringify(d.b)}`);
  for (const p of passes)
    for (const f of p.failed) console.log(`[soak] FAILED (${p.pass}) ${f.runKey}: ${f.status} ${f.error ?? ''}`);
  const md = table(passes, cmp);
  console.log(`\n${md}\n`);
  writeSummary(passes, cmp, md);
  console.log(`[soak] wrote ${join(OUT, 'soak.json')}`);
  const ok = passes.every((p) => p.failed.length === 0) && cmp.differences.length === 0 && cmp.missing.length === 0;
  process.exitCode = ok ? 0 : 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
