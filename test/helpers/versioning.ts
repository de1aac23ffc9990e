/**
 * Worker Deployment Versioning, seen from a test: the server's view of a version (its task queues,
 * its drainage), making a version current the way docs/operations.md says (the Temporal CLI), and
 * which version completed each workflow task of a history.
 */
import { execFileSync } from 'node:child_process';
import type { Client } from '@temporalio/client';
import type { WorkerDeploymentVersion } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { TASK_QUEUES } from '../../src/common/constants';
import { TEMPORAL_BIN } from './fixtures';

const { TaskQueueType, VersionDrainageStatus, RoutingConfigUpdateState, EventType } = temporal.api.enums.v1;
type History = temporal.api.history.v1.IHistory;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `deploymentName:buildId`, as the server and the CLI print a version. */
export const versionString = (v: WorkerDeploymentVersion) => `${v.deploymentName}:${v.buildId}`;

async function describeVersion(client: Client, v: WorkerDeploymentVersion) {
  const res = await client.workflowService.describeWorkerDeploymentVersion({
    namespace: client.options.namespace,
    deploymentVersion: v,
  });
  return res.workerDeploymentVersionInfo;
}

/**
 * Waits until the server knows the version with both of peftgrid's task queues (the cpu workflow
 * queue and the gpu activity queue): what `set-current-version` checks before it switches.
 */
export async function waitForVersion(client: Client, v: WorkerDeploymentVersion, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = 'not registered';
  while (Date.now() < deadline) {
    try {
      const queues = (await describeVersion(client, v))?.taskQueueInfos ?? [];
      seen = queues.map((q) => `${q.name}/${q.type}`).join(', ');
      const has = (name: string, type: number) => queues.some((q) => q.name === name && q.type === type);
      if (
        has(TASK_QUEUES.cpu, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW) &&
        has(TASK_QUEUES.gpu, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
      )
        return;
    } catch {
      /* not created yet: the first poll creates it */
    }
    await sleep(500);
  }
  throw new Error(`version ${versionString(v)} did not register both task queues in time (seen: ${seen})`);
}

/**
 * Makes `v` its deployment's current version with the Temporal CLI (exactly the command in
 * docs/operations.md), then waits until the server reports the routing change as propagated.
 * `connArgs` are the CLI's connection flags (address, namespace, TLS paths).
 */
export async function setCurrentVersion(client: Client, v: WorkerDeploymentVersion, connArgs: string[]): Promise<void> {
  execFileSync(
    TEMPORAL_BIN,
    [
      'worker',
      'deployment',
      'set-current-version',
      '--deployment-name',
      v.deploymentName,
      '--build-id',
      v.buildId,
      '--yes',
      ...connArgs,
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const res = await client.workflowService.describeWorkerDeployment({
      namespace: client.options.namespace,
      deploymentName: v.deploymentName,
    });
    const info = res.workerDeploymentInfo;
    const current = info?.routingConfig?.currentDeploymentVersion;
    const inProgress =
      info?.routingConfigUpdateState === RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_IN_PROGRESS;
    if (current?.buildId === v.buildId && !inProgress) return;
    await sleep(300);
  }
  throw new Error(`${versionString(v)} did not become current within 60 s`);
}

/** Waits until the server reports the version DRAINED: no open workflow is pinned to it any more. */
export async function waitForDrained(client: Client, v: WorkerDeploymentVersion, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  let status = 'unknown';
  while (Date.now() - t0 < timeoutMs) {
    const s = (await describeVersion(client, v))?.drainageInfo?.status;
    if (s === VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINED) return Date.now() - t0;
    status = VersionDrainageStatus[s ?? 0] ?? String(s);
    await sleep(1000);
  }
  throw new Error(`${versionString(v)} not drained after ${timeoutMs / 1000} s (drainage status ${status})`);
}

/** One completed workflow task: when, and which deployment version's worker completed it. */
export interface WorkflowTaskStamp {
  eventId: number;
  timeMs: number;
  /** The completing worker's build id; undefined for an unversioned worker. */
  buildId?: string;
  deploymentName?: string;
}

/** The WorkflowTaskCompleted events of a history, with the version each carries. */
export function workflowTaskStamps(history: History): WorkflowTaskStamp[] {
  return (history.events ?? [])
    .filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    .map((e) => {
      const a = e.workflowTaskCompletedEventAttributes ?? {};
      const t = e.eventTime;
      return {
        eventId: Number(e.eventId),
        timeMs: Number(t?.seconds ?? 0) * 1000 + Math.floor((t?.nanos ?? 0) / 1e6),
        buildId: a.deploymentVersion?.buildId ?? undefined,
        deploymentName: a.deploymentVersion?.deploymentName ?? undefined,
      };
    });
}

/** The child workflow executions a history started (workflow id and run id). */
export function childExecutions(history: History): Array<{ workflowId: string; runId: string }> {
  return (history.events ?? []).flatMap((e) => {
    const x = e.childWorkflowExecutionStartedEventAttributes?.workflowExecution;
    return x?.workflowId && x.runId ? [{ workflowId: x.workflowId, runId: x.runId }] : [];
  });
}

/** The event types of a history in order, by their short names (`TIMER_STARTED`, …). */
export function eventTypes(history: History): string[] {
  return (history.events ?? []).map((e) => (EventType[e.eventType ?? 0] ?? '').replace(/^EVENT_TYPE_/, ''));
}
