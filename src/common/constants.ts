import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Names and time budgets shared by workflows, activities, workers and the CLI. Versioned task
 * queues: a breaking change to workflow code bumps the suffix so old histories keep replaying on
 * old workers (see ARCHITECTURE.md, "Task queues").
 */
export const TASK_QUEUES = {
  cpu: 'peftgrid-cpu-v1',
  gpu: 'peftgrid-gpu-v1',
} as const;

export type QueueKind = keyof typeof TASK_QUEUES;

export const DEFAULT_NAMESPACE = 'default';
export const DEFAULT_TEMPORAL_ADDRESS = 'localhost:7233';
export const DEFAULT_UI_URL = 'http://localhost:8233';

/** Custom search attributes registered on the dev server (`--search-attribute`). */
export const SEARCH_ATTRIBUTES = {
  grid: 'PeftgridGrid',
  model: 'PeftgridModel',
  method: 'PeftgridMethod',
  status: 'PeftgridStatus',
} as const;

/** Typed keys for the custom search attributes, for workflows and the client. */
export const SEARCH_ATTRIBUTE_KEYS = {
  grid: defineSearchAttributeKey(SEARCH_ATTRIBUTES.grid, SearchAttributeType.KEYWORD),
  model: defineSearchAttributeKey(SEARCH_ATTRIBUTES.model, SearchAttributeType.KEYWORD),
  method: defineSearchAttributeKey(SEARCH_ATTRIBUTES.method, SearchAttributeType.KEYWORD),
  status: defineSearchAttributeKey(SEARCH_ATTRIBUTES.status, SearchAttributeType.KEYWORD),
} as const;

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/**
 * Activity timeout profiles, in ms (STYLE: durations in ms, one module). A heartbeat timeout bounds
 * silence, not the length of a transfer: every store transfer heartbeats its bytes at least every
 * 250 ms while they move (activities/transfer-heartbeat.ts), so a multi-GB model, checkpoint or
 * export fits any of these, and a transfer that stops moving is retried after one timeout.
 */
export const TIMEOUTS = {
  /** Small data steps: parse, format, tokenize a prepared split. */
  data: { startToClose: 30 * MINUTE, heartbeat: 2 * MINUTE },
  /** Downloads stream large files; heartbeat on bytes so a dead worker is noticed. */
  download: { startToClose: 2 * HOUR, heartbeat: MINUTE },
  /** Training can run for hours; the heartbeat is what detects a lost worker (about a minute). */
  train: { startToClose: 48 * HOUR, heartbeat: MINUTE },
  export: { startToClose: 2 * HOUR, heartbeat: 2 * MINUTE },
  evaluate: { startToClose: 12 * HOUR, heartbeat: 2 * MINUTE },
  report: { startToClose: 10 * MINUTE, heartbeat: MINUTE },
  /** Logging a finished run to the tracker: bounded requests (src/tracking/mlflow.ts), no heartbeat. */
  track: { startToClose: 10 * MINUTE },
  /** Waiting for an old execution of a run to close: as long as a training may take; short
   *  heartbeat so a cancelled grid stops waiting quickly. */
  awaitClosed: { startToClose: 48 * HOUR, heartbeat: 30 * SECOND },
} as const;

/**
 * How long a gpu worker may take to shut down after SIGTERM (the SDK's `shutdownForceTime`): the
 * trainer saves a checkpoint, the activity uploads it and reports. The one setting every other
 * SIGTERM budget is derived from: the trainer's SIGKILL grace ({@link trainerKillGraceMs}), and,
 * checked by test/unit/infra-*.test.ts, Kubernetes' terminationGracePeriodSeconds and Compose's
 * stop_grace_period. Override: PEFTGRID_WORKER_SHUTDOWN_MS (integer ms).
 */
export const WORKER_SHUTDOWN_DEFAULT_MS = 180 * SECOND;
/**
 * Kept out of the trainer's grace for what follows its exit: uploading the SIGTERM checkpoint
 * (a third of the budget: a 7B LoRA checkpoint with optimizer state is a few hundred MB) and the
 * final heartbeat + failure report to the server.
 */
export const SHUTDOWN_UPLOAD_SHARE = 1 / 3;
export const SHUTDOWN_REPORT_MS = 5 * SECOND;
/** Below this the trainer would get under 10 s for a step plus a checkpoint: a configuration error. */
export const WORKER_SHUTDOWN_MIN_MS = 30 * SECOND;

// workerShutdownMs / trainerKillGraceMs live in ./shutdown: they read the environment (./env, zod),
// and this module is imported by workflow code, whose bundle must stay free of both.

/** The deterministic workflow id of a run: re-starting a grid finds (and reuses) it. */
export function runWorkflowId(runKey: string): string {
  return `peftgrid-run-${runKey}`;
}
