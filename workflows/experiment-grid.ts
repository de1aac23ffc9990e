/**
 * The whole study as one workflow: prepare the data once, run every planned run as a child
 * workflow with a deterministic id (re-starting the grid reuses finished runs), at most
 * `concurrency.gpu` runs at a time, then write the report. A failed run is reported, not fatal.
 */
import {
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  executeChild,
  isCancellation,
  log,
  ParentClosePolicy,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type * as activities from '../activities';
import { runWorkflowId, SEARCH_ATTRIBUTE_KEYS, TASK_QUEUES, TIMEOUTS } from '../src/common/constants';
import { runBounded } from '../src/common/bounded';
import type { RunSpec } from '../src/config/plan';
import { FailureType } from '../src/contracts/failures';
import { fineTuneRunWorkflow } from './fine-tune-run';
import { prepareDataWorkflow } from './prepare-data';
import type {
  ExperimentGridWorkflowInput,
  GridProgress,
  GridResult,
  PreparedData,
  RunProgress,
  RunResult,
} from '../src/contracts';

const reports = proxyActivities<typeof activities>({
  taskQueue: TASK_QUEUES.cpu,
  startToCloseTimeout: TIMEOUTS.report.startToClose,
  heartbeatTimeout: TIMEOUTS.report.heartbeat,
  // The report is rendered from run results alone and overwritten whole: safe to repeat.
  retry: { maximumAttempts: 5 },
});

const trackers = proxyActivities<typeof activities>({
  taskQueue: TASK_QUEUES.cpu,
  startToCloseTimeout: TIMEOUTS.track.startToClose,
  // trackGridReport never throws for the tracker's own failures; artifact uploads overwrite.
  retry: { maximumAttempts: 3, initialInterval: 2000 },
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
    ['run key', run.runKey],
    ['model', `${run.model.name} (${run.model.path}, ${run.model.family} chat format)`],
    ['method', JSON.stringify(run.method)],
  ];
  if (run.trains) {
    const t = run.training;
    rows.push([
      'training',
      `${t.maxSteps} steps, lr ${t.lr} (${t.scheduler}, ${t.warmupSteps} warm-up), ${t.optimizer}, batch ${t.batchSize}, seed ${t.seed}`,
    ]);
  } else if (run.draft) {
    rows.push(['draft', `${run.draft.name} (${run.draft.path})`]);
  } else {
    rows.push(['prompts', `${run.shots}-shot, no training`]);
  }
  rows.push(['eval', `${run.data.testSamples} items, ${run.eval.maxNewTokens} new tokens max`], ['store', run.store]);
  return ['| | |', '| --- | --- |', ...rows.map(([k, v]) => `| ${k} | ${String(v).replace(/\|/g, '\\|')} |`)].join(
    '\n',
  );
}

/** The grid's in-memory state: what the progress query, the cancel signal and the UI details read. */
interface GridState {
  input: ExperimentGridWorkflowInput;
  phase: GridProgress['phase'];
  /** Results carried across continue-as-new, by run key. */
  done: Map<string, RunResult>;
  progress: Map<string, RunProgress>;
  cancelled: Set<string>;
  // Each child runs in its own scope: cancelling the scope cancels the child workflow, whose
  // activities are then cancelled through their heartbeats, which stops the trainer process.
  scopes: Map<string, CancellationScope>;
  inFlightRuns: Set<string>;
  results: RunResult[];
  showDetails: () => void;
}

function createGridState(input: ExperimentGridWorkflowInput): GridState {
  const { gridId, runs } = input;
  const done = new Map((input.done ?? []).map((r) => [r.runKey, r]));
  const state: GridState = {
    input,
    phase: 'preparing',
    done,
    progress: new Map<string, RunProgress>(
      runs.map((r) => [
        r.runKey,
        {
          runKey: r.runKey,
          phase: done.get(r.runKey)?.status ?? 'pending',
          label: r.label,
          model: r.model.name,
        },
      ]),
    ),
    cancelled: new Set<string>(),
    scopes: new Map<string, CancellationScope>(),
    inFlightRuns: new Set<string>(),
    results: [...done.values()],
    // "Current details" in the Temporal UI: counts, and which runs are in flight.
    showDetails: () => {
      const count = (p: string) => [...state.progress.values()].filter((r) => r.phase === p).length;
      const finished = count('completed') + count('failed') + count('cancelled');
      const lines = [
        `**${state.phase}** · ${finished} of ${runs.length} runs finished (${count('completed')} completed, ${count('failed')} failed, ${count('cancelled')} cancelled), ${state.inFlightRuns.size} in flight`,
      ];
      for (const key of state.inFlightRuns) {
        const r = state.progress.get(key)!;
        lines.push(`- ${r.model} · ${r.label}`);
      }
      setCurrentDetails(lines.join('\n'));
    },
  };
  setHandler(gridProgressQuery, () => ({ gridId, phase: state.phase, runs: [...state.progress.values()] }));
  return state;
}

function handleCancelSignal(state: GridState): void {
  setHandler(cancelRunSignal, ({ runKey }) => {
    for (const r of state.input.runs) {
      if (runKey && r.runKey !== runKey) continue;
      state.cancelled.add(r.runKey);
      state.scopes.get(r.runKey)?.cancel();
    }
  });
}

/** One preparation per distinct data config (normally one per grid); carried ones are reused. */
async function prepareAll(input: ExperimentGridWorkflowInput): Promise<Map<string, PreparedData>> {
  const { runs, grid } = input;
  const dataKeys = [...new Set(runs.map((r) => r.dataKey))];
  return new Map(
    await Promise.all(
      dataKeys.map(async (dataKey) => {
        const carried = input.prepared?.[dataKey];
        if (carried) return [dataKey, carried] as const;
        const data = runs.find((r) => r.dataKey === dataKey)!.data;
        const result = await executeChild(prepareDataWorkflow, {
          workflowId: `${workflowInfo().workflowId}-prepare-${dataKey}`,
          staticSummary: `prepare ${data.datasets?.length ?? 'all'} dataset(s) once for every run (data ${dataKey})`,
          args: [{ storeUrl: grid.store, dataKey, data }],
        });
        return [dataKey, result] as const;
      }),
    ),
  );
}

/** Starts the run's child workflow in its cancellation scope. */
function startChild(
  state: GridState,
  run: RunSpec,
  prepared: PreparedData,
  scope: CancellationScope,
): Promise<RunResult> {
  return scope.run(() =>
    executeChild(fineTuneRunWorkflow, {
      workflowId: runWorkflowId(run.runKey),
      staticSummary: `${run.model.name} · ${run.label}`,
      staticDetails: runDetails(run),
      args: [{ run, prepared }],
      // Closing the grid (terminate, timeout) cancels its runs, which frees the GPUs.
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      typedSearchAttributes: [
        { key: SEARCH_ATTRIBUTE_KEYS.grid, value: state.input.grid.name },
        { key: SEARCH_ATTRIBUTE_KEYS.model, value: run.model.name },
        { key: SEARCH_ATTRIBUTE_KEYS.method, value: run.method.method },
        { key: SEARCH_ATTRIBUTE_KEYS.status, value: 'running' },
      ],
    }),
  );
}

/**
 * Starts the run; if its deterministic id is taken by an execution that is still running (a run of
 * a cancelled or terminated earlier grid that is still cancelling, its trainer saving a checkpoint,
 * or the same run started by another grid), waits for that one to close and starts again: a
 * completed run's result is then reused (lookupRunResult), a cancelled one resumes from its
 * checkpoints. Once is enough: a third execution taking the id again in the gap is reported as the
 * failure it is.
 */
async function startOrAwaitOld(
  state: GridState,
  run: RunSpec,
  prepared: PreparedData,
  scope: CancellationScope,
): Promise<RunResult> {
  const entry = state.progress.get(run.runKey)!;
  try {
    return await startChild(state, run, prepared, scope);
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError) || !patched(AWAIT_OLD_RUN_PATCH)) throw err;
    log.info('run id taken by a running execution; waiting for it to close', { runKey: run.runKey });
    entry.phase = 'pending';
    setCurrentDetails(`**${state.phase}** · waiting for an earlier execution of ${run.runKey} to close`);
    await scope.run(() =>
      waits.awaitWorkflowClosed.executeWithOptions(
        { summary: `wait for the earlier execution of ${run.model.name} · ${run.label} to close` },
        [{ workflowId: runWorkflowId(run.runKey) }],
      ),
    );
    entry.phase = 'tokenizing';
    state.showDetails();
    return await startChild(state, run, prepared, scope);
  }
}

