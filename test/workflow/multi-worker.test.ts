/**
 * Many workers, one grid: one cpu worker and two gpu workers, each its own OS process (as on three
 * machines), share one dev server. A grid of two LoRA runs trains on both GPUs at once; the gpu
 * worker training one of them is SIGKILLed mid-run, and that run is resumed from its last committed
 * checkpoint by the other gpu worker once it is free. Who ran what is read from Temporal itself
 * (the pending activity's lastWorkerIdentity, the history's ActivityTaskStarted identity), not
 * guessed from timing.
 */
import { strict as assert } from 'node:assert';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { runWorkflowId, TASK_QUEUES } from '../../src/common/constants';
import { planRuns } from '../../src/config/plan';
import type { GridResult } from '../../src/contracts';
import { scratchDir } from '../helpers/fixtures';
import { logRecords, startWorkerProcess, waitForPollers, type WorkerProcess } from '../helpers/worker-process';
import { keysOf } from '../helpers/run-keys';
import { localTemporal, tinyLoraGrid } from '../helpers/tiny-grid';

const MAX_STEPS = 24;
const EVERY = 4;
const { EventType } = temporal.api.enums.v1;

/** The SDK's default worker identity: `${pid}@${hostname}`. */
const identityOf = (w: WorkerProcess) => `${w.child.pid}@${hostname()}`;

