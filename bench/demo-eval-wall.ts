/**
 * The evaluation wall time of a config's runs (default examples/demo.yaml's two), before and after
 * issue #15, fp32 and int8 (targets: ≤ ½ of "before" at fp32, ≤ ¼ with int8), measured alternately
 * in one session on the embedded stack, as `npm run demo` runs it.
 *
 *   node --import tsx bench/demo-eval-wall.ts --before DIR [--precision fp32,int8] [--rounds 3]
 *        [--config examples/demo.yaml]
 *
 * Sides: `before` is another checkout (e.g. `git worktree add --detach DIR 24be693`, the last commit
 * before #15's engine work, with node_modules, .venv and .data/models linked from this one); `fp32`
 * and `int8` are this checkout, the latter with `--set eval.precision=int8`. Each side has its own
 * dev stack (`peftgrid dev up` in its checkout; the stacks share the default ports, so one at a time)
 * and its own store. Per round and side: delete the stored evaluations (`runs/<key>/eval/` and
 * `runs/<key>/result.json` under the config's file store) so that only evaluation runs again
 * (training and exports stay), `peftgrid grid start <config> --wait`, then sum the evaluateModel
 * activities' started → completed times from that grid's run workflow histories. Round 1 also
 * trains and exports, so it is printed but not counted; the rest are, and each side's fastest
 * counted round is the figure (the sides take turns, so a load change does not favour one).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Connection, WorkflowClient } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { parse as parseYaml } from 'yaml';

const REPO = resolve(__dirname, '..');
const { values } = parseArgs({
  options: {
    before: { type: 'string' },
    precision: { type: 'string', default: 'fp32,int8' },
    rounds: { type: 'string', default: '3' },
    config: { type: 'string', default: 'examples/demo.yaml' },
  },
});

interface Side {
  label: string;
  dir: string;
  set: string[];
}

type Event = temporal.api.history.v1.IHistoryEvent;
const ms = (e: Event) => Number(e.eventTime!.seconds) * 1000 + Math.round((e.eventTime!.nanos ?? 0) / 1e6);

function sides(): Side[] {
  const out: Side[] = [];
  if (values.before) out.push({ label: 'before', dir: resolve(values.before), set: [] });
  for (const p of values.precision!.split(',').filter(Boolean)) {
    if (p !== 'fp32' && p !== 'int8') throw new Error(`--precision: ${p} is not fp32 or int8`);
    out.push({ label: p, dir: REPO, set: p === 'int8' ? ['--set', 'eval.precision=int8'] : [] });
  }
  if (!out.length) throw new Error('nothing to measure: give --before and/or --precision');
  return out;
}

function cli(side: Side, args: string[]): string {
  return execFileSync(process.execPath, [join(side.dir, 'bin', 'peftgrid.js'), ...args], {
    cwd: side.dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 << 20,
  });
}

/** Removes the stored evaluations of a file store, so the next grid evaluates again and only that. */
function dropEvaluations(storeDir: string): number {
  const runs = join(storeDir, 'runs');
  if (!existsSync(runs)) return 0;
  let n = 0;
  for (const key of readdirSync(runs)) {
    const evalDir = join(runs, key, 'eval');
    if (!existsSync(evalDir)) continue;
    rmSync(evalDir, { recursive: true, force: true });
    rmSync(join(runs, key, 'result.json'), { force: true });
    n++;
  }
  return n;
}

function storeDir(side: Side, config: string): string {
  const g = parseYaml(readFileSync(join(side.dir, config), 'utf8')) as { store: string };
  if (!g.store.startsWith('file://')) throw new Error(`${config}: store ${g.store} is not a file:// store`);
  return resolve(side.dir, g.store.slice('file://'.length));
}

/** Σ evaluateModel started → completed over the run workflows that closed after `sinceMs`. */
async function evaluateSpans(sinceMs: number): Promise<{ totalMs: number; runs: string[] }> {
  const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS ?? 'localhost:7233' });
  try {
    const client = new WorkflowClient({ connection, namespace: 'default' });
    let totalMs = 0;
    const runs: string[] = [];
    const since = new Date(sinceMs).toISOString();
    for await (const w of client.list({ query: `WorkflowType = 'fineTuneRunWorkflow' AND CloseTime > '${since}'` })) {
      const events = (await client.getHandle(w.workflowId, w.runId).fetchHistory()).events ?? [];
      const evalScheduled = new Set<string>();
      const started = new Map<string, number>();
      for (const e of events) {
        if (e.activityTaskScheduledEventAttributes?.activityType?.name === 'evaluateModel')
          evalScheduled.add(String(e.eventId));
        const s = e.activityTaskStartedEventAttributes;
        if (s && evalScheduled.has(String(s.scheduledEventId))) started.set(String(s.scheduledEventId), ms(e));
        const done = e.activityTaskCompletedEventAttributes;
        if (done && started.has(String(done.scheduledEventId)))
          totalMs += ms(e) - started.get(String(done.scheduledEventId))!;
      }
      runs.push(w.workflowId);
    }
    return { totalMs, runs };
  } finally {
    await connection.close();
  }
}

async function main(): Promise<void> {
  const config = values.config!;
  const rounds = Number(values.rounds);
  const all = sides();
  const counted = new Map<string, number[]>(all.map((s) => [s.label, []]));
  for (let round = 1; round <= rounds; round++) {
    for (const side of all) {
      cli(side, ['dev', 'up']);
      try {
        const dropped = dropEvaluations(storeDir(side, config));
        const t0 = Date.now();
        cli(side, ['grid', 'start', config, '--wait', ...side.set]);
        const wall = Date.now() - t0;
        const { totalMs, runs } = await evaluateSpans(t0);
        const note = round === 1 ? ' (round 1: also trains/exports, not counted)' : '';
        console.log(
          `round ${round} ${side.label.padEnd(6)} evaluate Σ ${(totalMs / 1000).toFixed(1)} s over ${runs.length} runs` +
            ` (grid ${(wall / 1000).toFixed(1)} s, ${dropped} evaluations dropped first)${note}`,
        );
        if (round > 1 || rounds === 1) counted.get(side.label)!.push(totalMs);
      } finally {
        cli(side, ['dev', 'down']);
      }
    }
  }
  const best = (l: string) => Math.min(...counted.get(l)!);
  const base = all[0]!.label;
  console.log(`\n| side | evaluation wall time (s), fastest counted round | ÷ ${base} |\n| --- | ---: | ---: |`);
  for (const s of all) {
    console.log(`| ${s.label} | ${(best(s.label) / 1000).toFixed(1)} | ${(best(s.label) / best(base)).toFixed(2)} |`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
