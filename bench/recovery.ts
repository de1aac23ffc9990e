/**
 * Recovery time after losing the training worker: a real dev server, real worker processes, the
 * worker running training SIGKILLed mid-run, a fresh worker on an empty disk started at once.
 * The recovery is split from the new worker's own log lines (activities/train.ts):
 *   detection   kill → retry scheduled (`train attempt started`.scheduledAt): the heartbeat timeout
 *               plus the retry backoff; Temporal only retries once the dead worker's heartbeat lapses
 *   pickup      retry scheduled → attempt running on the new worker
 *   setup       attempt start → checkpoint restore begins (training data download, listing)
 *   download    checkpoint download + sha256 verification (`resuming from checkpoint`.downloadMs)
 *   model load  trainer spawn → its `start` event: Python start-up, model + checkpoint load
 *   first step  `start` → first resumed step
 *
 *   node --import tsx bench/recovery.ts [--store s3|file] [--model tiny|smollm2] [--steps 30]
 *
 * --store s3 (default) runs SeaweedFS on loopback; --model smollm2 trains LoRA on SmolLM2-135M
 * (materialized by `npm run setup`) instead of the tiny random Llama, for a realistic model load.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runWorkflowId, TASK_QUEUES, TIMEOUTS } from '../src/common/constants';
import { planRuns } from '../src/config/plan';
import type { GridResult } from '../src/contracts';
import { scratchDir, SMOLLM2, tinyModel } from '../test/helpers/fixtures';
import { localTemporal, tinyLoraGrid } from '../test/helpers/tiny-grid';
import { startS3Server, type S3Server } from '../test/helpers/s3-server';
import {
  lastTrainerStep,
  pendingHeartbeat,
  startWorkerProcess,
  waitForPollers,
  type WorkerProcess,
} from '../test/helpers/worker-process';

interface LogLine {
  time: number;
  msg: string;
  [k: string]: unknown;
}

function logLines(path: string): LogLine[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

function find(lines: LogLine[], msg: string): LogLine {
  const l = lines.find((x) => x.msg === msg);
  if (!l) throw new Error(`the new worker never logged "${msg}"`);
  return l;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      store: { type: 'string', default: 's3' },
      model: { type: 'string', default: 'tiny' },
      steps: { type: 'string', default: '30' },
    },
  });
  if (values.store !== 's3' && values.store !== 'file')
    throw new TypeError(`--store: got ${values.store}, expected s3 or file`);
  if (values.model !== 'tiny' && values.model !== 'smollm2')
    throw new TypeError(`--model: got ${values.model}, expected tiny or smollm2`);
  const maxSteps = Number(values.steps);
  const every = 5;
  const dir = scratchDir('bench-recovery');
  let s3: S3Server | undefined;
  let store = `file://${join(dir, 'store')}`;
  if (values.store === 's3') {
    s3 = await startS3Server(join(dir, 'weed'), 29700);
    Object.assign(process.env, s3.env);
    store = `s3://${s3.bucket}/bench-recovery`;
  }
  const env = await localTemporal();
  const workers: WorkerProcess[] = [];
  try {
    const model =
      values.model === 'tiny'
        ? { name: 'tiny-llama', path: tinyModel('llama'), family: 'llama' as const }
        : { name: 'smollm2-135m', path: SMOLLM2, family: 'template' as const };
    // The fault tests' grid (test/helpers/tiny-grid.ts) with this bench's model, rank and CPU pinning.
    const grid = tinyLoraGrid({
      name: 'bench-recovery',
      store,
      maxSteps,
      checkpointEverySteps: every,
      r: 8,
      alpha: 16,
      model,
      device: 'cpu',
    });
    const runs = planRuns(grid);
    const runKey = runs[0]!.runKey;
    const address = env.connection.options.address;
    // debug: worker a logs every trainer step, so steps lost count from the trainer's real last one.
    const a = startWorkerProcess(address, join(dir, 'worker-a'), 'a', 'cpu,gpu', 'debug');
    workers.push(a);
    await waitForPollers(env.client);
    const handle = await env.client.workflow.start('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: 'bench-recovery',
      args: [{ gridId: 'bench-recovery', grid, runs }],
    });
    for (;;) {
      const hb = await pendingHeartbeat<{ step?: number; checkpointKey?: string }>(env.client, runWorkflowId(runKey));
      if (hb?.details.checkpointKey && (hb.details.step ?? 0) >= 2 * every + 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    a.child.kill('SIGKILL');
    const killedAt = Date.now();
    await a.exited;
    // The trainer's last reported step (the heartbeat the server holds can be 5 s older).
    const killStep = lastTrainerStep(a.output());
    const b = startWorkerProcess(address, join(dir, 'worker-b'), 'b');
    const workerStartAt = Date.now();
    workers.push(b);
    const result = (await handle.result()) as GridResult;
    if (result.runs[0]!.status !== 'completed') throw new Error(`run failed: ${result.runs[0]!.error}`);

    const lines = logLines(b.log);
    const started = find(lines, 'worker started');
    const attempt = find(lines, 'train attempt started');
    const resumed = find(lines, 'resuming from checkpoint');
    const trainer = find(lines, 'trainer started');
    const first = find(lines, 'first training step of this attempt');
    const scheduledAt = Number(attempt.scheduledAt);
    const downloadMs = Number(resumed.downloadMs);
    const rows: [string, number][] = [
      ['detection (kill → retry scheduled)', scheduledAt - killedAt],
      ['pickup (scheduled → attempt running)', attempt.time - scheduledAt],
      ['setup (data download, listing)', resumed.time - downloadMs - attempt.time],
      [`checkpoint download + verify (${(Number(resumed.bytes) / 1e6).toFixed(2)} MB)`, downloadMs],
      ['model load (spawn → trainer start)', Number(trainer.loadMs)],
      ['first resumed step', first.time - trainer.time],
    ];
    const total = first.time - killedAt;
    console.log(
      `${values.model} LoRA r=8, store ${values.store}, killed at trainer step ${killStep}, resumed from step ${String(resumed.step)} ` +
        `(${killStep - Number(resumed.step)} steps lost, counted from the trainer's last step); heartbeat timeout ${TIMEOUTS.train.heartbeat / 1000} s`,
    );
    console.log('| phase | seconds | share |');
    console.log('| --- | ---: | ---: |');
    for (const [name, ms] of rows)
      console.log(`| ${name} | ${(ms / 1000).toFixed(2)} | ${((100 * ms) / total).toFixed(0)} % |`);
    console.log(`| **kill → first resumed step** | **${(total / 1000).toFixed(2)}** | 100 % |`);
    console.log(`| new worker start → first resumed step | ${((first.time - workerStartAt) / 1000).toFixed(2)} | |`);
    console.log(`| new worker start → polling | ${((started.time - workerStartAt) / 1000).toFixed(2)} | |`);
  } finally {
    for (const w of workers) w.child.kill('SIGKILL');
    await env.teardown();
    await s3?.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
