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
import type { Logger } from 'pino';
import { DEFAULT_RETENTION, joinKey, openStore, putDirectory, readManifest, type ObjectStore } from '../src/store';
import { FailureType, TRAINER_EXIT } from '../src/contracts/failures';
import type { TrainerEvent } from '../src/contracts/trainer-events';
import { attemptStage } from './checkpoints';
import { applyRetention, checkpointRetryMs, uploadCheckpoint } from './checkpoint-upload';
import { failure } from './failure';
import { runWithCheckpointFallback, type ResumeLoopResult } from './resume';
import { codeVersion } from './results';
import { runTrainer } from './trainer-process';
import {
  attemptResources,
  attemptTokensPerSec,
  initialTrainState,
  onCheckpointOutcome,
  onTrainerEvent,
  onTrainerSpawn,
  type TrainEffect,
  type TrainState,
  type Transition,
} from './train-events';
import { reportTrainingProgress } from '../src/common/progress';
import { StepMetricsLogger } from '../src/tracking/step-metrics';
import { RunLogBook } from './run-log';
import { localModelDir, revisionOpt } from './model-source';
import { workDir } from './paths';
import { activityHeartbeat, type ActivityHeartbeat } from './transfer-heartbeat';
import type { TrainModelInput, TrainModelResult, TrainHeartbeat, TrainResources } from '../src/contracts';
// Contracts live in src/contracts; re-exported so callers can keep importing them from here.
export type { TrainModelInput, TrainModelResult, TrainHeartbeat } from '../src/contracts';

// Tests and the benches reach the checkpoint helpers through this module.
export { checkpointsPrefix, committedCheckpoints } from './checkpoints';

/** The final adapter's manifest meta: what an idempotent re-run returns without training. */
type FinalMeta = { steps: number; trainLoss: number; trainPerplexity: number } & TrainResources;

/**
 * The attempt's heartbeats: transfer phases and bytes on top of `base()`, which is the previous
 * attempt's `{step, checkpointKey}` until this attempt starts its trainer (a retry that dies while
 * downloading must not erase the hint its successor resumes from), and the live state after.
 */
interface TrainBeats {
  hb: ActivityHeartbeat;
  /** Switches what every heartbeat carries besides the transfer (at the trainer's first start). */
  setBase(base: () => TrainHeartbeat): void;
}

function trainBeats(input: TrainModelInput): TrainBeats {
  const prev = activityInfo().heartbeatDetails as TrainHeartbeat | undefined;
  const carried: TrainHeartbeat = {
    step: prev?.step ?? 0,
    maxSteps: input.training.maxSteps,
    ...(prev?.checkpointKey ? { checkpointKey: prev.checkpointKey } : {}),
  };
  let base = (): TrainHeartbeat => carried;
  const hb = activityHeartbeat(Context.current(), { base: () => base() });
  return { hb, setBase: (next) => void (base = next) };
}

/**
 * What a durable trainer activity runs: trainModel (`trainer train`) and distillDraft
 * (`trainer distill`, activities/distill.ts) share everything else: checkpoints, resume, heartbeats.
 */
export interface TrainerJob {
  /** The trainer subcommand; it takes `--spec` and `--resume-from` and speaks the train protocol. */
  command: 'train' | 'distill';
  /** The activity's name in log bindings, and the log book's activity (`peftgrid logs`). */
  activity: string;
  logAs: string;
  /** Spec fields on top of the train spec, resolved on this worker (a model staged here, heartbeating). */
  extraSpec?: (hb: ActivityHeartbeat) => Promise<Record<string, unknown>>;
}

const TRAIN: TrainerJob = { command: 'train', activity: 'trainModel', logAs: 'train' };

export async function trainModel(input: TrainModelInput): Promise<TrainModelResult> {
  return runTrainerJob(input, TRAIN);
}

