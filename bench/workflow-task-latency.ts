/**
 * Workflow-task latency on a worker that is evaluating (issue 14 point 3): one worker process polls
 * both queues (bench/latency-worker.ts: createWorkers, as workers/main.ts) and runs the real
 * evaluateModel activity on an exported model; once the activity has started, this process
 * schedules a stream of trivial workflows (one timer each) on the same worker. Each of their
 * workflow tasks is timed from its history, WorkflowTaskScheduled → WorkflowTaskCompleted
 * (schedule-to-start + start-to-complete). Both engine placements run in the same session,
 * alternating, each on a fresh worker process: ORT on the worker's main thread
 * (PEFTGRID_ENGINE_RUN_IN=main, the old path) and in the engine process (the default).
 *
 *   node --import tsx bench/workflow-task-latency.ts [--model smollm2|tiny|ONNX_DIR] [--items 16]
 *     [--prompt-length 120] [--batch 8] [--new 8] [--threads 2] [--every-ms 500] [--repeats 1]
 */
import './quiet-logs';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { temporal } from '@temporalio/proto';
import type { WorkflowHandle } from '@temporalio/client';
import { TASK_QUEUES } from '../src/common/constants';
import { RUN_IN_ENV, type EngineRunIn } from '../src/engine';
import { REPO, SMOLLM2, scratchDir } from '../test/helpers/fixtures';
import { stageEvaluation } from '../test/helpers/eval-input';
import { localTemporal } from '../test/helpers/tiny-grid';
import { ensureTinyOnnx } from '../test/helpers/engine-fixture';
import { ensureBenchOnnx } from './engine-models';
import type { latencyEvalWorkflow, latencyTickWorkflow } from './workflows/latency';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'smollm2' },
    items: { type: 'string', default: '16' },
    'prompt-length': { type: 'string', default: '120' },
    batch: { type: 'string', default: '8' },
    new: { type: 'string', default: '8' },
    threads: { type: 'string', default: '2' },
    'every-ms': { type: 'string', default: '500' },
    repeats: { type: 'string', default: '1' },
  },
});
Runtime.install({ logger: new DefaultLogger('WARN') });

type Event = temporal.api.history.v1.IHistoryEvent;
const ms = (e: Event) => Number(e.eventTime!.seconds) * 1000 + (e.eventTime!.nanos ?? 0) / 1e6;

/**
 * How long each workflow task kept its workflow waiting, ms: from its WorkflowTaskScheduled to its
 * WorkflowTaskCompleted. A task that timed out (a worker too stalled to complete it in the 10 s
 * workflow task timeout) is rescheduled; the wait runs from the first scheduling to the completion
 * that finally succeeded, so those waits are counted whole, not dropped.
 */
function workflowTaskLatencies(events: Event[]): number[] {
  const out: number[] = [];
  let since: number | undefined;
  for (const e of events) {
    if (e.workflowTaskScheduledEventAttributes) since ??= ms(e);
    if (e.workflowTaskCompletedEventAttributes && since !== undefined) {
      out.push(ms(e) - since);
      since = undefined;
    }
  }
  return out;
}

/** Workflow tasks that timed out in the histories (each one was then scheduled again). */
const timedOut = (events: Event[]) => events.filter((e) => e.workflowTaskTimedOutEventAttributes).length;

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function modelDir(): Promise<string> {
  if (values.model === 'smollm2') return ensureBenchOnnx(SMOLLM2);
  if (values.model === 'tiny') return ensureTinyOnnx();
  return values.model!;
}

interface PhaseResult {
  mode: EngineRunIn;
  evalS: number;
  tasks: number[];
  timeouts: number;
}

