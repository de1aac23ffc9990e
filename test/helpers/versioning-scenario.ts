/**
 * The worker-versioning deploy, end to end, against any Temporal (the cluster tier runs it on
 * temporal-server + PostgreSQL; it needs nothing cluster-specific):
 *
 * 1. version 1 = a real worker process (`workers/main.ts`, PEFTGRID_DEPLOYMENT set, default build
 *    id), made current with `temporal worker deployment set-current-version`; grid A starts on it;
 * 2. while A trains, version 2 workers come up with a breaking workflow change
 *    (test/fixtures/workflows-v2: a timer before the grid's first command) and are made current;
 * 3. grid B starts after the switch. Both complete: every workflow task of A and its children
 *    carries v1's build id (some of them completed after the switch), every one of B's carries
 *    v2's, and B's history starts with v2's timer;
 * 4. the proof that the change is breaking: A's history replayed against v2's code fails with a
 *    determinism error (and replays cleanly against v1's);
 * 5. v1 drains (the server reports DRAINED once no open workflow is pinned to it) and its process
 *    stops on SIGTERM with exit code 0.
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { WorkerDeploymentVersion } from '@temporalio/common';
import { bundleWorkflowCode, Worker, type NativeConnection } from '@temporalio/worker';
import { TASK_QUEUES } from '../../src/common/constants';
import { planRuns } from '../../src/config/plan';
import type { GridResult } from '../../src/contracts';
import { createWorkers } from '../../workers/create';
import { bundleBuildId, resolveDeployment } from '../../workers/versioning';
import { REPO } from './fixtures';
import { tinyLoraGrid } from './tiny-grid';
import {
  childExecutions,
  eventTypes,
  setCurrentVersion,
  versionString,
  waitForDrained,
  waitForVersion,
  workflowTaskStamps,
  type WorkflowTaskStamp,
} from './versioning';
import { lastTrainerStep, logRecords, type WorkerProcess } from './worker-process';

export const WORKFLOWS_V1 = require.resolve('../../workflows');
export const WORKFLOWS_V2 = join(REPO, 'test', 'fixtures', 'workflows-v2', 'index.ts');

/** A Temporal to run the scenario on. */
export interface VersioningTarget {
  /** A client of the namespace the scenario runs in. */
  client: Client;
  /** For the in-process version-2 workers. */
  nativeConnection: NativeConnection;
  /** The Temporal CLI's connection flags for that namespace (address, namespace, TLS paths). */
  cliArgs: string[];
  /** Starts `workers/main.ts` (cpu + gpu, debug logs) against the namespace with `env` added. */
  startWorker(dataDir: string, name: string, env: Record<string, string>): WorkerProcess;
  /** Scratch directory: worker data dirs and the grids' file:// store. */
  dir: string;
  /** How long v1 may take to be reported drained after its last pinned workflow closed. */
  drainTimeoutMs: number;
}

/** What the scenario measured, for the test's log line. */
export interface VersioningReport {
  v1: string;
  v2: string;
  gridAWallMs: number;
  gridBWallMs: number;
  /** v1 workflow tasks of grid A and its children completed after v2 became current. */
  v1TasksAfterSwitch: number;
  v2Tasks: number;
  drainedAfterMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = probe();
    if (v !== undefined) return v;
    await sleep(500);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
}

/** The workflow-task stamps of a workflow and of every child it started (recursively). */
async function treeStamps(client: Client, workflowId: string, runId?: string): Promise<WorkflowTaskStamp[]> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const own = workflowTaskStamps(history);
  const children = await Promise.all(childExecutions(history).map((c) => treeStamps(client, c.workflowId, c.runId)));
  return [...own, ...children.flat()];
}

function startGrid(client: Client, t: VersioningTarget, name: string, r: number, maxSteps: number) {
  const grid = tinyLoraGrid({ name, store: `file://${join(t.dir, 'store')}`, maxSteps, checkpointEverySteps: 5, r });
  const gridId = `${name}-${Date.now().toString(36)}`;
  return client.workflow.start('experimentGridWorkflow', {
    taskQueue: TASK_QUEUES.cpu,
    workflowId: gridId,
    args: [{ gridId, grid, runs: planRuns(grid) }],
  });
}

function assertAllOn(stamps: WorkflowTaskStamp[], v: WorkerDeploymentVersion, what: string): void {
  assert.ok(stamps.length > 0, `${what}: no workflow task completed`);
  const off = stamps.filter((s) => s.buildId !== v.buildId || s.deploymentName !== v.deploymentName);
  assert.deepEqual(
    off.map((s) => `event ${s.eventId}: ${s.deploymentName}:${s.buildId}`),
    [],
    `${what}: every workflow task must be completed by ${versionString(v)}`,
  );
}

