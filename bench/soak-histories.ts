/**
 * What the soak reads back from a grid's workflow histories: every execution of the grid chain
 * (followed through its continue-as-new events), and every child it started (the prepare workflow
 * and one run workflow per run, and their children), each by its exact run id, so nothing depends on visibility lag.
 *
 * Activity retries are counted from the events: the server records one ActivityTaskStarted per
 * scheduled activity, for its last attempt, with that attempt's number, so `attempt − 1` of each
 * is how many times it was retried; ActivityTaskFailed / ActivityTaskTimedOut are the attempts
 * that were recorded as failures (retries exhausted or non-retryable; 0 in a healthy soak).
 * WorkflowTaskTimedOut / WorkflowTaskFailed count workflow tasks lost with a killed cpu worker.
 */
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';

type Event = temporal.api.history.v1.IHistoryEvent;

/** Retry evidence of one history (or a sum of them). */
export interface RetryCounts {
  /** Activities whose recorded attempt was > 1. */
  retriedActivities: number;
  /** Σ (attempt − 1) over ActivityTaskStarted events: retries the server ran. */
  activityRetries: number;
  activityFailed: number;
  activityTimedOut: number;
  workflowTaskTimedOut: number;
  workflowTaskFailed: number;
}

/** One execution's size as the server reports it (DescribeWorkflowExecution). */
export interface HistorySize {
  workflowId: string;
  runId: string;
  events: number;
  bytes: number;
}

export interface GridHistories {
  /** Executions of the grid workflow: 1 + continue-as-new count. */
  gridExecutions: number;
  continueAsNew: number;
  /** Executions read (grid chain + children). */
  executions: number;
  retries: RetryCounts;
  /** The largest history by events, and the largest by bytes (often the same execution). */
  largestByEvents: HistorySize;
  largestByBytes: HistorySize;
  /** Per activity type: Σ (attempt − 1). */
  retriesByActivity: Record<string, number>;
}

const zero = (): RetryCounts => ({
  retriedActivities: 0,
  activityRetries: 0,
  activityFailed: 0,
  activityTimedOut: 0,
  workflowTaskTimedOut: 0,
  workflowTaskFailed: 0,
});

/** Counts retries in one history's events; `byActivity` collects Σ (attempt − 1) per activity type. */
export function countRetries(events: readonly Event[], byActivity: Record<string, number> = {}): RetryCounts {
  const c = zero();
  const typeOf = new Map<string, string>();
  for (const e of events) {
    const sched = e.activityTaskScheduledEventAttributes;
    if (sched) typeOf.set(String(e.eventId), sched.activityType?.name ?? '?');
    const started = e.activityTaskStartedEventAttributes;
    if (started && (started.attempt ?? 1) > 1) {
      const extra = (started.attempt ?? 1) - 1;
      c.retriedActivities++;
      c.activityRetries += extra;
      const name = typeOf.get(String(started.scheduledEventId)) ?? '?';
      byActivity[name] = (byActivity[name] ?? 0) + extra;
    }
    if (e.activityTaskFailedEventAttributes) c.activityFailed++;
    if (e.activityTaskTimedOutEventAttributes) c.activityTimedOut++;
    if (e.workflowTaskTimedOutEventAttributes) c.workflowTaskTimedOut++;
    if (e.workflowTaskFailedEventAttributes) c.workflowTaskFailed++;
  }
  return c;
}

function add(a: RetryCounts, b: RetryCounts): RetryCounts {
  const out = { ...a };
  for (const k of Object.keys(out) as (keyof RetryCounts)[]) out[k] += b[k];
  return out;
}

/** The child executions (workflow id + run id) a history started. */
export function startedChildren(events: readonly Event[]): { workflowId: string; runId: string }[] {
  return events.flatMap((e) => {
    const ex = e.childWorkflowExecutionStartedEventAttributes?.workflowExecution;
    return ex?.workflowId && ex.runId ? [{ workflowId: ex.workflowId, runId: ex.runId }] : [];
  });
}

/** The run id this history continued as, if it did. */
export function continuedAs(events: readonly Event[]): string | undefined {
  return (
    events.find((e) => e.workflowExecutionContinuedAsNewEventAttributes)?.workflowExecutionContinuedAsNewEventAttributes
      ?.newExecutionRunId ?? undefined
  );
}

/** Reads the whole grid chain from its first execution and every child execution it started. */
export async function readGridHistories(client: Client, gridId: string, firstRunId: string): Promise<GridHistories> {
  const todo: { workflowId: string; runId: string }[] = [];
  let retries = zero();
  const retriesByActivity: Record<string, number> = {};
  const sizes: HistorySize[] = [];
  const read = async (workflowId: string, runId: string): Promise<Event[]> => {
    const handle = client.workflow.getHandle(workflowId, runId);
    const [history, desc] = await Promise.all([handle.fetchHistory(), handle.describe()]);
    const events = history.events ?? [];
    retries = add(retries, countRetries(events, retriesByActivity));
    const info = desc.raw.workflowExecutionInfo;
    sizes.push({
      workflowId,
      runId,
      events: Number(info?.historyLength ?? events.length),
      bytes: Number(info?.historySizeBytes ?? 0),
    });
    return events;
  };
  let gridExecutions = 0;
  for (let runId: string | undefined = firstRunId; runId;) {
    const events = await read(gridId, runId);
    gridExecutions++;
    todo.push(...startedChildren(events));
    runId = continuedAs(events);
  }
  // Children's own children too; a run is started once (its result is carried across executions).
  for (let i = 0; i < todo.length; i++) todo.push(...startedChildren(await read(todo[i]!.workflowId, todo[i]!.runId)));
  const by = (k: 'events' | 'bytes') => sizes.reduce((m, s) => (s[k] > m[k] ? s : m));
  return {
    gridExecutions,
    continueAsNew: gridExecutions - 1,
    executions: sizes.length,
    retries,
    largestByEvents: by('events'),
    largestByBytes: by('bytes'),
    retriesByActivity,
  };
}
