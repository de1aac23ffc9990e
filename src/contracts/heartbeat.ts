/**
 * Heartbeat details of an activity while it moves bytes (docs/operations.md, "What the Temporal UI
 * shows"). Every activity heartbeats from its first line; while a store transfer runs, the details
 * carry the transfer's phase and bytes, so the UI's pending-activity panel shows progress and a
 * worker stuck mid-transfer stops heartbeating and is retried after `heartbeatTimeout`.
 */

/** What an activity is doing when it heartbeats. */
export type ActivityPhase =
  /** The activity has started and moves no bytes yet (checking the store, preparing a work dir). */
  | 'starting'
  /** A model directory (s3:// prefix or hub id) materialized on the worker. */
  | 'download-model'
  /** A raw split, prepared split or token shard, down from the store or a source URL. */
  | 'download-data'
  | 'upload-data'
  | 'download-checkpoint'
  | 'upload-checkpoint'
  /** A trained adapter (or full weights): the final commit of training, the input of an export. */
  | 'download-adapter'
  | 'upload-adapter'
  | 'download-onnx'
  | 'upload-onnx'
  /** The trainer's child process is exporting (no bytes; the trainer's own event in `event`). */
  | 'exporting'
  /** The trainer's child process is quantizing an fp32 export to int8 (`python -m trainer quantize`). */
  | 'quantizing'
  /** writeReport reads the runs' predictions and training logs and renders the figures. */
  | 'rendering-report';

/** The details one heartbeat carries while an activity is in `phase`. */
export interface ActivityHeartbeatDetails {
  phase: ActivityPhase;
  /** Bytes of the current transfer moved so far (never decreasing within one transfer). */
  bytes?: number;
  /** Bytes the current transfer moves in all. */
  totalBytes?: number;
  /** Bytes checksummed so far, where the transfer hashes a file besides moving it. */
  hashedBytes?: number;
  /** `download-model`: the model being staged (hub id, s3:// prefix), so a waiting slot says which. */
  model?: string;
}
