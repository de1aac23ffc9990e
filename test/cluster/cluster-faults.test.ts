/**
 * The fault suite on the real cluster (temporal-server on PostgreSQL with mTLS, infra/cluster):
 * a fault-free reference run, then the same one-run grid under each fault —
 *   SIGKILL of temporal-server mid-training, restarted 15 s later;
 *   PostgreSQL stopped for 30 s mid-grid;
 *   SIGKILL of the training worker (a new worker process takes over);
 *   SIGSTOP of the worker for 60 s (it cannot reach the frontend), then SIGCONT.
 * Each grid runs in a namespace of its own, so the run ids (content-derived) do not collide and
 * every run trains from scratch. Every run must complete; no committed checkpoint may be lost (a
 * retry resumes at or after the newest checkpoint committed before the fault); every step's training
 * loss and the eval metrics must equal the reference run's (tiny models on CPU are deterministic).
 * Prints a FAULT line per case with the wall time.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@temporalio/client';
import { registerNamespace } from '../../infra/cluster-stack';
import { runWorkflowId, TASK_QUEUES } from '../../src/common/constants';
import { planRuns } from '../../src/config/plan';
import type { GridResult, RunResult } from '../../src/contracts';
import { clusterCtl, clusterWorker, ensureCluster, type ClusterHandle } from '../helpers/cluster';
import { scratchDir } from '../helpers/fixtures';
import { keysOf } from '../helpers/run-keys';
import { tinyLoraGrid } from '../helpers/tiny-grid';
import {
  lastTrainerStep,
  logRecords,
  pendingHeartbeat,
  waitForPollers,
  type WorkerProcess,
} from '../helpers/worker-process';

const MAX_STEPS = 30;
const EVERY = 5;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const stamp = Date.now().toString(36);

interface FaultContext {
  client: Client;
  /** The worker running now (a fault may replace it). */
  worker(): WorkerProcess;
  /** Starts another worker process (as on another machine) and makes it the current one. */
  replaceWorker(): WorkerProcess;
}

