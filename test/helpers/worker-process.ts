/** A worker as a separate OS process (as on another machine), so tests can really kill it. */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { TASK_QUEUES } from '../../src/common/constants';
import { REPO } from './fixtures';

export interface WorkerProcess {
  child: ChildProcess;
  log: string;
  exited: Promise<number | null>;
  /** The worker's log so far. */
  output(): string;
}

/**
 * `logLevel` 'debug' adds a `trainer step` line per training step (activities/train.ts): what
 * the fault tests count lost steps from (heartbeats are throttled to 5 s). `env` is added to the
 * inherited environment (PEFTGRID_DEPLOYMENT, a namespace …).
 */
export function startWorkerProcess(
  address: string,
  dataDir: string,
  name: string,
  queues = 'cpu,gpu',
  logLevel = 'info',
  env: Record<string, string> = {},
): WorkerProcess {
  mkdirSync(dataDir, { recursive: true });
  const log = join(dataDir, `${name}.log`);
  const fd = openSync(log, 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'workers', 'main.ts'), '--queues', queues], {
    cwd: REPO,
    stdio: ['ignore', fd, fd],
    env: {
      ...process.env,
      ...env,
      TEMPORAL_ADDRESS: address,
      PEFTGRID_DATA_DIR: dataDir,
      PEFTGRID_LOG_LEVEL: logLevel,
    },
  });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, log, exited, output: () => readFileSync(log, 'utf8') };
}

/** Waits until some worker polls both task queues (of `namespace`: the client's by default). */
export async function waitForPollers(
  client: Client,
  timeoutMs = 60_000,
  namespace = client.options.namespace,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const counts = await Promise.all([
      client.workflowService.describeTaskQueue({
        namespace,
        taskQueue: { name: TASK_QUEUES.cpu },
        taskQueueType: 1,
      }),
      client.workflowService.describeTaskQueue({
        namespace,
        taskQueue: { name: TASK_QUEUES.gpu },
        taskQueueType: 2,
      }),
    ]);
    if (counts.every((c) => (c.pollers?.length ?? 0) > 0)) return;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error('no worker polled both task queues in time');
}

/** The heartbeat details of a workflow's first pending activity, decoded (JSON payloads). */
export async function pendingHeartbeat<T>(
  client: Client,
  workflowId: string,
): Promise<{ attempt: number; details: T } | null> {
  try {
    const desc = await client.workflow.getHandle(workflowId).describe();
    const act = desc.raw.pendingActivities?.[0];
    const data = act?.heartbeatDetails?.payloads?.[0]?.data;
    if (!act || !data) return null;
    return { attempt: act.attempt ?? 1, details: JSON.parse(Buffer.from(data).toString('utf8')) as T };
  } catch {
    return null;
  }
}

/**
 * The trainer's real last step as a worker logged it (`trainer step`, debug level), optionally only
 * lines logged before `beforeMs`; 0 when it logged none. Steps lost = this − the resumed step.
 */
export function lastTrainerStep(output: string, beforeMs = Infinity): number {
  const steps = logRecords(output, 'trainer step').filter((r) => Number(r.time) < beforeMs);
  return steps.length ? Number(steps.at(-1)!.step) : 0;
}

/** The pino log records of a worker's output whose `msg` is `msg`, parsed, in order. */
export function logRecords(output: string, msg: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        const rec = JSON.parse(l) as Record<string, unknown>;
        return rec.msg === msg ? [rec] : [];
      } catch {
        return [];
      }
    });
}
