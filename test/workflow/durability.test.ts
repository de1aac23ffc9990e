/**
 * Fault tests that really do the damage: the worker running training is SIGKILLed (its trainer
 * dies with it) or SIGTERMed mid-run, and a fresh worker with an empty disk — another machine —
 * finishes the run from the last committed checkpoint. The result must equal an uninterrupted run,
 * bit for bit (CPU: the trainer promises exact resume). Lost steps are counted from the trainer's
 * real last step (the worker's `trainer step` debug lines), not from a throttled heartbeat.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { TASK_QUEUES } from '../../src/common/constants';
import { planRuns } from '../../src/config/plan';
import type { GridResult } from '../../src/contracts';
import { scratchDir } from '../helpers/fixtures';
import {
  lastTrainerStep,
  logRecords,
  startWorkerProcess,
  waitForPollers,
  type WorkerProcess,
} from '../helpers/worker-process';
import { keysOf } from '../helpers/run-keys';
import { localTemporal, tinyLoraGrid } from '../helpers/tiny-grid';

const MAX_STEPS = 40;
const EVERY = 5;

describe('durable training under worker loss', { timeout: 20 * 60_000 }, () => {
  let env: TestWorkflowEnvironment;
  const workers: WorkerProcess[] = [];
  const dir = scratchDir('durability');

  before(async () => {
    env = await localTemporal();
  });
  after(async () => {
    for (const w of workers) w.child.kill('SIGKILL');
    await env?.teardown();
  });

  const address = () => env.connection.options.address;
  const grid = (store: string) =>
    tinyLoraGrid({
      name: 'durability',
      store: `file://${join(dir, store)}`,
      maxSteps: MAX_STEPS,
      checkpointEverySteps: EVERY,
    });

  async function startGrid(store: string, id: string) {
    const g = grid(store);
    const handle = await env.client.workflow.start('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: id,
      args: [{ gridId: id, grid: g, runs: planRuns(g) }],
    });
    return { handle };
  }

  // Waits on the worker's own log, not on the server's heartbeat details: heartbeats are throttled,
  // and a tiny run can reach its last step before the server sees step `atLeast` (CI 2026-12-04:
  // the SIGTERM landed after step 40 of 40). The log line arrives within milliseconds of the step.
  async function waitForStep(worker: WorkerProcess, atLeast: number): Promise<number> {
    for (;;) {
      const step = lastTrainerStep(worker.output());
      if (step >= atLeast && logRecords(worker.output(), 'checkpoint committed').length > 0) return step;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  // The final adapter lives under the run's training key (docs/contracts.md §3).
  const lossHistory = (store: string, trainingKey: string) =>
    (
      JSON.parse(readFileSync(join(dir, store, 'runs', trainingKey, 'final', 'training_log.json'), 'utf8')) as {
        losses: number[];
      }
    ).losses;

  let reference: number[] = [];

  it('an uninterrupted run (the reference)', async () => {
    const w = startWorkerProcess(address(), join(dir, 'ref-worker'), 'ref');
    workers.push(w);
    await waitForPollers(env.client);
    const { handle } = await startGrid('store-ref', 'durability-ref');
    const result = (await handle.result()) as GridResult;
    assert.equal(result.runs[0]!.status, 'completed', result.runs[0]!.error);
    reference = lossHistory('store-ref', keysOf(result.runs[0]!).trainingKey!);
    assert.equal(reference.length, MAX_STEPS);
    w.child.kill('SIGTERM');
    await w.exited;
  });

  it('SIGKILL of the worker mid-training: a new worker resumes, at most checkpointEverySteps lost, same result', async () => {
    const a = startWorkerProcess(address(), join(dir, 'kill-a'), 'a', 'cpu,gpu', 'debug');
    workers.push(a);
    await waitForPollers(env.client);
    const { handle } = await startGrid('store-kill', 'durability-kill');
    await waitForStep(a, 8 + Math.floor(Math.random() * 12));
    a.child.kill('SIGKILL');
    await a.exited;
    // The last step the trainer reported before its worker died (it dies with it: PDEATHSIG).
    const killStep = lastTrainerStep(a.output());
    assert.ok(killStep >= 8, `worker a logged its trainer's steps (last ${killStep})`);
    // The trainer must not outlive its worker (it would hold the GPU with nobody to upload).
    await new Promise((r) => setTimeout(r, 1000));
    const orphans = spawnSync('pgrep', ['-f', join(dir, 'kill-a')], { encoding: 'utf8' }).stdout.trim();
    assert.equal(orphans, '', `trainer processes survived the worker: ${orphans}`);
    const t0 = Date.now();
    const b = startWorkerProcess(address(), join(dir, 'kill-b'), 'b'); // empty disk: another machine
    workers.push(b);
    const result = (await handle.result()) as GridResult;
    assert.equal(result.runs[0]!.status, 'completed', result.runs[0]!.error);
    const resumed = Number(logRecords(b.output(), 'resuming from checkpoint')[0]?.step ?? NaN);
    assert.ok(Number.isFinite(resumed), `worker b resumed from a checkpoint:\n${b.output().slice(-2000)}`);
    assert.ok(
      killStep - resumed <= EVERY,
      `lost ${killStep - resumed} steps (killed at ${killStep}, resumed at ${resumed})`,
    );
    const losses = lossHistory('store-kill', keysOf(result.runs[0]!).trainingKey!);
    assert.equal(losses.length, MAX_STEPS);
    assert.deepEqual(losses, reference, "bit-exact resume: every loss equals the uninterrupted run's");
    console.log(
      `SIGKILL at step ${killStep}: resumed from ${resumed} (${killStep - resumed} steps lost), recovered in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
    );
    b.child.kill('SIGTERM');
    await b.exited;
  });

  it('SIGTERM of the worker: the trainer checkpoints before exit, zero steps lost', async () => {
    const a = startWorkerProcess(address(), join(dir, 'term-a'), 'a', 'cpu,gpu', 'debug');
    workers.push(a);
    await waitForPollers(env.client);
    const { handle } = await startGrid('store-term', 'durability-term');
    await waitForStep(a, 6);
    a.child.kill('SIGTERM');
    await a.exited;
    // The step at which the trainer itself received SIGTERM (recorded by its signal handler).
    const received = logRecords(a.output(), 'trainer received SIGTERM');
    assert.equal(received.length, 1, `worker a logged the trainer's SIGTERM at info:\n${a.output().slice(-2000)}`);
    const signalStep = Number(received[0]!.signalStep);
    assert.equal(received[0]!.signal, 'SIGTERM');
    const committed = Number(logRecords(a.output(), 'checkpoint committed').pop()?.step ?? NaN);
    assert.ok(
      committed >= signalStep,
      `the SIGTERM checkpoint (step ${committed}) holds every step up to the signal (${signalStep})`,
    );
    const lastStep = lastTrainerStep(a.output());
    assert.equal(committed, lastStep, `the checkpoint is of the trainer's last step (${lastStep})`);
    const b = startWorkerProcess(address(), join(dir, 'term-b'), 'b');
    workers.push(b);
    const result = (await handle.result()) as GridResult;
    assert.equal(result.runs[0]!.status, 'completed', result.runs[0]!.error);
    const resumed = Number(logRecords(b.output(), 'resuming from checkpoint')[0]?.step ?? NaN);
    assert.equal(resumed, committed, `resumed at ${resumed}, SIGTERM checkpoint at ${committed}`);
    assert.equal(lastStep - resumed, 0, 'zero steps lost');
    const losses = lossHistory('store-term', keysOf(result.runs[0]!).trainingKey!);
    assert.deepEqual(losses, reference, 'bit-exact resume');
    console.log(
      `SIGTERM received after step ${signalStep}: checkpoint of step ${committed}, resumed from ${resumed} (${lastStep - resumed} steps lost)`,
    );
    b.child.kill('SIGTERM');
    await b.exited;
  });
});
