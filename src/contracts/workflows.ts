/**
 * Workflow inputs. They live here, not in workflows/, because the CLI starts workflows with them
 * and src/ never imports workflows/ (eslint.config.mjs); workflows/types.ts re-exports them.
 * Renaming these types never changes recorded history: only payload field names do.
 */
import type { RunSpec } from '../config/plan';
import type { GridConfig } from '../config/schema';
import type { PreparedData } from './data';
import type { RunResult } from './run';

export interface PrepareDataWorkflowInput {
  storeUrl: string;
  dataKey: string;
  data: GridConfig['data'];
}

export interface FineTuneRunWorkflowInput {
  run: RunSpec;
  prepared: PreparedData;
}

export interface ExperimentGridWorkflowInput {
  gridId: string;
  grid: GridConfig;
  runs: RunSpec[];
  /** Carried across continue-as-new: results of runs finished in earlier executions. */
  done?: RunResult[];
  /** Carried across continue-as-new: prepared data by dataKey. */
  prepared?: Record<string, PreparedData>;
  /** Runs started per execution before continuing as new (keeps history small). @default 100 */
  runsPerExecution?: number;
}
