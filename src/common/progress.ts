/**
 * Training progress, in process: the train activity reports each trainer `step` here and the
 * worker's /metrics endpoint (workers/metrics.ts) reads it. It lives in src/ so that activities
 * never import workers/ (imports flow workers → activities → src).
 */

export interface TrainingProgress {
  runKey: string;
  step: number;
  loss?: number;
  tokensPerSec?: number;
  maxSteps?: number;
}

/** A run that has not reported for this long is dropped (finished, cancelled or moved away). */
const STALE_MS = 10 * 60_000;

const progress = new Map<string, TrainingProgress & { updatedMs: number }>();

/** Records a run's training progress; call on every trainer `step` event (cheap: a map write). */
export function reportTrainingProgress(p: TrainingProgress, nowMs = Date.now()): void {
  progress.set(p.runKey, { ...p, updatedMs: nowMs });
}

/** Forget every run (tests). */
export function resetTrainingProgress(): void {
  progress.clear();
}

/** Runs that reported in the last STALE_MS, by run key; older ones are dropped. */
export function currentTrainingProgress(nowMs = Date.now()): Array<TrainingProgress & { updatedMs: number }> {
  for (const [key, p] of progress) if (nowMs - p.updatedMs > STALE_MS) progress.delete(key);
  return [...progress.values()].sort((a, b) => a.runKey.localeCompare(b.runKey));
}
