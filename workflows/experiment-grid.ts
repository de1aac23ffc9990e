/**
 * The whole study as one workflow: prepare the data once, run every planned run as a child
 * workflow with a deterministic id (re-starting the grid reuses finished runs), at most
 * `concurrency.gpu` runs at a time, then write the report. A failed run is reported, not fatal.
 */
import {
  ApplicationFailure, CancellationScope, ChildWorkflowFailure, condition, continueAsNew, defineQuery, defineSignal, executeChild,
  isCancellation, log, ParentClosePolicy, patched, proxyActivities, setCurrentDetails, setHandler, workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type * as activities from '../activities';
import { runWorkflowId, SEARCH_ATTRIBUTE_KEYS, TASK_QUEUES, TIMEOUTS } from '../src/common/constants';
import type { RunSpec } from '../src/config/plan';
import { FailureType } from '../src/contracts/failures';
import { fineTuneRunWorkflow } from './fine-tune-run';
import { prepareDataWorkflow } from './prepare-data';
import type { GridInput, GridProgress, GridResult, RunProgress, RunResult } from './types';

const reports = proxyActivities<typeof activities>({
  taskQueue: TASK_QUEUES.cpu,
  startToCloseTimeout: TIMEOUTS.report.startToClose,
  heartbeatTimeout: TIMEOUTS.report.heartbeat,
  // The report is rendered from run results alone and overwritten whole: safe to repeat.
  retry: { maximumAttempts: 5 },
});

const waits = proxyActivities<typeof activities>({
  taskQueue: TASK_QUEUES.cpu,
  startToCloseTimeout: TIMEOUTS.awaitClosed.startToClose,
  heartbeatTimeout: TIMEOUTS.awaitClosed.heartbeat,
  // Only reads the other execution's status: safe to retry as often as the server blips.
  retry: { maximumAttempts: 10, initialInterval: 1000, backoffCoefficient: 2, maximumInterval: 60_000 },
});

/**
 * Histories recorded before this patch recorded a run whose id was taken as failed; newer ones wait
 * for the old execution to close and then start the run again (see runOne).
 */
export const AWAIT_OLD_RUN_PATCH = 'grid-awaits-running-child-v1';

export const gridProgressQuery = defineQuery<GridProgress>('progress');
/** Cancel one run (by run key) or, with no key, every run that has not finished. */
export const cancelRunSignal = defineSignal<[{ runKey?: string }]>('cancelRun');

function failureMessage(err: unknown): string {
  let e: unknown = err;
  const parts: string[] = [];
  while (e instanceof Error) {
    if (!(e instanceof ChildWorkflowFailure)) parts.push(e.message);
    e = e.cause;
  }
  return parts.filter(Boolean).join(': ') || String(err);
}

/** A run's fixed description for the Temporal UI (markdown). */
function runDetails(run: RunSpec): string {
  const rows = [
    ['run key', run.runKey], ['model', `${run.model.name} (${run.model.path}, ${run.model.family} chat format)`],
    ['method', JSON.stringify(run.method)],
  ];
  if (run.trains) {
    const t = run.training;
    rows.push(['training', `${t.maxSteps} steps, lr ${t.lr} (${t.scheduler}, ${t.warmupSteps} warm-up), ${t.optimizer}, batch ${t.batchSize}, seed ${t.seed}`]);
  } else if (run.draft) {
    rows.push(['draft', `${run.draft.name} (${run.draft.path})`]);
  } else {
    rows.push(['prompts', `${run.shots}-shot, no training`]);
  }
  rows.push(['eval', `${run.data.testSamples} items, ${run.eval.maxNewTokens} new tokens max`], ['store', run.store]);
  return ['| | |', '| --- | --- |', ...rows.map(([k, v]) => `| ${k} | ${String(v).replace(/\|/g, '\\|')} |`)].join('\n');
}

export async function experimentGridWorkflow(input: GridInput): Promise<GridResult> {
  const { gridId, grid, runs } = input;
  if (runs.length === 0) throw ApplicationFailure.nonRetryable('the grid has no runs', FailureType.InvalidSpec);
  let phase: GridProgress['phase'] = 'preparing';
  const done = new Map((input.done ?? []).map((r) => [r.runKey, r]));
  const progress = new Map<string, RunProgress>(runs.map((r) => [r.runKey, {
    runKey: r.runKey, phase: done.get(r.runKey)?.status ?? 'pending', label: r.label, model: r.model.name,
  }]));
  const cancelled = new Set<string>();
  // Each child runs in its own scope: cancelling the scope cancels the child workflow, whose
  // activities are then cancelled through their heartbeats, which stops the trainer process.
  const scopes = new Map<string, CancellationScope>();
  setHandler(gridProgressQuery, () => ({ gridId, phase, runs: [...progress.values()] }));
  // "Current details" in the Temporal UI: counts, and which runs are in flight.
  const inFlightRuns = new Set<string>();
  const showDetails = () => {
    const count = (p: string) => [...progress.values()].filter((r) => r.phase === p).length;
    const finished = count('completed') + count('failed') + count('cancelled');
    const lines = [`**${phase}** · ${finished} of ${runs.length} runs finished (${count('completed')} completed, ${count('failed')} failed, ${count('cancelled')} cancelled), ${inFlightRuns.size} in flight`];
    for (const key of inFlightRuns) {
      const r = progress.get(key)!;
      lines.push(`- ${r.model} · ${r.label}`);
    }
    setCurrentDetails(lines.join('\n'));
  };
  showDetails();
  setHandler(cancelRunSignal, ({ runKey }) => {
    for (const r of runs) {
      if (runKey && r.runKey !== runKey) continue;
      cancelled.add(r.runKey);
      scopes.get(r.runKey)?.cancel();
    }
  });

  // One preparation per distinct data config (normally one per grid).
  const dataKeys = [...new Set(runs.map((r) => r.dataKey))];
  const prepared = new Map(await Promise.all(dataKeys.map(async (dataKey) => {
    const carried = input.prepared?.[dataKey];
    if (carried) return [dataKey, carried] as const;
    const data = runs.find((r) => r.dataKey === dataKey)!.data;
    const result = await executeChild(prepareDataWorkflow, {
      workflowId: `${workflowInfo().workflowId}-prepare-${dataKey}`,
      staticSummary: `prepare ${data.datasets?.length ?? 'all'} dataset(s) once for every run (data ${dataKey})`,
      args: [{ storeUrl: grid.store, dataKey, data }],
    });
    return [dataKey, result] as const;
  })));

  phase = 'running';
  showDetails();
  const results: RunResult[] = [...done.values()];
  let running = 0;
  const runOne = async (run: RunSpec): Promise<void> => {
    const entry = progress.get(run.runKey)!;
    const base = { runKey: run.runKey, model: run.model.name, method: run.method.method, label: run.label };
    if (cancelled.has(run.runKey)) {
      entry.phase = 'cancelled';
      results.push({ ...base, status: 'cancelled' });
      return;
    }
    entry.phase = 'tokenizing';
    inFlightRuns.add(run.runKey);
    showDetails();
    const scope = new CancellationScope();
    scopes.set(run.runKey, scope);
    try {
      const start = () => scope.run(() => executeChild(fineTuneRunWorkflow, {
        workflowId: runWorkflowId(run.runKey),
        staticSummary: `${run.model.name} · ${run.label}`,
        staticDetails: runDetails(run),
        args: [{ run, prepared: prepared.get(run.dataKey)! }],
        // Closing the grid (terminate, timeout) cancels its runs, which frees the GPUs.
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        typedSearchAttributes: [
          { key: SEARCH_ATTRIBUTE_KEYS.grid, value: grid.name },
          { key: SEARCH_ATTRIBUTE_KEYS.model, value: run.model.name },
          { key: SEARCH_ATTRIBUTE_KEYS.method, value: run.method.method },
          { key: SEARCH_ATTRIBUTE_KEYS.status, value: 'running' },
        ],
      }));
      let result: RunResult;
      try {
        result = await start();
      } catch (err) {
        // The run's deterministic id is taken by an execution that is still running: a run of a
        // cancelled or terminated earlier grid that is still cancelling (its trainer saving a
        // checkpoint), or the same run started by another grid. Wait for it to close, then start
        // again: a completed run's result is then reused (lookupRunResult), a cancelled one
        // resumes from its checkpoints. Once is enough: a third execution taking the id again in
        // the gap is reported as the failure it is.
        if (!(err instanceof WorkflowExecutionAlreadyStartedError) || !patched(AWAIT_OLD_RUN_PATCH)) throw err;
        log.info('run id taken by a running execution; waiting for it to close', { runKey: run.runKey });
        entry.phase = 'pending';
        setCurrentDetails(`**${phase}** · waiting for an earlier execution of ${run.runKey} to close`);
        await scope.run(() => waits.awaitWorkflowClosed.executeWithOptions(
          { summary: `wait for the earlier execution of ${run.model.name} · ${run.label} to close` },
          [{ workflowId: runWorkflowId(run.runKey) }],
        ));
        entry.phase = 'tokenizing';
        showDetails();
        result = await start();
      }
      entry.phase = 'completed';
      results.push(result);
    } catch (err) {
      const wasCancelled = cancelled.has(run.runKey) || isCancellation(err) || isCancellation((err as Error).cause);
      entry.phase = wasCancelled ? 'cancelled' : 'failed';
      log.warn('run did not complete', { runKey: run.runKey, error: failureMessage(err) });
      results.push({ ...base, status: wasCancelled ? 'cancelled' : 'failed', error: failureMessage(err) });
    } finally {
      inFlightRuns.delete(run.runKey);
      showDetails();
    }
  };

  // Runs in flight: enough to keep every GPU slot and the cpu queue busy (ICL runs and evaluations
  // need no GPU). The GPU itself is guarded by the gpu workers' one-task-per-GPU slots.
  const limit = grid.concurrency.gpu + grid.concurrency.cpu;
  const pending = runs.filter((r) => !done.has(r.runKey));
  const inFlight: Promise<void>[] = [];
  // History grows with every child; after a bounded number of starts (or when the server suggests
  // it) stop launching, let in-flight runs finish, and continue as new with the results so far.
  const perExecution = input.runsPerExecution ?? 100;
  let started = 0;
  while (pending.length > 0 && started < perExecution && !workflowInfo().continueAsNewSuggested) {
    await condition(() => running < limit);
    const run = pending.shift()!;
    running++;
    started++;
    inFlight.push(runOne(run).finally(() => { running--; }));
  }
  await Promise.all(inFlight);
  if (pending.length > 0) {
    await continueAsNew<typeof experimentGridWorkflow>({
      ...input, done: results, prepared: Object.fromEntries(prepared),
    });
  }
  phase = 'reporting';
  showDetails();

  const order = new Map(runs.map((r, i) => [r.runKey, i]));
  results.sort((a, b) => order.get(a.runKey)! - order.get(b.runKey)!);
  const report = await reports.writeReport({ storeUrl: grid.store, gridId, gridName: grid.name, results });
  phase = 'completed';
  showDetails();
  return { gridId, runs: results, reportPrefix: report.reportPrefix, markdown: report.markdown };
}