describe('many workers, one grid', { timeout: 6 * 60_000 }, () => {
  let env: TestWorkflowEnvironment;
  const workers: WorkerProcess[] = [];
  const dir = scratchDir('multi-worker');

  before(async () => {
    env = await localTemporal();
  });
  after(async () => {
    for (const w of workers) w.child.kill('SIGKILL');
    await env?.teardown();
  });

  /** The training activity of a run: its attempt, the worker that holds it now, its newest committed checkpoint. */
  async function pendingTrain(runKey: string): Promise<{ worker: string; attempt: number; step?: number } | null> {
    try {
      const desc = await env.client.workflow.getHandle(runWorkflowId(runKey)).describe();
      const act = desc.raw.pendingActivities?.find((a) => a.activityType?.name === 'trainModel');
      if (
        !act?.lastWorkerIdentity ||
        act.state !== temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
      )
        return null;
      const data = act.heartbeatDetails?.payloads?.[0]?.data;
      const hb = data
        ? (JSON.parse(Buffer.from(data).toString('utf8')) as { step?: number; checkpointKey?: string })
        : undefined;
      // `step` in the heartbeat is the trainer's latest step; the committed one is in the key.
      const committed = hb?.checkpointKey ? Number(/step-(\d+)$/.exec(hb.checkpointKey)?.[1]) : undefined;
      return { worker: act.lastWorkerIdentity, attempt: act.attempt ?? 1, step: committed };
    } catch {
      return null;
    }
  }

  /** Which worker identity started the attempt of trainModel that completed, and which attempt. */
  async function completedTrain(runKey: string): Promise<{ identity: string; attempt: number }> {
    const history = await env.client.workflow.getHandle(runWorkflowId(runKey)).fetchHistory();
    const events = history.events ?? [];
    const scheduled = events.find(
      (e) =>
        e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED &&
        e.activityTaskScheduledEventAttributes?.activityType?.name === 'trainModel',
    );
    assert.ok(scheduled, `${runKey}: trainModel was never scheduled`);
    const started = events.find(
      (e) =>
        e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED &&
        Number(e.activityTaskStartedEventAttributes?.scheduledEventId) === Number(scheduled.eventId),
    );
    assert.ok(started, `${runKey}: trainModel never started`);
    return {
      identity: started.activityTaskStartedEventAttributes?.identity ?? '',
      attempt: started.activityTaskStartedEventAttributes?.attempt ?? 0,
    };
  }

  it('a grid with two LoRA runs survives SIGKILL of one gpu worker: the other resumes that run', async () => {
    const address = env.connection.options.address;
    const cpu = startWorkerProcess(address, join(dir, 'cpu'), 'cpu', 'cpu');
    const gpuA = startWorkerProcess(address, join(dir, 'gpu-a'), 'gpu-a', 'gpu');
    const gpuB = startWorkerProcess(address, join(dir, 'gpu-b'), 'gpu-b', 'gpu');
    workers.push(cpu, gpuA, gpuB);
    await waitForPollers(env.client);

    const grid = tinyLoraGrid({
      name: 'multi-worker',
      store: `file://${join(dir, 'store')}`,
      maxSteps: MAX_STEPS,
      checkpointEverySteps: EVERY,
      r: [4, 8],
      extra: { concurrency: { gpu: 2 } },
    });
    const runs = planRuns(grid);
    assert.equal(runs.length, 2);
    const gridId = `multi-worker-${Date.now()}`;
    const handle = await env.client.workflow.start('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: gridId,
      args: [{ gridId, grid, runs }],
    });

    // Wait until both runs train at once, on different gpu workers, and one has a checkpoint.
    const gpuIds = new Map([
      [identityOf(gpuA), gpuA],
      [identityOf(gpuB), gpuB],
    ]);
    let victim: { runKey: string; worker: WorkerProcess; step: number } | undefined;
    const deadline = Date.now() + 150_000;
    while (!victim) {
      assert.ok(
        Date.now() < deadline,
        `no run reached a checkpoint on two gpu workers in time\n${gpuA.output().slice(-1500)}\n${gpuB.output().slice(-1500)}`,
      );
      const pending = await Promise.all(runs.map(async (r) => ({ runKey: r.runKey, p: await pendingTrain(r.runKey) })));
      if (pending.every((x) => x.p && gpuIds.has(x.p.worker)) && pending[0]!.p!.worker !== pending[1]!.p!.worker) {
        const ready = pending.find((x) => x.p!.step !== undefined && x.p!.step >= EVERY);
        if (ready) victim = { runKey: ready.runKey, worker: gpuIds.get(ready.p!.worker)!, step: ready.p!.step! };
      }
      if (!victim) await new Promise((r) => setTimeout(r, 200));
    }
    const survivor = victim.worker === gpuA ? gpuB : gpuA;
    const victimId = identityOf(victim.worker);
    victim.worker.child.kill('SIGKILL');
    await victim.worker.exited;
    const t0 = Date.now();

    const result = (await handle.result()) as GridResult;
    for (const r of result.runs) assert.equal(r.status, 'completed', `${r.runKey}: ${r.error}`);
    for (const r of result.runs) assert.equal(r.training?.steps, MAX_STEPS);

    // The killed run: its completed attempt was started by the survivor, after a retry.
    const killed = await completedTrain(victim.runKey);
    assert.equal(
      killed.identity,
      identityOf(survivor),
      `trainModel of ${victim.runKey} completed on ${killed.identity}`,
    );
    assert.notEqual(killed.identity, victimId);
    assert.ok(killed.attempt >= 2, `attempt ${killed.attempt}: the run was not retried`);
    // ... and the survivor resumed it from a committed checkpoint, not from step 0.
    // trainModel logs the key it trains under: the run's training key (docs/contracts.md §3).
    const victimTrainingKey = keysOf(result.runs.find((r) => r.runKey === victim!.runKey)!).trainingKey;
    const resume = logRecords(survivor.output(), 'resuming from checkpoint').find(
      (r) => r.runKey === victimTrainingKey,
    );
    assert.ok(resume, `the survivor did not resume ${victim.runKey}:\n${survivor.output().slice(-2000)}`);
    const resumedAt = Number(resume.step);
    assert.ok(
      resumedAt >= victim.step && resumedAt > 0,
      `resumed at ${resumedAt}, checkpoint at kill time ${victim.step}`,
    );
    // The other run never left the survivor.
    const other = runs.find((r) => r.runKey !== victim!.runKey)!;
    assert.equal((await completedTrain(other.runKey)).identity, identityOf(survivor));
    console.log(
      `killed ${victimId} at checkpoint step ${victim.step}; ${identityOf(survivor)} resumed ${victim.runKey} from step ${resumedAt}; grid done ${((Date.now() - t0) / 1000).toFixed(0)} s after the kill`,
    );
  });
});
