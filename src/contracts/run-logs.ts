/**
 * A run's persisted log lines (docs/contracts.md §3): what `peftgrid logs` reads. Each attempt of
 * an activity that logs for a run writes one object, `runs/<key>/logs/<name>.jsonl` (the training
 * key for train and export, the evaluation key for evaluate), one
 * record per line, re-uploaded whole every few seconds while the attempt runs and once at its end.
 * `<name>` is `<activity>-<start time, compact ISO>-attempt-<N>`, so keys sort by start and a
 * later grid's attempt 1 never overwrites an earlier one's.
 */

/**
 * One line: the activity's own pino records as pino writes them (`level` a number, `time` in ms,
 * `msg`, then their fields), and the trainer's stderr lines with `source: 'trainer'`.
 */
export interface RunLogRecord {
  time: number;
  /** pino's numeric level: 20 debug, 30 info, 40 warn, 50 error. */
  level: number;
  msg: string;
  /** 'trainer' for the trainer's stderr; absent for the activity's own records. */
  source?: 'trainer';
  [field: string]: unknown;
}