/** The durable training protocol for `job`: idempotent on a committed final, resumes from checkpoints. */
export async function runTrainerJob(input: TrainModelInput, job: TrainerJob): Promise<TrainModelResult> {
  const info = activityInfo();
  // From the first line: checking the store and fetching the model can take minutes.
  const beats = trainBeats(input);
  const store = openStore(input.storeUrl);
  const bindings = { runKey: input.runKey, activity: job.activity, attempt: info.attempt };
  // This attempt's log lines and the trainer's, for `peftgrid logs` (uploaded once training starts).
  const book = new RunLogBook({ store, key: input.runKey, activity: job.logAs, attempt: info.attempt, bindings });
  const log = book.log;
  // When this attempt was scheduled vs started: after a lost worker, the gap between the kill and
  // `scheduledAt` is the heartbeat-timeout detection time (bench/recovery.ts reads it).
  log.info({ scheduledAt: info.currentAttemptScheduledTimestampMs, startedAt: Date.now() }, 'train attempt started');
  const finalPrefix = joinKey('runs', input.runKey, 'final');

  // Idempotent: a run whose final adapter is committed is done, whoever finished it.
  const finished = await readManifest<FinalMeta>(store, finalPrefix);
  if (finished) {
    log.info('final adapter already committed; nothing to train');
    return { finalPrefix, ...pickMeta(finished.meta), tokensPerSec: null, resumedFrom: null };
  }
  book.start();
  try {
    return await trainAttempt(input, job, store, log, beats, book);
  } catch (err) {
    log.error({ err: (err as Error).message }, 'train attempt failed');
    throw err;
  } finally {
    await book.close();
  }
}

async function trainAttempt(
  input: TrainModelInput,
  job: TrainerJob,
  store: ObjectStore,
  log: Logger,
  beats: TrainBeats,
  book: RunLogBook,
): Promise<TrainModelResult> {
  const finalPrefix = joinKey('runs', input.runKey, 'final');
  const root = workDir(input.runKey, `attempt-${activityInfo().attempt}`);
  const specPath = await prepareAttempt(input, job, store, root, beats.hb);
  // Step metrics go to the tracker in the background; a dead tracker costs a warning, not the run.
  const tracker = input.tracking ? new StepMetricsLogger(input.tracking, log) : null;
  tracker?.start();
  let attempt: Awaited<ReturnType<typeof runAttempt>>;
  try {
    attempt = await runAttempt(input, job, store, root, specPath, log, beats, tracker, book);
  } finally {
    // Bounded: a worker shutting down (SIGTERM) still has its checkpoint upload and report to do.
    await tracker?.close(5000);
  }
  const { state, run } = attempt;
  const done = outcome(state, run);
  // null when no step ran (the trainer prints NaN as null): 0, as before this was typed.
  const meta = {
    steps: done.step,
    trainLoss: done.trainLoss ?? 0,
    trainPerplexity: done.trainPerplexity ?? 0,
    ...attemptResources(state),
  };
  const committed = await commitFinal(store, finalPrefix, done.finalDir, meta, run.rejected, log, beats.hb);
  await rm(root, { recursive: true, force: true });
  return { finalPrefix, ...committed, tokensPerSec: attemptTokensPerSec(state), resumedFrom: run.resume?.step ?? 0 };
}

const pickMeta = (m: FinalMeta): FinalMeta => ({
  steps: m.steps,
  trainLoss: m.trainLoss,
  trainPerplexity: m.trainPerplexity,
  // Absent in manifests committed before resources were measured.
  ...(m.peakMemoryBytes === undefined ? {} : { peakMemoryBytes: m.peakMemoryBytes }),
  ...(m.peakMemorySource === undefined ? {} : { peakMemorySource: m.peakMemorySource }),
  ...(m.mfu === undefined ? {} : { mfu: m.mfu }),
  ...(m.gradientCheckpointing === undefined ? {} : { gradientCheckpointing: m.gradientCheckpointing }),
});

