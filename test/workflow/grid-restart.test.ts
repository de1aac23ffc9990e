/**
 * Workflow tier, issue 12 point 9: a grid terminated while a run trains, and started again at
 * once. The terminated grid's run is still closing (REQUEST_CANCEL has to be processed by the
 * run's workflow and reach its trainer), so the second grid finds the run's deterministic workflow
 * id taken. It must wait for the old execution to close and then run the run to completion, not
 * record "Workflow execution already started" as a failed run.
 *
 * On an idle machine the old run closes within about a second, so a test relying on timing would
 * rarely collide. To make "still cancelling" last as long as the test needs, the first grid runs
 * on its own workflow task queue (its run inherits it; activities still go to the normal cpu and
 * gpu queues) whose worker is stopped before the terminate and started again only once the second
 * grid is seen waiting.
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { runWorkflowId, TASK_QUEUES } from '../../src/common/constants';
import { planRuns } from '../../src/config/plan';
import { createWorkers } from '../../workers/create';
import { AWAIT_OLD_RUN_PATCH } from '../../workflows/experiment-grid';
import type { GridResult } from '../../src/contracts';
import { scratchDir } from '../helpers/fixtures';
import { localTemporal, tinyLoraGrid } from '../helpers/tiny-grid';
import { pendingHeartbeat } from '../helpers/worker-process';

Runtime.install({ logger: new DefaultLogger('WARN') });

const MAX_STEPS = 40;
const OLD_QUEUE = 'grid-restart-old-workflows';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('restarting a grid while its old run is still cancelling', { timeout: 15 * 60_000 }, () => {
  let env: TestWorkflowEnvironment;
  let workers: Worker[];
  let running: Promise<unknown>;
  let bundle: Awaited<ReturnType<typeof bundleWorkflowCode>>;
  const oldWorkers: { worker: Worker; run: Promise<void> }[] = [];
  const dir = scratchDir('wf-grid-restart');

  /** A workflow-only worker on the first grid's queue. */
  async function startOldWorker() {
    const worker = await Worker.create({
      connection: env.nativeConnection,
      namespace: env.namespace ?? 'default',
      taskQueue: OLD_QUEUE,
      workflowBundle: bundle,
    });
    const w = { worker, run: worker.run() };
    oldWorkers.push(w);
    return w;
  }

  before(async () => {
    env = await localTemporal();
    process.env.PEFTGRID_DATA_DIR = join(dir, 'data');
    workers = await createWorkers({ connection: env.nativeConnection, namespace: env.namespace ?? 'default' });
    running = Promise.all(workers.map((w) => w.run()));
    bundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows') });
  });

  after(async () => {
    for (const w of [...(workers ?? []), ...oldWorkers.map((o) => o.worker)])
      if (w.getState() === 'RUNNING') w.shutdown();
    await Promise.all([running, ...oldWorkers.map((o) => o.run)].map((p) => p?.catch(() => undefined)));
    await env?.teardown();
  });

  it('waits for the old run to close, then completes it (not "already started")', async () => {
    const g = tinyLoraGrid({
      name: 'restart',
      store: `file://${join(dir, 'store')}`,
      maxSteps: MAX_STEPS,
      checkpointEverySteps: 10,
    });
    const runs = planRuns(g);
    const runKey = runs[0]!.runKey;
    const gridId = `restart-${Date.now()}`;
    const start = (taskQueue: string) =>
      env.client.workflow.start('experimentGridWorkflow', {
        taskQueue,
        workflowId: gridId,
        args: [{ gridId, grid: g, runs }],
      });

    const oldWorker = await startOldWorker();
    const first = await start(OLD_QUEUE);
    const deadline = Date.now() + 5 * 60_000;
    while (!(await pendingHeartbeat<{ step?: number }>(env.client, runWorkflowId(runKey)))) {
      assert.ok(Date.now() < deadline, 'training never heartbeated');
      await sleep(100);
    }
    const oldRun = await env.client.workflow.getHandle(runWorkflowId(runKey)).describe();
    // From here the old run cannot process its cancellation: it stays "cancelling".
    oldWorker.worker.shutdown();
    await oldWorker.run;
    await first.terminate('test: the user terminates the grid while its run trains');

    const second = await start(TASK_QUEUES.cpu);
    for (;;) {
      const desc = await second.describe();
      if ((desc.raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'awaitWorkflowClosed')) break;
      if (desc.status.name !== 'RUNNING') {
        const runsOf = ((await second.result()) as GridResult).runs.map((x) => `${x.status}: ${x.error}`);
        assert.fail(`the second grid closed without waiting for the old run: ${runsOf.join('; ')}`);
      }
      assert.ok(Date.now() < deadline, 'the second grid never waited for the old run');
      await sleep(200);
    }
    assert.equal(
      (await env.client.workflow.getHandle(runWorkflowId(runKey), oldRun.runId).describe()).status.name,
      'RUNNING',
      'the old run is still closing while the second grid waits',
    );
    // The old run's workflow tasks flow again: it processes the cancellation and closes.
    await startOldWorker();

    const result = (await second.result()) as GridResult;
    assert.equal(result.runs.length, 1);
    const r = result.runs[0]!;
    assert.equal(r.status, 'completed', `${r.runKey}: ${r.error}`);
    assert.equal(r.training?.steps, MAX_STEPS);

    const events = (await second.fetchHistory()).events ?? [];
    assert.equal(
      events.filter((e) => e.startChildWorkflowExecutionFailedEventAttributes).length,
      1,
      'the second grid found the run id taken once',
    );
    const waited = events.filter(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'awaitWorkflowClosed',
    );
    assert.equal(waited.length, 1, 'it waited once for the old execution');
    const old = await env.client.workflow.getHandle(runWorkflowId(runKey), oldRun.runId).describe();
    assert.equal(old.status.name, 'CANCELLED');
    const latest = await env.client.workflow.getHandle(runWorkflowId(runKey)).describe();
    assert.notEqual(latest.runId, oldRun.runId, 'the run was started again after the old one closed');
    assert.equal(latest.status.name, 'COMPLETED');

    // The new path (patch marker, wait, second start) replays deterministically.
    await Worker.runReplayHistory(
      { workflowBundle: bundle, replayName: 'grid-restart' },
      await second.fetchHistory(),
      gridId,
    );
    const markers = events
      .flatMap((e) => Object.values(e.markerRecordedEventAttributes?.details ?? {}))
      .flatMap((p) => p.payloads ?? [])
      .map((p) => Buffer.from(p.data ?? []).toString('utf8'));
    assert.ok(
      markers.some((m) => m.includes(AWAIT_OLD_RUN_PATCH)),
      `the wait is behind the patch marker: ${markers.join(' | ')}`,
    );
  });
});