describe('fault suite on the cluster', { timeout: 60 * 60_000 }, () => {
  const dir = scratchDir('cluster-faults');
  let h: ClusterHandle;
  const workers: WorkerProcess[] = [];
  let reference: { run: RunResult; losses: number[] } | undefined;
  const table: string[] = [];

  before(async () => {
    h = await ensureCluster();
  });
  after(async () => {
    for (const w of workers) {
      w.child.kill('SIGCONT');
      w.child.kill('SIGKILL');
    }
    // Leave the cluster as we found it: running (a failed case may have left it stopped).
    clusterCtl.startPostgres();
    clusterCtl.startServer();
    await h?.connection.close().catch(() => undefined);
    console.log(['FAULT TABLE (cluster):', ...table].join('\n  '));
  });

  /** Runs the one-run grid in namespace `<name>`; `inject` runs once training passed step 8. */
  async function faultRun(
    name: string,
    inject?: (ctx: FaultContext) => Promise<string>,
  ): Promise<{ run: RunResult; losses: number[] }> {
    const namespace = `pg-${name}-${stamp}`;
    await registerNamespace({ ...h.settings, namespace }, (l) => console.log(`[cluster] ${l}`));
    const client = new Client({ connection: h.connection, namespace });
    const mine: WorkerProcess[] = [];
    const start = () => {
      const w = clusterWorker(h, join(dir, name, `w${mine.length + 1}`), 'w', {
        env: { TEMPORAL_NAMESPACE: namespace },
      });
      mine.push(w);
      workers.push(w);
      return w;
    };
    start();
    await waitForPollers(client, 120_000);
    const grid = tinyLoraGrid({
      name: `cluster-${name}`,
      store: `file://${join(dir, name, 'store')}`,
      maxSteps: MAX_STEPS,
      checkpointEverySteps: EVERY,
    });
    const runs = planRuns(grid);
    const runKey = runs[0]!.runKey;
    const gridId = `cluster-${name}`;
    const t0 = Date.now();
    const handle = await client.workflow.start('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: gridId,
      args: [{ gridId, grid, runs }],
    });
    let faultAt = Infinity;
    let what = 'none';
    let before = 0;
    if (inject) {
      while (before < 8) {
        before = (await pendingHeartbeat<{ step?: number }>(client, runWorkflowId(runKey)))?.details.step ?? 0;
        if (Date.now() - t0 > 10 * 60_000) throw new Error(`${name}: training never reached step 8`);
        await sleep(200);
      }
      faultAt = Date.now();
      what = await inject({ client, worker: () => mine.at(-1)!, replaceWorker: start });
    }
    const result = (await handle.result()) as GridResult;
    const wall = (Date.now() - t0) / 1000;
    const run = result.runs[0]!;
    assert.equal(run.status, 'completed', `${name}: ${run.error}`);
    assert.equal(run.training?.steps, MAX_STEPS, `${name}: trained steps`);

    // Logs of every worker of this case, in time order (a replacement worker resumes the run).
    const log = mine.map((w) => w.output()).join('\n');
    const committed = logRecords(log, 'checkpoint committed')
      .filter((r) => Number(r.time) < faultAt)
      .map((r) => Number(r.step));
    const newestBefore = committed.length ? Math.max(...committed) : 0;
    const resumed = logRecords(log, 'resuming from checkpoint').filter((r) => Number(r.time) > faultAt)[0];
    if (resumed)
      assert.ok(
        Number(resumed.step) >= newestBefore,
        `${name}: resumed at step ${resumed.step}, but step ${newestBefore} had been committed before the fault`,
      );
    const lost = resumed ? lastTrainerStep(log, Number(resumed.time)) - Number(resumed.step) : 0;
    const attempts = Math.max(1, ...logRecords(log, 'train attempt started').map((r) => Number(r.attempt)));
    const line =
      `${name}: ${what}; completed=y, wall ${wall.toFixed(1)} s, fault at step ${before || '-'}, ` +
      `train attempts ${attempts}, resumed from ${resumed ? `step ${resumed.step}` : attempts > 1 ? '- (no checkpoint needed)' : '- (same attempt)'}, ` +
      `newest checkpoint before the fault ${newestBefore}, trainer steps redone ${lost}, ` +
      `trainLoss ${run.training?.trainLoss}, metrics ${JSON.stringify(run.metrics)}`;
    console.log(`FAULT ${line}`);
    table.push(line);
    for (const w of mine) {
      w.child.kill('SIGCONT');
      w.child.kill('SIGTERM');
    }
    await Promise.all(mine.map((w) => w.exited));
    // The per-step loss history of the final adapter (docs/contracts.md §3).
    const losses = (
      JSON.parse(
        readFileSync(join(dir, name, 'store', 'runs', keysOf(run).trainingKey!, 'final', 'training_log.json'), 'utf8'),
      ) as { losses: number[] }
    ).losses;
    assert.equal(losses.length, MAX_STEPS, `${name}: a loss per step`);
    return { run, losses };
  }

  /** A faulted run lost nothing: every step's loss and the eval metrics equal the reference's, bit for bit. */
  function sameAsReference(r: { run: RunResult; losses: number[] }): void {
    assert.ok(reference, 'the reference run ran first');
    assert.deepEqual(r.losses, reference.losses, "bit-exact: every step's loss equals the fault-free run's");
    assert.deepEqual(r.run.metrics, reference.run.metrics);
  }

  it('reference: the grid without faults', async () => {
    reference = await faultRun('reference');
  });

  it('SIGKILL of temporal-server mid-training, restarted after 15 s', async () => {
    sameAsReference(
      await faultRun('server-kill', async ({ worker }) => {
        clusterCtl.killServer();
        await sleep(15_000);
        assert.equal(worker().child.exitCode, null, 'the worker survives a server outage');
        clusterCtl.startServer();
        return 'temporal-server SIGKILL, down 15 s';
      }),
    );
  });

  it('PostgreSQL stopped for 30 s mid-grid', async () => {
    sameAsReference(
      await faultRun('pg-stop', async ({ worker }) => {
        clusterCtl.stopPostgres();
        await sleep(30_000);
        assert.equal(worker().child.exitCode, null, 'the worker survives a database outage');
        clusterCtl.startPostgres();
        return 'PostgreSQL stopped 30 s';
      }),
    );
  });

  it('SIGKILL of the training worker; a new worker takes over', async () => {
    sameAsReference(
      await faultRun('worker-kill', async ({ worker, replaceWorker }) => {
        const w = worker();
        w.child.kill('SIGKILL');
        await w.exited;
        replaceWorker();
        return 'worker SIGKILL, replaced at once';
      }),
    );
  });

  it('SIGSTOP of the worker for 60 s (cannot reach the frontend), then SIGCONT', async () => {
    sameAsReference(
      await faultRun('worker-stop', async ({ worker }) => {
        const w = worker();
        w.child.kill('SIGSTOP');
        await sleep(60_000);
        w.child.kill('SIGCONT');
        return 'worker SIGSTOP 60 s, SIGCONT';
      }),
    );
  });
});
