/**
 * Experiment tracking across the workflow → activity boundary. The workflow resolves a run's
 * `tracking` config into one `TrackingTarget`; trainModel logs step metrics to it and
 * trackRunResult logs params, final metrics and artifacts. Plain data only (STYLE.md rule 3).
 */
import type { RunResult } from './run';

export interface TrackingTarget {
  /** MLflow tracking server, e.g. `http://127.0.0.1:5000`. */
  uri: string;
  /** Experiment name (created when absent). */
  experiment: string;
  /**
   * The run's identity in the tracker: the training key for runs that train (so a resumed or
   * retried attempt continues the same MLflow run), the evaluation key for the rest. Stored as the
   * tag `peftgrid.key`; the MLflow run is looked up by it and created only when absent.
   */
  key: string;
  /** The MLflow run name (the grid run's name). */
  runName: string;
  /** Tags set when the MLflow run is created (grid, model, method, keys). */
  tags: Record<string, string>;
  /** The resolved run config, flattened to `a.b.c → value` (MLflow params are immutable strings). */
  params: Record<string, string>;
}

export interface TrackRunResultInput {
  storeUrl: string;
  tracking: TrackingTarget;
  result: RunResult;
}

export interface TrackRunResultResult {
  /** The MLflow run id, or null when the tracker could not be reached. */
  mlflowRunId: string | null;
  /** What was not logged because the tracker failed (empty when everything was). */
  skipped: string[];
}

/** A run that ended without a result: its MLflow run is closed with this status instead of left RUNNING. */
export interface TrackRunEndedInput {
  tracking: TrackingTarget;
  /** FAILED for a failed run, KILLED for a cancelled one (MLflow's RunStatus names). */
  status: 'FAILED' | 'KILLED';
  /** The failure's message (kept as the tag `peftgrid.error`); absent for a cancellation. */
  error?: string;
  /** The failure's type (`InvalidSpec`, `TrainerCrashed`, …), kept as the tag `peftgrid.errorType`. */
  errorType?: string;
}

export interface TrackGridReportInput {
  storeUrl: string;
  /** The grid's tracker: its report goes to an MLflow run of its own, keyed `grid:<gridId>`. */
  tracking: { uri: string; experiment: string };
  gridId: string;
  gridName: string;
  /** writeReport's `reportPrefix` (`grids/<gridId>`): every object under it becomes an artifact. */
  reportPrefix: string;
}

export type TrackGridReportResult = TrackRunResultResult;
