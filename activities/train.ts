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
import { getDirectory, joinKey, openStore, putDirectory, readManifest, type ObjectRef, type ObjectStore } from '../src/store';
import type { MethodSpec } from '../src/config/plan';
import type { TrainingConfig } from '../src/config/schema';
import { EXIT_INVALID, EXIT_PREEMPTED, runTrainer, type TrainerEvent } from './trainer-process';
import { workDir } from './paths';

export interface TrainModelInput {
  storeUrl: string;
  runKey: string;
  modelPath: string;
  family: string;
  method: MethodSpec;
  training: TrainingConfig;
  trainData: ObjectRef;
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
    try {
      const manifest = await getDirectory<CheckpointMeta>(store, prefix, dir);
      log.info({ checkpoint: prefix, step: manifest.meta.step }, 'resuming from checkpoint');
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
    modelPath: input.modelPath,
    family: input.family,
    method: input.method,
    trainData: dataPath,
    outputDir: join(root, 'out'),
    training: input.training,
    device: input.training.device,
  };
  const specPath = join(root, 'spec.json');
  await writeFile(specPath, JSON.stringify(spec, null, 1));

  let done: TrainerEvent | undefined;
  const speeds: number[] = [];
  const onEvent = async (ev: TrainerEvent) => {
    switch (ev.event) {
      case 'step':
        state = { ...state, step: Number(ev.step), loss: Number(ev.loss), tokensPerSec: Number(ev.tokensPerSec) };
        speeds.push(Number(ev.tokensPerSec));
        ctx.heartbeat(state);
        break;
      case 'checkpoint': {
        const step = Number(ev.step);
        const prefix = checkpointKey(input.runKey, step);
        await putDirectory<CheckpointMeta>(store, prefix, String(ev.dir), { step, loss: ev.loss as number | undefined, runKey: input.runKey });
        state = { ...state, step, checkpointKey: prefix };
        ctx.heartbeat(state);
        log.info({ step, checkpoint: prefix }, 'checkpoint committed');
        break;
      }
      case 'done':
        done = ev;
        break;
    }
  };

  const args = ['train', '--spec', specPath, ...(resume ? ['--resume-from', resume.dir] : [])];
  const result = await runTrainer({ args, onEvent, signal: ctx.cancellationSignal, log });

  if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason ?? new Error('cancelled');
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
  const tokensPerSec = speeds.length ? speeds.reduce((a, b) => a + b, 0) / speeds.length : null;
  return { finalPrefix, ...meta, tokensPerSec, resumedFrom: resume?.step ?? 0 };
}
