/**
 * trainModel: the durable training protocol (ARCHITECTURE.md). The trainer checkpoints locally;
 * this activity uploads each checkpoint (files first, manifest last), heartbeats
 * `{step, checkpointKey}`, and on a retry — on any worker — resumes from the newest committed
 * checkpoint that verifies, falling back to older ones when the newest is corrupt or the trainer
 * refuses it (activities/checkpoints.ts has the store layout, activities/resume.ts the fallback).
 */
import { writeFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { activityInfo, ApplicationFailure, Context } from '@temporalio/activity';
import { checkpointRetryMsEnv } from '../src/common/env';
import { runLogger } from '../src/common/logger';
import {
  DEFAULT_RETENTION, joinKey, openStore, pruneCheckpoints, putDirectory, readManifest,
} from '../src/store';
import { attemptStage, checkpointKey, checkpointsPrefix, commitCheckpoint } from './checkpoints';
import { runWithCheckpointFallback } from './resume';
import { codeVersion } from './results';
import { EXIT_CHECKPOINT_REJECTED, EXIT_INVALID, EXIT_PREEMPTED, runTrainer, type TrainerEvent } from './trainer-process';
import { reportTrainingProgress } from '../src/common/progress';
import { localModelDir } from './model-source';
import { workDir } from './paths';
import type { TrainModelInput, TrainModelResult, TrainHeartbeat } from '../src/contracts';
// Contracts live in src/contracts; re-exported so callers can keep importing them from here.
export type { TrainModelInput, TrainModelResult, TrainHeartbeat } from '../src/contracts';

// Tests and the benches reach the checkpoint helpers through this module.
export { checkpointsPrefix, committedCheckpoints } from './checkpoints';

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
  return checkpointRetryMsEnv() ?? CHECKPOINT_RETRY_MS;
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
  // This attempt's own sub-prefix in every checkpoint it commits: an older attempt that timed out
  // but still runs (a zombie) writes into its own stage and can never clobber these files.
  const stage = attemptStage(info.attempt);
  let state: TrainHeartbeat = { step: 0, maxSteps: input.training.maxSteps };

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
  const uploadCheckpoint = async (step: number, dir: string, loss: number | undefined): Promise<boolean> => {
    const prefix = checkpointKey(input.runKey, step);
    const deadline = Date.now() + checkpointRetryMs();
    for (let attempt = 1; ; attempt++) {
      const t0 = Date.now();
      try {
        // Re-uploading after a failure is safe: the files go to this attempt's stage again and the
        // manifest, the commit point, is only written once every file is up.
        const outcome = await commitCheckpoint(store, prefix, dir, { step, loss, runKey: input.runKey }, stage);
        state = { ...state, checkpointKey: prefix };
        ctx.heartbeat(state);
        if (outcome.status === 'skipped') {
          log.info({ step, checkpoint: prefix, committedStage: outcome.manifest.stage }, 'checkpoint already committed; not rewritten');
        } else {
          log.info({ uploadMs: Date.now() - t0, bytes: outcome.manifest.bytes, tries: attempt, stage, replacedRejected: outcome.replaced, step, checkpoint: prefix }, 'checkpoint committed');
        }
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
  let spawnedAt = Date.now();
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
        // The trainer's real last step, as the worker saw it (heartbeats are throttled to 5 s):
        // the fault tests and bench/recovery.ts count lost steps from this line.
        log.debug({ loss: state.loss, step: state.step }, 'trainer step');
        ctx.heartbeat(state);
        reportTrainingProgress({ runKey: input.runKey, step: state.step, loss: state.loss, tokensPerSec: state.tokensPerSec, maxSteps: input.training.maxSteps });
        if (!firstStepLogged) {
          firstStepLogged = true;
          log.info({ step: state.step, sinceSpawnMs: Date.now() - spawnedAt, stepMs: ev.stepMs }, 'first training step of this attempt');
        }
        break;
      case 'preempting':
        // signalStep: the last step completed when the signal arrived; every step up to it must
        // be in the checkpoint that follows (the "zero steps lost on SIGTERM" promise).
        log.info({ signal: ev.signal, signalStep: Number(ev.signalStep), step: Number(ev.step) }, 'trainer received SIGTERM');
        break;
      case 'checkpoint': {
        const step = Number(ev.step);
        // Once an upload gave up, later checkpoints are not attempted: the trainer is being stopped
        // and the retry resumes from the last committed one.
        if (uploadFailedAt !== undefined) break;
        if (await uploadCheckpoint(step, String(ev.dir), ev.loss as number | undefined)) {
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

  const { result, resume, rejected } = await runWithCheckpointFallback({
    store, runKey: input.runKey, localRoot: join(root, 'restore'), hinted: hb?.checkpointKey, codeVersion: codeVersion(), log,
    run: (from) => {
      state = { ...state, step: from?.step ?? 0, checkpointKey: from?.prefix };
      ctx.heartbeat(state);
      spawnedAt = Date.now();
      const args = ['train', '--spec', specPath, ...(from ? ['--resume-from', from.dir] : [])];
      return runTrainer({ args, onEvent, signal: stop.signal, log, heartbeat: () => ctx.heartbeat(state) });
    },
  });
  ctx.cancellationSignal.removeEventListener('abort', forwardCancel);

  if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason ?? new Error('cancelled');
  if (uploadFailedAt !== undefined) {
    // Retryable: the store may be back by the next attempt, which resumes from the last commit.
    throw ApplicationFailure.retryable(`checkpoint upload of step ${uploadFailedAt} kept failing for ${checkpointRetryMs()} ms; last committed ${state.checkpointKey ?? 'none'}`, 'CheckpointUploadFailed');
  }
  if (result.code === EXIT_CHECKPOINT_REJECTED) {
    // Only reachable without --resume-from (the fallback loop handles every real rejection): the
    // trainer refusing a fresh start is its own bug, and a retry would repeat it.
    throw ApplicationFailure.nonRetryable(`trainer reported CheckpointRejected on a fresh start: ${result.error?.message ?? result.stderrTail.slice(-500)}`, 'CheckpointRejected');
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
  // Another attempt (one that timed out but ran on) may have committed the final adapter
  // meanwhile: what is committed is never rewritten, so this attempt's copy is dropped.
  const already = await readManifest<typeof meta>(store, finalPrefix);
  if (already) {
    log.info({ ...already.meta, finalPrefix }, 'final adapter committed by another attempt meanwhile; not rewritten');
  } else {
    await putDirectory(store, finalPrefix, String(done.finalDir), meta);
    log.info({ ...meta, finalPrefix, rejectedCheckpoints: rejected }, 'training finished; final adapter committed');
  }
  await rm(root, { recursive: true, force: true });
  const tokensPerSec = loop.tokens > 0 && loop.elapsedMs > 0 ? loop.tokens / (loop.elapsedMs / 1000) : null;
  return { finalPrefix, ...(already?.meta ?? meta), tokensPerSec, resumedFrom: resume?.step ?? 0 };
}
