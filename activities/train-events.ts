/**
 * What trainModel does with each trainer event, as a pure function (STYLE.md rule 12):
 * `onTrainerEvent(state, event, now) → {state, effects}`. The activity (activities/train.ts) owns
 * the I/O and runs the effects in order; everything decided here is unit-tested without a
 * trainer, a store or Temporal (test/unit/train-events.test.ts).
 */
import type { TrainerEvent, TrainerEventOf } from '../src/contracts/trainer-events';

import type { TrainHeartbeat, TrainResources } from '../src/contracts';

export type { TrainHeartbeat } from '../src/contracts';

export interface TrainState {
  heartbeat: TrainHeartbeat;
  /** When the current trainer process was spawned (ms): start-up and first-step times are measured from it. */
  spawnedAt: number;
  firstStepLogged: boolean;
  /**
   * Training-loop throughput of this attempt: Σ tokens / time from its loop start to its last step,
   * so local checkpoint saves and any stall of the trainer on uploads count against it.
   */
  loop: { tokens: number; elapsedMs: number };
  /** The step whose checkpoint upload gave up; from then on no checkpoint is attempted. */
  uploadFailedAt?: number;
  done?: TrainerEventOf<'done'>;
  /** The `resources` event of the attempt that finished (peak memory, MFU, gradient checkpointing). */
  resources?: TrainerEventOf<'resources'>;
}

export type TrainEffect =
  | { kind: 'heartbeat'; details: TrainHeartbeat }
  | { kind: 'log'; level: 'debug' | 'info'; fields: Record<string, unknown>; msg: string }
  | { kind: 'reportProgress'; step: number; loss?: number; tokensPerSec?: number; maxSteps: number }
  | { kind: 'commitCheckpoint'; step: number; dir: string; loss?: number }
  | { kind: 'applyRetention' }
  | { kind: 'stopTrainer'; reason: string };

export interface Transition {
  state: TrainState;
  effects: TrainEffect[];
}

export function initialTrainState(maxSteps: number, now: number): TrainState {
  return {
    heartbeat: { step: 0, maxSteps },
    spawnedAt: now,
    firstStepLogged: false,
    loop: { tokens: 0, elapsedMs: 0 },
  };
}

/** A trainer process is about to start, from `from` (null: from scratch). */
export function onTrainerSpawn(
  state: TrainState,
  from: { step: number; prefix: string } | null,
  now: number,
): Transition {
  const heartbeat = { ...state.heartbeat, step: from?.step ?? 0, checkpointKey: from?.prefix };
  return { state: { ...state, heartbeat, spawnedAt: now }, effects: [{ kind: 'heartbeat', details: heartbeat }] };
}

const nullToUndefined = (v: number | null): number | undefined => v ?? undefined;

export function onTrainerEvent(state: TrainState, ev: TrainerEvent, now: number): Transition {
  switch (ev.event) {
    case 'start':
      // Spawn to `start` = Python start-up + model load + checkpoint restore (bench/recovery.ts).
      return {
        state,
        effects: [
          {
            kind: 'log',
            level: 'info',
            fields: { step: ev.step, loadMs: now - state.spawnedAt, device: ev.device },
            msg: 'trainer started',
          },
        ],
      };
    case 'step': {
      const heartbeat = {
        ...state.heartbeat,
        step: ev.step,
        loss: nullToUndefined(ev.loss),
        tokensPerSec: nullToUndefined(ev.tokensPerSec),
      };
      const next = {
        ...state,
        heartbeat,
        loop: { tokens: state.loop.tokens + ev.tokens, elapsedMs: ev.elapsedMs },
        firstStepLogged: true,
      };
      const effects: TrainEffect[] = [
        // The trainer's real last step, as the worker saw it (heartbeats are throttled to 5 s):
        // the fault tests and bench/recovery.ts count lost steps from this line.
        { kind: 'log', level: 'debug', fields: { loss: heartbeat.loss, step: ev.step }, msg: 'trainer step' },
        { kind: 'heartbeat', details: heartbeat },
        {
          kind: 'reportProgress',
          step: ev.step,
          loss: heartbeat.loss,
          tokensPerSec: heartbeat.tokensPerSec,
          maxSteps: heartbeat.maxSteps,
        },
      ];
      if (!state.firstStepLogged) {
        effects.push({
          kind: 'log',
          level: 'info',
          fields: { step: ev.step, sinceSpawnMs: now - state.spawnedAt, stepMs: ev.stepMs },
          msg: 'first training step of this attempt',
        });
      }
      return { state: next, effects };
    }
    case 'preempting':
      // signalStep: the last step completed when the signal arrived; every step up to it must be
      // in the checkpoint that follows (the "zero steps lost on SIGTERM" promise).
      return {
        state,
        effects: [
          {
            kind: 'log',
            level: 'info',
            fields: { signal: ev.signal, signalStep: ev.signalStep, step: ev.step },
            msg: 'trainer received SIGTERM',
          },
        ],
      };
    case 'checkpoint':
      // Once an upload gave up, later checkpoints are not attempted: the trainer is being stopped
      // and the retry resumes from the last committed one.
      if (state.uploadFailedAt !== undefined) return { state, effects: [] };
      return {
        state,
        effects: [{ kind: 'commitCheckpoint', step: ev.step, dir: ev.dir, loss: nullToUndefined(ev.loss) }],
      };
    case 'resources':
      return {
        state: { ...state, resources: ev },
        effects: [
          {
            kind: 'log',
            level: 'info',
            fields: {
              peakMemoryBytes: ev.peakMemoryBytes,
              peakMemorySource: ev.peakMemorySource,
              mfu: ev.mfu,
              gradientCheckpointing: ev.gradientCheckpointing,
            },
            msg: 'training resources',
          },
        ],
      };
    case 'done':
      return { state: { ...state, done: ev }, effects: [] };
    default:
      // `error` is collected by runTrainer (TrainerRunResult.error); `export` is not a train event.
      return { state, effects: [] };
  }
}

/** A `commitCheckpoint` effect finished: committed under `checkpointKey`, or gave up (null). */
export function onCheckpointOutcome(state: TrainState, step: number, checkpointKey: string | null): Transition {
  if (checkpointKey === null) {
    return {
      state: { ...state, uploadFailedAt: step },
      effects: [{ kind: 'stopTrainer', reason: `checkpoint upload of step ${step} failed` }],
    };
  }
  const heartbeat = { ...state.heartbeat, checkpointKey };
  return {
    state: { ...state, heartbeat },
    effects: [{ kind: 'heartbeat', details: heartbeat }, { kind: 'applyRetention' }],
  };
}

/** What the finished attempt cost, as TrainModelResult carries it; {} when the trainer sent no `resources`. */
export function attemptResources(state: TrainState): TrainResources {
  const r = state.resources;
  if (!r) return {};
  return {
    peakMemoryBytes: r.peakMemoryBytes,
    peakMemorySource: r.peakMemorySource,
    gradientCheckpointing: r.gradientCheckpointing,
    ...(r.mfu === null ? {} : { mfu: r.mfu }),
  };
}

/** Mean training tokens/s over the steps this attempt ran (null when nothing ran). */
export function attemptTokensPerSec(state: TrainState): number | null {
  const { tokens, elapsedMs } = state.loop;
  return tokens > 0 && elapsedMs > 0 ? tokens / (elapsedMs / 1000) : null;
}