async function main(): Promise<void> {
  const onnxDir = await modelDir();
  const root = scratchDir('workflow-task-latency');
  process.env.PEFTGRID_DATA_DIR = join(root, 'worker');
  const env = await localTemporal();
  const results: PhaseResult[] = [];
  try {
    const modes: EngineRunIn[] = [];
    for (let r = 0; r < Number(values.repeats); r++)
      modes.push(...((r % 2 === 0 ? ['main', 'process'] : ['process', 'main']) as EngineRunIn[]));
    for (const [i, mode] of modes.entries()) {
      // The SDK's warnings (e.g. "Workflow task duration exceeded 5 seconds") go to the log file.
      const log = openSync(join(root, `worker-${i}-${mode}.log`), 'a');
      const worker = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'latency-worker.ts')], {
        cwd: REPO,
        stdio: ['ignore', log, log],
        env: { ...process.env, TEMPORAL_ADDRESS: env.address, [RUN_IN_ENV]: mode },
      });
      closeSync(log);
      const exited = new Promise((r) => worker.once('exit', r));
      const input = await stageEvaluation({
        root,
        onnxDir,
        tokenizerDir: SMOLLM2,
        runKey: `latency-${i}-${mode}`,
        items: Number(values.items),
        promptLength: Number(values['prompt-length']),
        maxNewTokens: Number(values.new),
        batchSize: Number(values.batch),
        threads: Number(values.threads),
      });
      const evaluation = await env.client.workflow.start<typeof latencyEvalWorkflow>('latencyEvalWorkflow', {
        taskQueue: TASK_QUEUES.cpu,
        workflowId: `latency-eval-${i}-${Date.now()}`,
        args: [input],
      });
      let evalDone = false;
      const evalResult = evaluation.result().finally(() => {
        evalDone = true;
      });
      // Time only the evaluation itself: not the worker's start-up, model download or load.
      const ACTIVITY_STARTED = 2; // PENDING_ACTIVITY_STATE_STARTED
      while (
        !evalDone &&
        Number((await evaluation.describe()).raw.pendingActivities?.[0]?.state) !== ACTIVITY_STARTED
      ) {
        await new Promise((r) => setTimeout(r, 200));
      }
      const ticks: WorkflowHandle<typeof latencyTickWorkflow>[] = [];
      while (!evalDone) {
        ticks.push(
          await env.client.workflow.start<typeof latencyTickWorkflow>('latencyTickWorkflow', {
            taskQueue: TASK_QUEUES.cpu,
            workflowId: `latency-tick-${i}-${ticks.length}-${Date.now()}`,
          }),
        );
        await Promise.race([
          evalResult.catch(() => undefined),
          new Promise((r) => setTimeout(r, Number(values['every-ms']))),
        ]);
      }
      await evalResult;
      const evalEvents = (await evaluation.fetchHistory()).events ?? [];
      const started = evalEvents.find((e) => e.activityTaskStartedEventAttributes)!;
      const closed = evalEvents.find((e) => e.activityTaskCompletedEventAttributes)!;
      const evalS = (ms(closed) - ms(started)) / 1000;
      await Promise.all(ticks.map((t) => t.result()));
      const histories = await Promise.all(ticks.map(async (t) => (await t.fetchHistory()).events ?? []));
      const tasks = histories.flatMap(workflowTaskLatencies);
      const timeouts = histories.reduce((n, h) => n + timedOut(h), 0);
      worker.kill('SIGTERM');
      await exited;
      results.push({ mode, evalS, tasks, timeouts });
      console.error(
        `phase ${i + 1}/${modes.length} (${mode}): evaluation ${evalS.toFixed(1)} s, ${ticks.length} workflows, ${tasks.length} workflow tasks, ${timeouts} timed out`,
      );
    }
  } finally {
    await env.teardown();
  }
  console.log(
    `model ${onnxDir.replace(REPO + '/', '')}, ${values.items} items of ~${values['prompt-length']} tokens, batch ${values.batch}, ${values.new} new tokens, ${values.threads} ORT threads; one trivial workflow every ${values['every-ms']} ms`,
  );
  console.log('');
  console.log('| ORT runs | evaluation s | workflow tasks | timed out (> 10 s) | p50 ms | p99 ms | max ms |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  const summary = new Map<EngineRunIn, number[]>();
  for (const r of results) {
    const sorted = [...r.tasks].sort((a, b) => a - b);
    summary.set(r.mode, [...(summary.get(r.mode) ?? []), ...r.tasks]);
    const label = r.mode === 'main' ? "on the worker's main thread (old)" : 'in the engine process';
    console.log(
      `| ${label} | ${r.evalS.toFixed(1)} | ${sorted.length} | ${r.timeouts} | ${pct(sorted, 50).toFixed(0)} | ${pct(sorted, 99).toFixed(0)} | ${sorted.at(-1)!.toFixed(0)} |`,
    );
  }
  const all = (mode: EngineRunIn) => [...summary.get(mode)!].sort((a, b) => a - b);
  const [main, proc] = [all('main'), all('process')];
  console.log('');
  console.log(
    `main ÷ engine process: p50 ${(pct(main, 50) / pct(proc, 50)).toFixed(1)}x, p99 ${(pct(main, 99) / pct(proc, 99)).toFixed(1)}x, max ${(main.at(-1)! / proc.at(-1)!).toFixed(1)}x; ` +
      `p99 in the engine process ${pct(proc, 99) <= 1000 ? '≤' : '>'} 1 s target`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
