/** Where a run's log lines live in the store (src/contracts/run-logs.ts), for the activities and `peftgrid logs`. */
import { joinKey } from '../store';

/** `runs/<key>/logs`: `key` a training key (train, export) or an evaluation key (evaluate). */
export function runLogsPrefix(key: string): string {
  return joinKey('runs', key, 'logs');
}

/** `runs/<key>/logs/<activity>-<compact ISO start>-attempt-<N>.jsonl`. */
export function runLogKey(key: string, activity: string, attempt: number, startedMs: number): string {
  const stamp = new Date(startedMs).toISOString().replace(/[-:]/g, '').replace('.', '-');
  return joinKey(runLogsPrefix(key), `${activity}-${stamp}-attempt-${attempt}.jsonl`);
}
