/** Model staging (activities/stage-model.ts): a hub id, `s3://` prefix or local directory → files on this worker. */

export interface StageModelInput {
  /** The model's `path` from the grid: hub id, `s3://` prefix or local directory. */
  modelPath: string;
  /** Hub ids: the configured branch, tag or sha. @default the hub's `main` */
  revision?: string;
}

export interface StageModelResult {
  /** Hub ids: the commit sha the files come from, which every later activity stages; absent otherwise. */
  revision?: string;
  bytes: number;
  files: number;
}

/** stageModel's heartbeat details: bytes on disk so far (an ActivityHeartbeatDetails). */
export interface StageModelHeartbeat {
  phase: 'download-model';
  model: string;
  bytes: number;
  totalBytes: number;
}
