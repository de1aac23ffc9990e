/** Where a run's log lines live in the store (src/contracts/run-logs.ts), for the activities and `peftgrid logs`. */
import { joinKey } from '../store';

/** `runs/<trainingKey>/logs`. */
export function runLogsPrefix(trainingKey: string): string {
  return joinKey('runs', trainingKey, 'logs');
}

/** `runs/<trainingKey>/logs/<activity>-<compact ISO start>-attempt-<N>.jsonl`. */
export function runLogKey(trainingKey: string, activity: string, attempt: number, startedMs: number): string {
  const stamp = new Date(startedMs).toISOString().replace(/[-:]/g, '').replace('.', '-');
  return joinKey(runLogsPrefix(trainingKey), `${activity}-${stamp}-attempt-${attempt}.jsonl`);
}
