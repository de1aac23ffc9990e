/**
 * Fault: the Temporal server itself dies mid-training (SIGKILL, no graceful shutdown) and comes
 * back on the same SQLite file. The server is started here as a plain process, not through
 * TestWorkflowEnvironment, so it can really be killed and restarted on the same ports and data.
 * Workers and the trainer keep running through the outage; the run must complete.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { runWorkflowId, SEARCH_ATTRIBUTES, TASK_QUEUES } from '../../src/common/constants';
import { planRuns } from '../../src/config/plan';
import type { GridResult } from '../../src/contracts';
import { scratchDir, TEMPORAL_BIN } from '../helpers/fixtures';
import {
  lastTrainerStep,
  logRecords,
  pendingHeartbeat,
  startWorkerProcess,
  waitForPollers,
  type WorkerProcess,
} from '../helpers/worker-process';
import { tinyLoraGrid } from '../helpers/tiny-grid';

// Long enough that training is still running when the server comes back (~0.5 s a step here).
const MAX_STEPS = 80;
const EVERY = 5;
const DOWN_MS = 15_000;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('Temporal server restart mid-run', { timeout: 10 * 60_000 }, () => {
  const dir = scratchDir('faults-temporal');
  const db = join(dir, 'temporal.sqlite');
  let server: ChildProcess | undefined;
  let worker: WorkerProcess | undefined;
  let connection: Connection | undefined;

  after(async () => {
    worker?.child.kill('SIGKILL');
    await connection?.close().catch(() => undefined);
    server?.kill('SIGKILL');
  });

  async function startServer(port: number, uiPort: number): Promise<void> {
    const log = openSync(join(dir, 'temporal.log'), 'a');
    server = spawn(
      TEMPORAL_BIN,
      [
        'server',
        'start-dev',
        '--ip',
        '127.0.0.1',
        '--port',
        String(port),
        '--ui-port',
        String(uiPort),
        '--headless',
        '--db-filename',
        db,
        '--log-level',
        'warn',
        ...Object.values(SEARCH_ATTRIBUTES).flatMap((n) => ['--search-attribute', `${n}=Keyword`]),
      ],
      { stdio: ['ignore', log, log] },
    );
    closeSync(log);
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const c = await Connection.connect({ address: `127.0.0.1:${port}`, connectTimeout: 1000 });
        await c.workflowService.getSystemInfo({});
        await c.close();
        return;
      } catch (err) {
        if (server.exitCode !== null || Date.now() > deadline)
          throw new Error(
            `temporal dev server did not come up: ${(err as Error).message}; see ${join(dir, 'temporal.log')}`,
          );
        await new Promise((r) => setTimeout(r, 300));
      }
    }
  }

  it('SIGKILL of the Temporal server for ~15 s, restarted on the same SQLite file: the run completes', async () => {
    const [port, uiPort] = [await freePort(), await freePort()];
    await startServer(port, uiPort);
    const address = `127.0.0.1:${port}`;
    connection = await Connection.connect({ address });
    const client = new Client({ connection });
    worker = startWorkerProcess(address, join(dir, 'worker'), 'w', 'cpu,gpu', 'debug');
    await waitForPollers(client);

    const grid = tinyLoraGrid({
      name: 'faults-temporal',
      store: `file://${join(dir, 'store')}`,
      maxSteps: MAX_STEPS,
      checkpointEverySteps: EVERY,
    });
    const runs = planRuns(grid);
    const runKey = runs[0]!.runKey;
    const gridId = 'faults-temporal-restart';
    await client.workflow.start('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: gridId,
      args: [{ gridId, grid, runs }],
    });

    let before = 0;
    while (before < 8) {
      before = (await pendingHeartbeat<{ step?: number }>(client, runWorkflowId(runKey)))?.details.step ?? 0;
      await new Promise((r) => setTimeout(r, 200));
    }
    const s = server!;
    const gone = new Promise((r) => s.once('exit', r));
    s.kill('SIGKILL');
    await gone;
    const killedAt = Date.now();
    await new Promise((r) => setTimeout(r, DOWN_MS));
    assert.equal(worker.child.exitCode, null, 'the worker survives a server outage');
    await startServer(port, uiPort);
    const restartedAt = Date.now();

    // Recovered = the server again shows training progress beyond the step before the kill.
    let recoveredAt = 0;
    let after = 0;
    while (!recoveredAt) {
      const hb = await pendingHeartbeat<{ step?: number }>(client, runWorkflowId(runKey));
      if (hb?.details.step !== undefined && hb.details.step > before) {
        recoveredAt = Date.now();
        after = hb.details.step;
      } else if (!hb && (await client.workflow.getHandle(runWorkflowId(runKey)).describe()).status.name !== 'RUNNING') {
        recoveredAt = Date.now(); // training finished during the outage; its completion is the progress
      }
      if (Date.now() - restartedAt > 180_000) throw new Error('no progress within 3 min of the restart');
      await new Promise((r) => setTimeout(r, 200));
    }

    const result = (await client.workflow.getHandle(gridId).result()) as GridResult;
    assert.equal(result.runs[0]!.status, 'completed', result.runs[0]!.error);
    const log = worker.output();
    const attempts = logRecords(log, 'train attempt started').map((r) => Number(r.attempt));
    const resumed = logRecords(log, 'resuming from checkpoint')[0];
    // Steps lost: none if the one attempt survived; else the trainer's real last step before the
    // new attempt resumed (its `trainer step` lines, not the heartbeat) minus the resume point.
    const lost = resumed ? lastTrainerStep(log, Number(resumed.time)) - Number(resumed.step) : 0;
    console.log(
      `FAULT temporal-server SIGKILL ${DOWN_MS / 1000}s at step ${before}: completed=y, steps lost=${lost}, ` +
        `train attempts=${Math.max(...attempts)}, time to recover=${((recoveredAt - restartedAt) / 1000).toFixed(1)} s after restart ` +
        `(${((recoveredAt - killedAt) / 1000).toFixed(1)} s after kill; ${after ? `heartbeat at step ${after}` : 'training had finished during the outage'})`,
    );
    worker.child.kill('SIGTERM');
    await worker.exited;
  });
});