/** A clean work directory with the training data and the trainer's spec; returns the spec's path. */
async function prepareAttempt(
  input: TrainModelInput,
  job: TrainerJob,
  store: ObjectStore,
  root: string,
  hb: ActivityHeartbeat,
): Promise<string> {
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  const dataPath = join(root, 'train.pgtok');
  await store.getFile(input.trainData.key, dataPath, input.trainData.sha256, hb.transfer('download-data'));
  const spec = {
    runKey: input.runKey,
    // hb keeps the previous attempt's checkpoint hint in the details while the model stages.
    modelPath: await localModelDir(input.modelPath, { ...revisionOpt(input.revision), heartbeat: hb.details }),
    family: input.family,
    method: input.method,
    trainData: dataPath,
    outputDir: join(root, 'out'),
    // Inputs recorded before gradientCheckpointing existed lack it: the schema's default.
    training: { gradientCheckpointing: 'auto', ...input.training },
    device: input.training.device,
    ...(await job.extraSpec?.(hb)),
  };
  const specPath = join(root, 'spec.json');
  await writeFile(specPath, JSON.stringify(spec, null, 1));
  return specPath;
}

/**
 * Runs the trainer from the newest usable checkpoint (falling back past rejected ones), feeding
 * each event through `onTrainerEvent` and executing its effects in order.
 */
async function runAttempt(
  input: TrainModelInput,
  job: TrainerJob,
  store: ObjectStore,
  root: string,
  specPath: string,
  log: Logger,
  beats: TrainBeats,
  tracker: StepMetricsLogger | null,
  book: RunLogBook,
): Promise<{ state: TrainState; run: ResumeLoopResult }> {
  const ctx = Context.current();
  const hb = activityInfo().heartbeatDetails as TrainHeartbeat | undefined;
  // This attempt's own sub-prefix in every checkpoint it commits: an older attempt that timed out
  // but still runs (a zombie) writes into its own stage and can never clobber these files.
  const stage = attemptStage(activityInfo().attempt);
  const retention = input.retention ?? DEFAULT_RETENTION;
  let state = initialTrainState(input.training.maxSteps, Date.now());
  const beat = () => ctx.heartbeat(state.heartbeat);

  // Aborted by activity cancellation, or by this attempt giving up on uploads: either way the
  // trainer is stopped (SIGTERM, then SIGKILL) instead of training on with nowhere to commit.
  const stop = new AbortController();
  const forwardCancel = () => stop.abort(ctx.cancellationSignal.reason);
  if (ctx.cancellationSignal.aborted) forwardCancel();
  else ctx.cancellationSignal.addEventListener('abort', forwardCancel, { once: true });

  const apply = async (t: Transition): Promise<void> => {
    state = t.state;
    for (const effect of t.effects) await execute(effect);
  };
  const execute = async (effect: TrainEffect): Promise<void> => {
    switch (effect.kind) {
      case 'heartbeat':
        return ctx.heartbeat(effect.details);
      case 'log':
        return log[effect.level](effect.fields, effect.msg);
      case 'reportProgress': {
        const { kind: _kind, ...progress } = effect;
        return reportTrainingProgress({ runKey: input.runKey, ...progress });
      }
      case 'commitCheckpoint': {
        const key = await uploadCheckpoint({
          store,
          runKey: input.runKey,
          stage,
          step: effect.step,
          dir: effect.dir,
          loss: effect.loss,
          log,
          heartbeat: beats.hb.beat,
          transfer: beats.hb.transfer('upload-checkpoint'),
          signal: ctx.cancellationSignal,
        });
        return apply(onCheckpointOutcome(state, effect.step, key));
      }
      case 'applyRetention':
        return applyRetention(store, input.runKey, retention, log);
      case 'stopTrainer':
        return stop.abort(new Error(effect.reason));
    }
  };

  const run = await runWithCheckpointFallback({
    store,
    runKey: input.runKey,
    localRoot: join(root, 'restore'),
    hinted: hb?.checkpointKey,
    codeVersion: codeVersion(),
    log,
    transfer: beats.hb.transfer('download-checkpoint'),
    run: async (from) => {
      // From here on heartbeats carry this attempt's own step and checkpoint.
      beats.setBase(() => state.heartbeat);
      await apply(onTrainerSpawn(state, from, Date.now()));
      const args = [job.command, '--spec', specPath, ...(from ? ['--resume-from', from.dir] : [])];
      const onEvent = (ev: TrainerEvent) => {
        if (ev.event === 'step') tracker?.observe(ev);
        return apply(onTrainerEvent(state, ev, Date.now()));
      };
      return runTrainer({
        args,
        onEvent,
        signal: stop.signal,
        log,
        heartbeat: beat,
        onStderrLine: (line) => book.trainer(line),
      });
    },
  });
  ctx.cancellationSignal.removeEventListener('abort', forwardCancel);
  return { state, run };
}

