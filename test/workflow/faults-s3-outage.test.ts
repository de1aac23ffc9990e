/**
 * Fault: the object store (SeaweedFS on loopback, the grid's `s3://` store) goes down for 30 s in
 * the middle of training, while the activity keeps producing checkpoints to upload, then comes
 * back on the same data directory. The run must complete, and a poller watching the bucket the
 * whole time must never see a committed checkpoint (manifest present) with a missing or short file.
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { checkpointsPrefix } from '../../activities/train';
import { runWorkflowId, TASK_QUEUES } from '../../src/common/constants';
import { planRuns } from '../../src/config/plan';
import { getDirectory, manifestFileKey, readManifest, S3ObjectStore } from '../../src/store';
import type { GridResult } from '../../src/contracts';
import { scratchDir } from '../helpers/fixtures';
import { startS3Server, type S3Server } from '../helpers/s3-server';
import {
  lastTrainerStep,
  logRecords,
  pendingHeartbeat,
  startWorkerProcess,
  waitForPollers,
  type WorkerProcess,
} from '../helpers/worker-process';
import { trainingKeyOf } from '../helpers/run-keys';
import { localTemporal, tinyLoraGrid } from '../helpers/tiny-grid';

const MAX_STEPS = 40;
const EVERY = 2; // frequent checkpoints: several uploads fall due while the store is down
const OUTAGE_MS = 30_000;

describe('object store outage during checkpoint uploads', { timeout: 10 * 60_000 }, () => {
  let env: TestWorkflowEnvironment;
  let s3: S3Server;
  let worker: WorkerProcess | undefined;
  const dir = scratchDir('faults-s3');

  before(async () => {
    s3 = await startS3Server(join(dir, 'weed'));
    Object.assign(process.env, s3.env); // the worker process inherits the endpoint and keys
    env = await localTemporal();
  });
  after(async () => {
    worker?.child.kill('SIGKILL');
    await env?.teardown();
    await s3?.stop();
  });

  it('SeaweedFS stopped for 30 s mid-training: uploads wait it out, the run completes, nothing half-committed is ever visible', async () => {
    const storeUrl = `s3://${s3.bucket}/faults-${process.pid}`;
    const grid = tinyLoraGrid({
      name: 'faults-s3',
      store: storeUrl,
      maxSteps: MAX_STEPS,
      checkpointEverySteps: EVERY,
      extra: { retention: { keepLast: 3, keepBest: true } },
    });
    const runs = planRuns(grid);
    const runKey = runs[0]!.runKey;
    worker = startWorkerProcess(env.connection.options.address, join(dir, 'worker'), 'w', 'cpu,gpu', 'debug');
    await waitForPollers(env.client);
    const handle = await env.client.workflow.start('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: 'faults-s3',
      args: [{ gridId: 'faults-s3', grid, runs }],
    });

    // Checkpoints live under the run's training key (docs/contracts.md §3).
    const trainingKey = await trainingKeyOf(env.client, runKey);
    // The watcher: one S3 request per try (no SDK retries), so an outage shows up as failed polls.
    const watchStart = Date.now();
    const watcher = new S3ObjectStore(storeUrl, { client: { maxAttempts: 1 } });
    const violations: string[] = [];
    let polls = 0;
    let failedPolls = 0;
    let watching = true;
    const watch = (async () => {
      while (watching && Date.now() - watchStart < 8 * 60_000) {
        try {
          const objects = await watcher.list(checkpointsPrefix(trainingKey) + '/');
          const sizes = new Map(objects.map((o) => [o.key, o.bytes]));
          for (const m of objects.filter((o) => o.key.endsWith('/manifest.json'))) {
            const prefix = m.key.slice(0, -'/manifest.json'.length);
            const manifest = await readManifest(watcher, prefix);
            if (!manifest) continue; // deleted by retention since the listing
            for (const f of manifest.files) {
              const key = manifestFileKey(prefix, manifest, f.path);
              const info = sizes.get(key) ?? (await watcher.head(key))?.bytes;
              // Retention deletes the manifest before the files: a file missing while its manifest
              // still exists is a real hole, one missing after the manifest went is not.
              if (info !== f.bytes && (await readManifest(watcher, prefix)))
                violations.push(`${key}: ${info ?? 'missing'} bytes, manifest says ${f.bytes}`);
            }
          }
          polls++;
        } catch {
          failedPolls++;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    })();

    let outageStep = 0;
    for (;;) {
      const hb = await pendingHeartbeat<{ step?: number; checkpointKey?: string }>(env.client, runWorkflowId(runKey));
      if (hb?.details.checkpointKey && (hb.details.step ?? 0) >= 6) {
        outageStep = hb.details.step!;
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await s3.stop();
    const stoppedAt = Date.now();
    // Sampled a moment after the stop: a poll already answered before it may still be counting.
    await new Promise((r) => setTimeout(r, 2000));
    const pollsBefore = polls;
    await new Promise((r) => setTimeout(r, OUTAGE_MS - 2000));
    // Checked before start(): the store answers again before start() returns (it waits for the bucket).
    const pollsDuring = polls - pollsBefore;
    await s3.start();
    const restartedAt = Date.now();

    let result: GridResult;
    try {
      assert.equal(pollsDuring, 0, 'the store really was unreachable during the outage');
      result = (await handle.result()) as GridResult;
    } finally {
      watching = false; // also on failure: a pending poll loop would keep the test process alive
      await watch;
    }
    assert.equal(result.runs[0]!.status, 'completed', result.runs[0]!.error);
    assert.deepEqual(violations, [], 'no committed checkpoint was ever missing a file');
    assert.ok(polls > 10, `the watcher polled the bucket (${polls} polls)`);

    const log = worker.output();
    const failures = logRecords(log, 'checkpoint upload failed; retrying');
    assert.ok(failures.length > 0, `an upload fell into the outage and was retried:\n${log.slice(-3000)}`);
    const failedStep = Number(failures[0]!.step);
    const committedLater = logRecords(log, 'checkpoint committed').find((r) => r.step === failedStep);
    assert.ok(committedLater && Number(committedLater.tries) > 1, `step ${failedStep} committed after retries`);
    const recoveredAt = Number(committedLater.time);
    assert.ok(recoveredAt >= restartedAt - 2000, 'the retried upload committed only once the store was back');

    // Whatever survived retention verifies completely.
    const store = new S3ObjectStore(storeUrl);
    const committed = [
      ...new Set(
        (await store.list(checkpointsPrefix(trainingKey) + '/'))
          .filter((o) => o.key.endsWith('/manifest.json'))
          .map((o) => o.key),
      ),
    ];
    assert.ok(committed.length >= 1 && committed.length <= 4, `retention kept ${committed.length} checkpoints`);
    for (const key of committed)
      await getDirectory(store, key.slice(0, -'/manifest.json'.length), join(dir, 'verify', key));

    const attempts = Math.max(...logRecords(log, 'train attempt started').map((r) => Number(r.attempt)));
    const resumed = logRecords(log, 'resuming from checkpoint')[0];
    // Counted from the trainer's real last step before the restart (not the heartbeat's).
    const lost = resumed ? lastTrainerStep(log, Number(resumed.time)) - Number(resumed.step) : 0;
    console.log(
      `FAULT S3 (SeaweedFS) stopped ${OUTAGE_MS / 1000}s from step ${outageStep}: completed=y, steps lost=${lost}, train attempts=${attempts}, ` +
        `failed upload tries=${failures.length}, time to recover=${((recoveredAt - restartedAt) / 1000).toFixed(1)} s after restart ` +
        `(${((recoveredAt - stoppedAt) / 1000).toFixed(1)} s after stop), watcher: ${polls} clean polls, ${failedPolls} failed, 0 half-committed`,
    );
    watcher.destroy();
    store.destroy();
    worker.child.kill('SIGTERM');
    await worker.exited;
  });
});
