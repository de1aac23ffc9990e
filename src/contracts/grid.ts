/**
 * A grid's contracts: what experimentGridWorkflow returns and answers to its `progress` query.
 * Read by the CLI (watch, results) and the benches. Also the inputs and results of the activities
 * only the grid workflow calls: writeReport and awaitWorkflowClosed. Plain JSON only: recorded in
 * workflow history.
 */
import type { RunProgress, RunResult } from './run';

export interface GridResult {
  gridId: string;
  runs: RunResult[];
  reportPrefix: string;
  /** The report as markdown, also stored at `<reportPrefix>/report.md`. */
  markdown: string;
}

export interface GridProgress {
  gridId: string;
  phase: 'preparing' | 'running' | 'reporting' | 'completed';
  runs: RunProgress[];
}

export interface WriteReportInput {
  storeUrl: string;
  gridId: string;
  gridName: string;
  results: RunResult[];
}

export interface WriteReportResult {
  reportPrefix: string;
  markdown: string;
  /** Store keys of the figures (SVG), in the order the report shows them. */
  plotKeys: string[];
}

export interface AwaitWorkflowClosedInput {
  workflowId: string;
  /** How often to ask the server. @default 1000 */
  pollIntervalMs?: number;
}

export interface AwaitWorkflowClosedResult {
  workflowId: string;
  /** Close status of the latest execution (COMPLETED, CANCELLED, TERMINATED, FAILED, TIMED_OUT, CONTINUED_AS_NEW), or NOT_FOUND. */
  status: string;
  waitedMs: number;
}

/** Heartbeat details: how long it has waited so far, for the UI. */
export interface AwaitWorkflowClosedHeartbeat {
  status: string;
  waitedMs: number;
}