/** The attempt's `done` event, or the failure its exit means (the registry decides retryability). */
function outcome(state: TrainState, { result }: ResumeLoopResult): NonNullable<TrainState['done']> {
  const cancel = Context.current().cancellationSignal;
  const { step, checkpointKey } = state.heartbeat;
  if (cancel.aborted) throw cancel.reason ?? new Error('cancelled');
  if (state.uploadFailedAt !== undefined) {
    // Retryable: the store may be back by the next attempt, which resumes from the last commit.
    throw failure(
      FailureType.CheckpointUploadFailed,
      `checkpoint upload of step ${state.uploadFailedAt} kept failing for ${checkpointRetryMs()} ms; last committed ${checkpointKey ?? 'none'}`,
    );
  }
  if (result.code === TRAINER_EXIT.checkpointRejected) {
    // Only reachable without --resume-from (the fallback loop handles every real rejection): the
    // trainer refusing a fresh start is its own bug, and a retry would repeat it.
    throw failure(
      FailureType.CheckpointRejected,
      `trainer reported CheckpointRejected on a fresh start: ${result.error?.message ?? result.stderrTail.slice(-500)}`,
    );
  }
  if (result.code === TRAINER_EXIT.invalid) {
    // The trainer's own type (InvalidSpec, ModelNotFound, …); exit 2 means permanent whatever it is.
    throw ApplicationFailure.nonRetryable(
      result.error?.message ?? `trainer rejected the spec: ${result.stderrTail.slice(-500)}`,
      result.error?.type ?? FailureType.InvalidSpec,
    );
  }
  if (result.code === TRAINER_EXIT.preempted) {
    // The checkpoint event came before the exit, so the retry resumes with zero steps lost.
    throw failure(FailureType.Preempted, `trainer preempted at step ${step}; checkpoint ${checkpointKey ?? 'none'}`);
  }
  if (result.code !== TRAINER_EXIT.done || !state.done) {
    // Exit 1 or a signal: infrastructure. The type is the trainer's exception class when it said one.
    throw ApplicationFailure.retryable(
      `trainer exited with ${result.code ?? result.signal}: ${result.error?.message ?? result.stderrTail.slice(-800)}`,
      result.error?.type ?? FailureType.TrainerCrashed,
    );
  }
  return state.done;
}

/**
 * Another attempt (one that timed out but ran on) may have committed the final adapter meanwhile:
 * what is committed is never rewritten, so this attempt's copy is dropped. Returns the committed meta.
 */
async function commitFinal(
  store: ObjectStore,
  finalPrefix: string,
  finalDir: string,
  meta: FinalMeta,
  rejected: number[],
  log: Logger,
  hb: ActivityHeartbeat,
): Promise<FinalMeta> {
  const already = await readManifest<FinalMeta>(store, finalPrefix);
  if (already) {
    log.info({ ...already.meta, finalPrefix }, 'final adapter committed by another attempt meanwhile; not rewritten');
    return pickMeta(already.meta);
  }
  await putDirectory(store, finalPrefix, finalDir, meta, hb.transfer('upload-adapter'));
  log.info({ ...meta, finalPrefix, rejectedCheckpoints: rejected }, 'training finished; final adapter committed');
  return meta;
}