export async function runVersioningScenario(t: VersioningTarget): Promise<VersioningReport> {
  const { client } = t;
  const deploymentName = `peftgrid-vt-${Date.now().toString(36)}`;

  // 1. Version 1: the real worker process, build id left to its default (the bundle's hash).
  const v1Worker = t.startWorker(join(t.dir, 'v1'), 'v1', { PEFTGRID_DEPLOYMENT: deploymentName });
  let v2Running: Promise<unknown> | undefined;
  let v2Workers: Worker[] = [];
  try {
    // The same default computed here: two processes with the same code agree on it unprompted.
    const [expectedV1, v2] = await Promise.all([
      bundleWorkflowCode({ workflowsPath: WORKFLOWS_V1 }).then((b) => bundleBuildId(b.code)),
      resolveDeployment({ deploymentName }, WORKFLOWS_V2),
    ]);
    const started = await waitFor('the v1 worker to start', 180_000, () => {
      if (v1Worker.child.exitCode !== null)
        throw new Error(`v1 worker exited ${v1Worker.child.exitCode}: ${v1Worker.output()}`);
      return logRecords(v1Worker.output(), 'worker started')[0];
    });
    const v1: WorkerDeploymentVersion = { deploymentName, buildId: String(started.buildId) };
    assert.equal(started.deployment, deploymentName);
    assert.equal(v1.buildId, expectedV1, 'the worker process derives the same default build id from the same code');
    assert.notEqual(v2.version.buildId, v1.buildId, 'changed workflow code gives a new default build id');
    await waitForVersion(client, v1);
    await setCurrentVersion(client, v1, t.cliArgs);

    // Version 2's workers are built now (bundling takes a while), polled only after A is training.
    process.env.PEFTGRID_DATA_DIR = join(t.dir, 'v2');
    v2Workers = await createWorkers({
      connection: t.nativeConnection,
      namespace: client.options.namespace,
      deployment: v2,
      overrides: { shutdownGraceTime: '1s', shutdownForceTime: '30s' },
    });

    // 2. Grid A on v1; once it trains, v2 comes up and becomes current.
    const tA = Date.now();
    const gridA = await startGrid(client, t, 'vers-a', 4, 40);
    await waitFor('grid A to train on v1', 5 * 60_000, () =>
      lastTrainerStep(v1Worker.output()) >= 1 ? true : undefined,
    );
    v2Running = Promise.all(v2Workers.map((w) => w.run()));
    await waitForVersion(client, v2.version);
    await setCurrentVersion(client, v2.version, t.cliArgs);
    const switchedMs = Date.now();
    const { status } = await gridA.describe();
    assert.equal(status.name, 'RUNNING', 'grid A finished before v2 became current: give it more steps');

    // 3. Grid B after the switch; both complete.
    const tB = Date.now();
    const gridB = await startGrid(client, t, 'vers-b', 8, 8);
    const [resultA, resultB] = (await Promise.all([gridA.result(), gridB.result()])) as [GridResult, GridResult];
    const gridAWallMs = Date.now() - tA;
    const gridBWallMs = Date.now() - tB;
    for (const [name, r] of [
      ['A', resultA],
      ['B', resultB],
    ] as const)
      assert.deepEqual(
        r.runs.map((x) => [x.status, x.error]),
        [['completed', undefined]],
        `grid ${name}`,
      );

    const stampsA = await treeStamps(client, gridA.workflowId);
    const stampsB = await treeStamps(client, gridB.workflowId);
    assertAllOn(stampsA, v1, 'grid A and its children');
    assertAllOn(stampsB, v2.version, 'grid B and its children');
    const v1TasksAfterSwitch = stampsA.filter((s) => s.timeMs > switchedMs).length;
    assert.ok(v1TasksAfterSwitch > 0, 'grid A completed no workflow task after the switch: nothing was proven');
    const descA = await gridA.describe();
    assert.equal(descA.raw.workflowExecutionInfo?.versioningInfo?.deploymentVersion?.buildId, v1.buildId);

    // B ran v2's code: its first command is the fixture's timer; A's is not.
    const firstCommand = (types: string[]) => types[types.indexOf('WORKFLOW_TASK_COMPLETED') + 1];
    const historyA = await gridA.fetchHistory();
    assert.equal(firstCommand(eventTypes(await gridB.fetchHistory())), 'TIMER_STARTED');
    assert.notEqual(firstCommand(eventTypes(historyA)), 'TIMER_STARTED');

    // 4. The change is breaking: A's history does not replay on v2's code, and does on v1's.
    await assert.rejects(
      Worker.runReplayHistory({ workflowsPath: WORKFLOWS_V2 }, historyA, gridA.workflowId),
      // By name: the worker and workflow packages may each load their own copy of the class.
      (err: Error) => err.name === 'DeterminismViolationError',
      'grid A replayed on v2 code: the fixture change is not breaking',
    );
    await Worker.runReplayHistory({ workflowsPath: WORKFLOWS_V1 }, historyA, gridA.workflowId);

    // 5. v1 drains, then its process stops cleanly.
    const drainedAfterMs = await waitForDrained(client, v1, t.drainTimeoutMs);
    v1Worker.child.kill('SIGTERM');
    const code = await Promise.race([v1Worker.exited, sleep(60_000).then(() => 'timeout')]);
    assert.equal(code, 0, 'the drained v1 worker exits 0 on SIGTERM');
    assert.equal(logRecords(v1Worker.output(), 'worker stopped').length, 1);

    return {
      v1: versionString(v1),
      v2: versionString(v2.version),
      gridAWallMs,
      gridBWallMs,
      v1TasksAfterSwitch,
      v2Tasks: stampsB.length,
      drainedAfterMs,
    };
  } finally {
    if (v1Worker.child.exitCode === null) v1Worker.child.kill('SIGKILL');
    for (const w of v2Workers) if (w.getState() === 'RUNNING') w.shutdown();
    await v2Running?.catch(() => undefined);
  }
}
