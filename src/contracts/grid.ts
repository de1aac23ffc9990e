/**
 * A grid's contracts: what experimentGridWorkflow returns and answers to its `progress` query.
 * Read by the CLI (watch, results) and the benches. Plain JSON only: recorded in workflow history.
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