/** Runs one planned run to a result; a failed or cancelled run is recorded, never thrown. */
async function runOne(state: GridState, run: RunSpec, prepared: PreparedData): Promise<void> {
  const entry = state.progress.get(run.runKey)!;
  const base = { runKey: run.runKey, model: run.model.name, method: run.method.method, label: run.label };
  if (state.cancelled.has(run.runKey)) {
    entry.phase = 'cancelled';
    state.results.push({ ...base, status: 'cancelled' });
    return;
  }
  entry.phase = 'tokenizing';
  state.inFlightRuns.add(run.runKey);
  state.showDetails();
  const scope = new CancellationScope();
  state.scopes.set(run.runKey, scope);
  try {
    const result = await startOrAwaitOld(state, run, prepared, scope);
    entry.phase = 'completed';
    state.results.push(result);
  } catch (err) {
    const wasCancelled = state.cancelled.has(run.runKey) || isCancellation(err) || isCancellation((err as Error).cause);
    entry.phase = wasCancelled ? 'cancelled' : 'failed';
    log.warn('run did not complete', { runKey: run.runKey, error: failureMessage(err) });
    state.results.push({ ...base, status: wasCancelled ? 'cancelled' : 'failed', error: failureMessage(err) });
  } finally {
    state.inFlightRuns.delete(run.runKey);
    state.showDetails();
  }
}

