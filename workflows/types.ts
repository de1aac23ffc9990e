/**
 * Inputs and results of the workflows. Plain JSON only (no classes, Dates or Buffers): they are
 * recorded in workflow history.
 */
import type { RunSpec } from '../src/config/plan';
import type { GridConfig } from '../src/config/schema';
import type { ObjectRef } from '../src/store/object-store';
import type { Summary } from '../src/metrics/summarize';

export interface PreparedData {
  /** Content hash of the data config: the prepared split keys live under it. */
  dataKey: string;
  train: ObjectRef;
  test: ObjectRef;
  /** Records per dataset and split, and malformed lines seen, for the report. */
  stats: { train: Record<string, number>; test: Record<string, number>; malformed: number };
}

export interface PrepareDataInput {
  storeUrl: string;
  dataKey: string;
  data: GridConfig['data'];
}

export type RunPhase = 'pending' | 'tokenizing' | 'training' | 'exporting' | 'evaluating' | 'completed' | 'failed' | 'cancelled';

export interface RunResult {
  runKey: string;
  model: string;
  method: string;
  label: string;
  status: 'completed' | 'failed' | 'cancelled';
  error?: string;
  /** true when an earlier execution had finished this run and its stored result was reused. */
  reused?: boolean;
  metrics?: Summary;
  throughput?: {
    tokensPerSec: number; ttftMsP50: number; tokenLatencyMsP50: number; tokenLatencyMsP95: number; hitLimitFraction: number;
    /** Speculative runs: draft acceptance and speedup over target-only greedy decoding of the same prompts. */
    acceptanceRate?: number | null; speedup?: number; targetOnlyTokensPerSec?: number;
  };
  training?: { steps: number; trainLoss: number; trainPerplexity: number; tokensPerSec: number | null };
  /** Where predictions.jsonl and metrics.json are. */
  evalPrefix?: string;
  /** What produced this result, so numbers can be traced and reproduced. */
  provenance?: Provenance;
}

export interface Provenance {
  /** Hash of everything that affects the run (model, method, data, training, eval): the runKey suffix. */
  configHash: string;
  /** `git describe` of the worker's checkout (or PEFTGRID_CODE_VERSION), plus the package version. */
  codeVersion: string;
  /** sha256 of the prepared train and test splits. */
  dataHash: string;
  /** sha256 over the model directory's config, tokenizer and weight files; null for non-local models. */
  modelHash: string | null;
  seed: number;
}

export interface FineTuneRunInput {
  run: RunSpec;
  prepared: PreparedData;
}

export interface RunProgress {
  runKey: string;
  phase: RunPhase;
  label: string;
  model: string;
}

export interface GridInput {
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
