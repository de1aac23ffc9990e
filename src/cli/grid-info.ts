/**
 * What the CLI reads about a grid and its runs without a worker: the grid's start input (its
 * config and planned runs) from the first event of its history, and a run's own workflow status
 * and result. `fetch`, `logs` and `grid list` work on a finished grid with no worker running.
 */
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import { runWorkflowId } from '../common/constants';
import type { RunSpec } from '../config/plan';
import type { ExperimentGridWorkflowInput, RunProgress, RunResult } from '../contracts';

/** gRPC NOT_FOUND. */
const NOT_FOUND = 5;
const isNotFound = (err: unknown) => (err as { code?: number } | null)?.code === NOT_FOUND;

/** The grid's input, from the first event of its current execution (continue-as-new carries every run). */
export async function gridInput(client: Client, gridId: string): Promise<ExperimentGridWorkflowInput> {
  let res;
  try {
    res = await client.workflowService.getWorkflowExecutionHistory({
      namespace: client.options.namespace,
      execution: { workflowId: gridId },
      maximumPageSize: 1,
    });
  } catch (err) {
    if (isNotFound(err))
      throw new Error(
        `no grid "${gridId}" in namespace ${client.options.namespace} (\`peftgrid grid list\` shows the grids)`,
      );
    throw err;
  }
  const payload = res.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  const input = payload
    ? client.options.loadedDataConverter.payloadConverter.fromPayload<ExperimentGridWorkflowInput>(payload)
    : undefined;
  if (!input?.runs) throw new Error(`${gridId} is not a peftgrid grid (its start event carries no runs)`);
  return input;
}

/**
 * The grid's run that `query` names: its run key, or a part of its key or of `<model> · <label>`
 * that only one run has. Unknown or ambiguous: an Error listing the runs.
 */
export function findRun(input: ExperimentGridWorkflowInput, query: string): RunSpec {
  const exact = input.runs.find((r) => r.runKey === query);
  if (exact) return exact;
  const hits = input.runs.filter((r) => r.runKey.includes(query) || `${r.model.name} · ${r.label}`.includes(query));
  if (hits.length === 1) return hits[0]!;
  const list = (rs: RunSpec[]) => rs.map((r) => `  ${r.runKey}  (${r.model.name} · ${r.label})`).join('\n');
  if (hits.length > 1) throw new Error(`run "${query}" matches ${hits.length} runs of ${input.gridId}:\n${list(hits)}`);
  throw new Error(`grid ${input.gridId} has no run "${query}"; its runs:\n${list(input.runs)}`);
}

export interface RunState {
  /** The run workflow's status name (RUNNING, COMPLETED, FAILED …), or NOT_STARTED. */
  status: string;
  /** The run's result once its workflow completed. */
  result?: RunResult;
}

/** The run's workflow status and, when it completed, its result. */
export async function runState(client: Client, runKey: string): Promise<RunState> {
  const handle = client.workflow.getHandle(runWorkflowId(runKey));
  try {
    const desc = await handle.describe();
    if (desc.status.name !== 'COMPLETED') return { status: desc.status.name };
    return { status: 'COMPLETED', result: (await handle.result()) as RunResult };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError || isNotFound(err)) return { status: 'NOT_STARTED' };
    throw err;
  }
}

/**
 * A run's content keys (where its files are): from its result when it completed, else from its live
 * `progress` query (needs a worker; known once its data is tokenized). `trainingKey` is null for
 * runs that train nothing; a key not known (yet) is absent.
 */
export async function contentKeysOf(
  client: Client,
  run: RunSpec,
  state: RunState,
): Promise<{ trainingKey?: string | null; evalKey?: string }> {
  const trains = run.trains ? {} : { trainingKey: null };
  const p = state.result?.provenance;
  if (p)
    return {
      ...(p.trainingKey !== undefined ? { trainingKey: p.trainingKey } : {}),
      ...(p.evalKey ? { evalKey: p.evalKey } : {}),
      ...trains,
    };
  if (state.status !== 'RUNNING') return trains;
  try {
    const q = await client.withDeadline(Date.now() + 5000, () =>
      client.workflow.getHandle(runWorkflowId(run.runKey)).query<RunProgress>('progress'),
    );
    return {
      ...(q.trainingKey ? { trainingKey: q.trainingKey } : {}),
      ...(q.evalKey ? { evalKey: q.evalKey } : {}),
      ...trains,
    };
  } catch {
    return trains;
  }
}