/** Report in plan order (results arrive in completion order). */
async function report(state: GridState): Promise<GridResult> {
  const { gridId, grid, runs } = state.input;
  const order = new Map(runs.map((r, i) => [r.runKey, i]));
  state.results.sort((a, b) => order.get(a.runKey)! - order.get(b.runKey)!);
  const written = await reports.writeReport({
    storeUrl: grid.store,
    gridId,
    gridName: grid.name,
    results: state.results,
  });
  // Only grids with tracking on reach the marker: histories without it replay unchanged.
  const mlflow = grid.tracking?.mlflow;
  if (mlflow && patched('mlflow-tracking')) {
    await trackers.trackGridReport({
      storeUrl: grid.store,
      tracking: { uri: mlflow.uri, experiment: mlflow.experiment ?? grid.name },
      gridId,
      gridName: grid.name,
      reportPrefix: written.reportPrefix,
    });
  }
  return { gridId, runs: state.results, reportPrefix: written.reportPrefix, markdown: written.markdown };
}

export async function experimentGridWorkflow(input: ExperimentGridWorkflowInput): Promise<GridResult> {
  if (input.runs.length === 0) throw ApplicationFailure.nonRetryable('the grid has no runs', FailureType.InvalidSpec);
  const state = createGridState(input);
  state.showDetails();
  handleCancelSignal(state);
  const prepared = await prepareAll(input);

  state.phase = 'running';
  state.showDetails();
  const left = await runBounded({
    items: input.runs.filter((r) => !state.done.has(r.runKey)),
    // Runs in flight: enough to keep every GPU slot and the cpu queue busy (ICL runs and evaluations
    // need no GPU). The GPU itself is guarded by the gpu workers' one-task-per-GPU slots.
    limit: input.grid.concurrency.gpu + input.grid.concurrency.cpu,
    // History grows with every child; after a bounded number of starts (or when the server suggests
    // it) stop launching, let in-flight runs finish, and continue as new with the results so far.
    maxStarts: input.runsPerExecution ?? 100,
    stopStarting: () => workflowInfo().continueAsNewSuggested,
    waitUntil: condition,
    run: (run) => runOne(state, run, prepared.get(run.dataKey)!),
  });
  if (left.length > 0) {
    await continueAsNew<typeof experimentGridWorkflow>({
      ...input,
      done: state.results,
      prepared: Object.fromEntries(prepared),
    });
  }
  state.phase = 'reporting';
  state.showDetails();
  const result = await report(state);
  state.phase = 'completed';
  state.showDetails();
  return result;
}
