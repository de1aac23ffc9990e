/**
 * trainModel: the durable training protocol (ARCHITECTURE.md). The trainer checkpoints locally;
 * this activity uploads each checkpoint (files first, manifest last), heartbeats
 * `{step, checkpointKey}`, and on a retry — on any worker — resumes from the newest committed
 * checkpoint that verifies, falling back to older ones when the newest is corrupt.
 */
import { writeFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { activityInfo, ApplicationFailure, Context } from '@temporalio/activity';
import { runLogger } from '../src/common/logger';
import {
  DEFAULT_RETENTION, getDirectory, joinKey, openStore, pruneCheckpoints, putDirectory, readManifest,
  type ObjectRef, type ObjectStore, type RetentionPolicy,
} from '../src/store';
import type { MethodSpec } from '../src/config/plan';
import type { TrainingConfig } from '../src/config/schema';
import { EXIT_INVALID, EXIT_PREEMPTED, runTrainer, type TrainerEvent } from './trainer-process';
import { reportTrainingProgress } from '../workers/metrics';
import { localModelDir } from './model-source';
import { workDir } from './paths';

export interface TrainModelInput {
  storeUrl: string;
  runKey: string;
  modelPath: string;
  family: string;
  method: MethodSpec;
  training: TrainingConfig;
  trainData: ObjectRef;
  /** Which committed checkpoints survive (applied after each commit). @default keepLast 3, keepBest */
  retention?: RetentionPolicy;
}

export interface TrainModelResult {
  /** Store prefix of the final adapter (or full weights for `full`). */
  finalPrefix: string;
  steps: number;
  trainLoss: number;
  trainPerplexity: number;
  /** Mean training tokens/s over the steps this attempt ran (null when nothing ran). */
  tokensPerSec: number | null;
  /** Step this attempt resumed from (0 = fresh start); null when the run had already finished. */
  resumedFrom: number | null;
}

/** Heartbeat details: what a retry needs to resume without listing the store. */
export interface TrainHeartbeat {
  step: number;
  checkpointKey?: string;
  loss?: number;
  maxSteps: number;
  tokensPerSec?: number;
}

interface CheckpointMeta {
  step: number;
  loss?: number;
  runKey: string;
}

/**
 * How long one checkpoint upload keeps retrying while the store is unreachable before the attempt
 * gives up (and Temporal retries it on a fresh start from the last committed checkpoint). The S3
 * client already retries each request a few times within seconds; this covers outages of minutes
 * (a restarting object store, a network partition) without throwing away the running trainer.
 * Overridable for tests and operators: PEFTGRID_CHECKPOINT_RETRY_MS.
 */
const CHECKPOINT_RETRY_MS = 5 * 60_000;
/** Backoff between upload tries: short enough to notice a returning store within seconds. */
const CHECKPOINT_BACKOFF_MS = [1000, 2000, 4000, 5000];

function checkpointRetryMs(): number {
  const v = Number(process.env.PEFTGRID_CHECKPOINT_RETRY_MS);
  return Number.isFinite(v) && v >= 0 ? v : CHECKPOINT_RETRY_MS;
}

export function checkpointsPrefix(runKey: string): string {
  return joinKey('runs', runKey, 'checkpoints');
}

function checkpointKey(runKey: string, step: number): string {
  return joinKey(checkpointsPrefix(runKey), `step-${step}`);
}

/** Steps of every committed checkpoint (manifest present), newest first. */
export async function committedCheckpoints(store: ObjectStore, runKey: string): Promise<number[]> {
  const objects = await store.list(checkpointsPrefix(runKey) + '/');
  const steps = objects
    .map((o) => /\/step-(\d+)\/manifest\.json$/.exec(o.key)?.[1])
    .filter((s): s is string => s !== undefined)
    .map(Number);
  return [...new Set(steps)].sort((a, b) => b - a);
}

/**
 * Downloads the newest checkpoint that verifies. Candidates: the heartbeat's key first (cheap, no
 * listing), then every committed checkpoint newest first. Corrupt ones are logged and skipped.
 */
async function restoreCheckpoint(store: ObjectStore, runKey: string, localRoot: string, hinted: string | undefined, log: ReturnType<typeof runLogger>): Promise<{ step: number; dir: string } | null> {
  const listed = (await committedCheckpoints(store, runKey)).map((s) => checkpointKey(runKey, s));
  const candidates = [...new Set([...(hinted ? [hinted] : []), ...listed])];
  for (const prefix of candidates) {
    const dir = join(localRoot, prefix.split('/').pop() as string);
    const t0 = Date.now();
    try {
      const manifest = await getDirectory<CheckpointMeta>(store, prefix, dir);
      // downloadMs/bytes feed the recovery benchmark (bench/recovery.ts) and operators' dashboards.
      // (Field order matters to log parsers: `"step":N,"msg":…` stays last, as before.)
      log.info({ checkpoint: prefix, downloadMs: Date.now() - t0, bytes: manifest.bytes, step: manifest.meta.step }, 'resuming from checkpoint');
      return { step: manifest.meta.step, dir };
    } catch (err) {
      log.warn({ checkpoint: prefix, err: (err as Error).message }, 'checkpoint failed verification; falling back to the previous one');
      await rm(dir, { recursive: true, force: true });
    }
  }
  return null;
}

export async function trainModel(input: TrainModelInput): Promise<TrainModelResult> {
  const ctx = Context.current();
  const info = activityInfo();
  const log = runLogger({ runKey: input.runKey, activity: 'trainModel', attempt: info.attempt });
  const store = openStore(input.storeUrl);
  const retention = input.retention ?? DEFAULT_RETENTION;
  // When this attempt was scheduled vs started: after a lost worker, the gap between the kill and
  // `scheduledAt` is the heartbeat-timeout detection time (bench/recovery.ts reads it).
  log.info({ scheduledAt: info.currentAttemptScheduledTimestampMs, startedAt: Date.now() }, 'train attempt started');
  const finalPrefix = joinKey('runs', input.runKey, 'final');

  // Idempotent: a run whose final adapter is committed is done, whoever finished it.
  const finished = await readManifest<{ steps: number; trainLoss: number; trainPerplexity: number }>(store, finalPrefix);
  if (finished) {
    log.info('final adapter already committed; nothing to train');
    return { finalPrefix, steps: finished.meta.steps, trainLoss: finished.meta.trainLoss, trainPerplexity: finished.meta.trainPerplexity, tokensPerSec: null, resumedFrom: null };
  }

  const root = workDir(input.runKey, `attempt-${info.attempt}`);
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  const dataPath = join(root, 'train.pgtok');
  await store.getFile(input.trainData.key, dataPath, input.trainData.sha256);

  const hb = info.heartbeatDetails as TrainHeartbeat | undefined;
  const resume = await restoreCheckpoint(store, input.runKey, join(root, 'restore'), hb?.checkpointKey, log);
  let state: TrainHeartbeat = { step: resume?.step ?? 0, checkpointKey: resume ? checkpointKey(input.runKey, resume.step) : undefined, maxSteps: input.training.maxSteps };
  ctx.heartbeat(state);

  const spec = {
    runKey: input.runKey,
    modelPath: await localModelDir(input.modelPath),
    family: input.family,
    method: input.method,
    trainData: dataPath,
    outputDir: join(root, 'out'),
    training: input.training,
    device: input.training.device,
  };
  const specPath = join(root, 'spec.json');
  await writeFile(specPath, JSON.stringify(spec, null, 1));

  /**
   * Uploads one checkpoint, retrying while the store is down. Events are handled in order, so while
   * this waits no step event heartbeats: it heartbeats itself, or Temporal would declare the worker
   * dead during a store outage. Returns false when it gave up.
   */
  const commitCheckpoint = async (step: number, dir: string, loss: number | undefined): Promise<boolean> => {
    const prefix = checkpointKey(input.runKey, step);
    const deadline = Date.now() + checkpointRetryMs();
    for (let attempt = 1; ; attempt++) {
      const t0 = Date.now();
      try {
        // Re-uploading after a failure is safe: files are overwritten with the same bytes and the
        // manifest, the commit point, is only written once every file is up.
        const manifest = await putDirectory<CheckpointMeta>(store, prefix, dir, { step, loss, runKey: input.runKey });
        state = { ...state, checkpointKey: prefix };
        ctx.heartbeat(state);
        log.info({ uploadMs: Date.now() - t0, bytes: manifest.bytes, tries: attempt, step, checkpoint: prefix }, 'checkpoint committed');
        return true;
      } catch (err) {
        const wait = CHECKPOINT_BACKOFF_MS[Math.min(attempt, CHECKPOINT_BACKOFF_MS.length) - 1] as number;
        if (Date.now() + wait > deadline || ctx.cancellationSignal.aborted) {
          log.error({ step, checkpoint: prefix, tries: attempt, err: (err as Error).message }, 'checkpoint upload failed; giving up on this attempt');
          return false;
        }
        log.warn({ step, checkpoint: prefix, tries: attempt, retryInMs: wait, err: (err as Error).message }, 'checkpoint upload failed; retrying');
        ctx.heartbeat(state);
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  };

  const applyRetention = async () => {
    try {
      const pruned = await pruneCheckpoints(store, checkpointsPrefix(input.runKey), retention);
      if (pruned.deleted.length) log.info({ deleted: pruned.deleted, kept: pruned.kept, best: pruned.best }, 'old checkpoints deleted');
    } catch (err) {
      // Retention is housekeeping: a failure only leaves extra checkpoints until the next commit.
      log.warn({ err: (err as Error).message }, 'checkpoint retention failed; will retry after the next commit');
    }
  };

  // Aborted by activity cancellation, or by this attempt giving up on uploads: either way the
  // trainer is stopped (SIGTERM, then SIGKILL) instead of training on with nowhere to commit.
  const stop = new AbortController();
  const forwardCancel = () => stop.abort(ctx.cancellationSignal.reason);
  if (ctx.cancellationSignal.aborted) forwardCancel();
  else ctx.cancellationSignal.addEventListener('abort', forwardCancel, { once: true });
  let uploadFailedAt: number | undefined;

  let done: TrainerEvent | undefined;
  // Training-loop throughput of this attempt: Σ tokens / time from its loop start to its last step,
  // so local checkpoint saves and any stall of the trainer on uploads count against it.
  const loop = { tokens: 0, elapsedMs: 0 };
  const spawnedAt = Date.now();
  let firstStepLogged = false;
  const onEvent = async (ev: TrainerEvent) => {
    switch (ev.event) {
      case 'start':
        // Spawn to `start` = Python start-up + model load + checkpoint restore (bench/recovery.ts).
        log.info({ step: Number(ev.step), loadMs: Date.now() - spawnedAt, device: ev.device }, 'trainer started');
        break;
      case 'step':
        state = { ...state, step: Number(ev.step), loss: Number(ev.loss), tokensPerSec: Number(ev.tokensPerSec) };
        loop.tokens += Number(ev.tokens ?? 0);
        loop.elapsedMs = Number(ev.elapsedMs ?? 0);
        ctx.heartbeat(state);
        reportTrainingProgress({ runKey: input.runKey, step: state.step, loss: state.loss, tokensPerSec: state.tokensPerSec, maxSteps: input.training.maxSteps });
        if (!firstStepLogged) {
          firstStepLogged = true;
          log.info({ step: state.step, sinceSpawnMs: Date.now() - spawnedAt, stepMs: ev.stepMs }, 'first training step of this attempt');
        }
        break;
      case 'checkpoint': {
        const step = Number(ev.step);
        // Once an upload gave up, later checkpoints are not attempted: the trainer is being stopped
        // and the retry resumes from the last committed one.
        if (uploadFailedAt !== undefined) break;
        if (await commitCheckpoint(step, String(ev.dir), ev.loss as number | undefined)) {
          await applyRetention();
        } else {
          uploadFailedAt = step;
          stop.abort(new Error(`checkpoint upload of step ${step} failed`));
        }
        break;
      }
      case 'done':
        done = ev;
        break;
    }
  };

  const args = ['train', '--spec', specPath, ...(resume ? ['--resume-from', resume.dir] : [])];
  const result = await runTrainer({ args, onEvent, signal: stop.signal, log, heartbeat: () => ctx.heartbeat(state) });
  ctx.cancellationSignal.removeEventListener('abort', forwardCancel);

  if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason ?? new Error('cancelled');
  if (uploadFailedAt !== undefined) {
    // Retryable: the store may be back by the next attempt, which resumes from the last commit.
    throw ApplicationFailure.retryable(`checkpoint upload of step ${uploadFailedAt} kept failing for ${checkpointRetryMs()} ms; last committed ${state.checkpointKey ?? 'none'}`, 'CheckpointUploadFailed');
  }
  if (result.code === EXIT_INVALID) {
    throw ApplicationFailure.nonRetryable(result.error?.message ?? `trainer rejected the spec: ${result.stderrTail.slice(-500)}`, result.error?.type ?? 'InvalidSpec');
  }
  if (result.code === EXIT_PREEMPTED) {
    // The checkpoint event came before the exit, so the retry resumes with zero steps lost.
    throw ApplicationFailure.retryable(`trainer preempted at step ${state.step}; checkpoint ${state.checkpointKey ?? 'none'}`, 'Preempted');
  }
  if (result.code !== 0 || !done) {
    throw ApplicationFailure.retryable(`trainer exited with ${result.code ?? result.signal}: ${result.error?.message ?? result.stderrTail.slice(-800)}`, result.error?.type ?? 'TrainerCrashed');
  }

  const meta = { steps: Number(done.step), trainLoss: Number(done.trainLoss), trainPerplexity: Number(done.trainPerplexity) };
  await putDirectory(store, finalPrefix, String(done.finalDir), meta);
  log.info({ ...meta, finalPrefix }, 'training finished; final adapter committed');
  await rm(root, { recursive: true, force: true });
  const tokensPerSec = loop.tokens > 0 && loop.elapsedMs > 0 ? loop.tokens / (loop.elapsedMs / 1000) : null;
  return { finalPrefix, ...meta, tokensPerSec, resumedFrom: resume?.step ?? 0 };
}
