/**
 * Fault: the newest committed checkpoint is damaged in the store (a file truncated behind the
 * manifest's back: bit rot, a bad copy, an operator's mistake), then the worker is SIGKILLed. The
 * next attempt, on a fresh worker with an empty disk, must reject the damaged checkpoint by its
 * checksum, say so in the log, resume from the previous one, and complete the run.
 */
import { strict as assert } from 'node:assert';
import { statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { checkpointKey } from '../../activities/checkpoints';
import { committedCheckpoints } from '../../activities/train';
import { TASK_QUEUES } from '../../src/common/constants';
import { planRuns } from '../../src/config/plan';
import { FileObjectStore, manifestFileKey, readManifest } from '../../src/store';
import type { GridResult } from '../../src/contracts';
import { scratchDir } from '../helpers/fixtures';
import {
  lastTrainerStep,
  logRecords,
  startWorkerProcess,
  waitForPollers,
  type WorkerProcess,
} from '../helpers/worker-process';
import { trainingKeyOf } from '../helpers/run-keys';
import { localTemporal, tinyLoraGrid } from '../helpers/tiny-grid';

// Long enough that training is still going when the second checkpoint commits, at any load.
const MAX_STEPS = 32;
const EVERY = 4;

describe('corrupt newest checkpoint + worker loss', { timeout: 10 * 60_000 }, () => {
  let env: TestWorkflowEnvironment;
  const workers: WorkerProcess[] = [];
  const dir = scratchDir('faults-corrupt');
  const storeDir = join(dir, 'store');

  before(async () => {
    env = await localTemporal();
  });
  after(async () => {
    for (const w of workers) w.child.kill('SIGKILL');
    await env?.teardown();
  });

  it('a truncated file in the newest checkpoint: the resumed attempt falls back to the previous one and completes', async () => {
    const grid = tinyLoraGrid({
      name: 'faults-corrupt',
      store: `file://${storeDir}`,
      maxSteps: MAX_STEPS,
      checkpointEverySteps: EVERY,
    });
    const runs = planRuns(grid);
    const runKey = runs[0]!.runKey;
    const a = startWorkerProcess(env.connection.options.address, join(dir, 'worker-a'), 'a', 'cpu,gpu', 'debug');
    workers.push(a);
    await waitForPollers(env.client);
    const handle = await env.client.workflow.start('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: 'faults-corrupt',
      args: [{ gridId: 'faults-corrupt', grid, runs }],
    });
    // Checkpoints live under the run's training key (docs/contracts.md §3); asked while worker a can answer.
    const trainingKey = await trainingKeyOf(env.client, runKey);

    // Two committed checkpoints are needed: one to damage, one to fall back to. Watched in the
    // store, where a commit shows at once: the heartbeat that carries it reaches the server only
    // once per throttle interval, and a rehearsal of CI saw training finish before it did (the
    // loop then waited for a heartbeat that never came, until the test timed out).
    const store = new FileObjectStore(storeDir);
    const deadline = Date.now() + 5 * 60_000;
    while ((await committedCheckpoints(store, trainingKey)).length < 2) {
      assert.ok(Date.now() < deadline, 'no second committed checkpoint within 5 min');
      await new Promise((r) => setTimeout(r, 100));
    }
    let killStep = 0;
    // Freeze the worker first so no newer checkpoint can commit between choosing the victim and
    // the kill: the damaged one is then guaranteed to be the newest the next attempt sees.
    a.child.kill('SIGSTOP');
    // The trainer's last step as the (now frozen) worker logged it: steps lost are counted from it,
    // not from the heartbeat, which is throttled to 5 s. (A step the trainer finished between the
    // SIGSTOP and the SIGKILL, a few ms, is never reported and not counted.)
    killStep = lastTrainerStep(a.output());
    const committed = await committedCheckpoints(store, trainingKey);
    assert.ok(committed.length >= 2, `two committed checkpoints before the damage: ${committed.join(',')}`);
    const [newest, previous] = committed as [number, number];
    // The file the manifest points at (in the committing attempt's stage): readers trust nothing else.
    const prefix = checkpointKey(trainingKey, newest);
    const victim = join(
      storeDir,
      manifestFileKey(prefix, (await readManifest(store, prefix))!, 'trainable.safetensors'),
    );
    truncateSync(victim, Math.floor(statSync(victim).size / 2));
    a.child.kill('SIGKILL');
    await a.exited;

    const t0 = Date.now();
    const b = startWorkerProcess(env.connection.options.address, join(dir, 'worker-b'), 'b'); // empty disk
    workers.push(b);
    const result = (await handle.result()) as GridResult;
    assert.equal(result.runs[0]!.status, 'completed', result.runs[0]!.error);

    const log = b.output();
    const rejected = logRecords(log, 'checkpoint failed verification; falling back to the previous one');
    assert.ok(
      rejected.some((r) => String(r.checkpoint).endsWith(`/step-${newest}`) && /checksum mismatch/.test(String(r.err))),
      `worker b rejected step-${newest} by its checksum:\n${log.slice(-3000)}`,
    );
    const resumed = Number(logRecords(log, 'resuming from checkpoint')[0]?.step ?? NaN);
    assert.equal(
      resumed,
      previous,
      `resumed from the previous committed checkpoint (step ${previous}), got ${resumed}`,
    );
    const firstStep = logRecords(log, 'first training step of this attempt')[0];
    assert.ok(firstStep, 'the resumed attempt trained');
    const final = await store.get(`runs/${trainingKey}/final/training_log.json`);
    assert.equal((JSON.parse(final.toString('utf8')) as { losses: number[] }).losses.length, MAX_STEPS);
    console.log(
      `FAULT truncated newest checkpoint (step-${newest}) + SIGKILL at trainer step ${killStep}: completed=y, ` +
        `fell back to step-${previous}, steps lost=${killStep - previous}, time to recover=${((Number(firstStep.time) - t0) / 1000).toFixed(1)} s ` +
        `(new worker start → first resumed step, includes the ${60} s heartbeat timeout)`,
    );
    b.child.kill('SIGTERM');
    await b.exited;
  });
});
