/**
 * Orchestration overhead of a grid on the dev server: ≥20 tiny runs, strictly one at a time
 * (concurrency gpu 1, cpu 0), so the ideal wall time is the sum of activity busy time. Reports
 * wall ÷ Σ busy (goal ≤ 1.15×) and the median scheduling latency per activity (scheduled →
 * started), both read from the real workflow histories.
 *
 *   node --import tsx bench/grid-overhead.ts [--runs 20] [--steps 2]
 */
import './quiet-logs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { temporal } from '@temporalio/proto';
import { runWorkflowId, TASK_QUEUES } from '../src/common/constants';
import { planRuns } from '../src/config/plan';
import { validateGrid } from '../src/config/validate';
import { createWorkers } from '../workers/create';
import type { GridResult } from '../src/contracts';
import { REPO, SAMPLES, tinyModel } from '../test/helpers/fixtures';
import { localTemporal } from '../test/helpers/tiny-grid';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '20' }, steps: { type: 'string', default: '2' } },
});
Runtime.install({ logger: new DefaultLogger('WARN') });

type Event = temporal.api.history.v1.IHistoryEvent;
const ms = (e: Event) => Number(e.eventTime!.seconds) * 1000 + Math.round((e.eventTime!.nanos ?? 0) / 1e6);

function activitySpans(events: Event[]): { busyMs: number; latencies: number[] } {
  let busyMs = 0;
  const latencies: number[] = [];
  const scheduled = new Map<string, number>();
  const started = new Map<string, number>();
  for (const e of events) {
    if (e.activityTaskScheduledEventAttributes) scheduled.set(String(e.eventId), ms(e));
    const s = e.activityTaskStartedEventAttributes;
    if (s) {
      started.set(String(s.scheduledEventId), ms(e));
      latencies.push(ms(e) - scheduled.get(String(s.scheduledEventId))!);
    }
    const done = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes;
    if (done) busyMs += ms(e) - started.get(String(done.scheduledEventId))!;
  }
  return { busyMs, latencies };
}

async function main(): Promise<void> {
  const n = Number(values.runs);
  const dir = join(REPO, '.data', 'bench', `grid-overhead-${Date.now()}`);
  process.env.PEFTGRID_DATA_DIR = join(dir, 'worker');
  const env = await localTemporal();
  const workers = await createWorkers({ connection: env.nativeConnection, namespace: 'default' });
  const running = Promise.all(workers.map((w) => w.run()));
  try {
    const g = validateGrid(
      {
        name: 'overhead',
        store: `file://${join(dir, 'store')}`,
        data: {
          baseUrl: `file://${SAMPLES}`,
          datasets: ['boolq'],
          testSplit: 'test',
          maxTrainPerDataset: 32,
          testSamples: 4,
        },
        models: [{ name: 'tiny', path: tinyModel('llama'), family: 'llama' }],
        methods: [{ method: 'lora', r: Array.from({ length: n }, (_, i) => i + 1), alpha: 8 }],
        training: {
          maxSteps: Number(values.steps),
          warmupSteps: 0,
          lr: 1e-3,
          optimizer: 'adamw',
          batchSize: 4,
          checkpointEverySteps: Number(values.steps),
          maxLength: 128,
        },
        eval: { maxNewTokens: 4, batchSize: 4 },
        concurrency: { gpu: 1, cpu: 0 },
      },
      'bench',
      REPO,
    );
    const runs = planRuns(g);
    const gridId = `overhead-${Date.now()}`;
    const handle = await env.client.workflow.start('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: gridId,
      args: [{ gridId, grid: g, runs }],
    });
    const result = (await handle.result()) as GridResult;
    const failed = result.runs.filter((r) => r.status !== 'completed');
    if (failed.length) throw new Error(`${failed.length} runs failed: ${failed[0]!.error}`);
    const gridEvents = (await handle.fetchHistory()).events ?? [];
    const wallMs = ms(gridEvents.at(-1)!) - ms(gridEvents[0]!);
    let busyMs = 0;
    const latencies: number[] = [];
    const prepareId = gridEvents.find(
      (e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowType?.name === 'prepareDataWorkflow',
    )?.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId;
    for (const id of [prepareId!, ...runs.map((r) => runWorkflowId(r.runKey))]) {
      const spans = activitySpans((await env.client.workflow.getHandle(id).fetchHistory()).events ?? []);
      busyMs += spans.busyMs;
      latencies.push(...spans.latencies);
    }
    const grid = activitySpans(gridEvents); // the report activity
    busyMs += grid.busyMs;
    latencies.push(...grid.latencies);
    latencies.sort((a, b) => a - b);
    const median = latencies[Math.floor(latencies.length / 2)]!;
    console.log(
      `| runs | activities | grid wall s | Σ activity busy s | wall ÷ busy | median scheduling latency ms | p95 ms |`,
    );
    console.log(`| --: | --: | --: | --: | --: | --: | --: |`);
    console.log(
      `| ${n} | ${latencies.length} | ${(wallMs / 1000).toFixed(1)} | ${(busyMs / 1000).toFixed(1)} | ${(wallMs / busyMs).toFixed(3)} | ${median} | ${latencies[Math.floor(latencies.length * 0.95)]} |`,
    );
  } finally {
    for (const w of workers) w.shutdown();
    await running;
    await env.teardown();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
