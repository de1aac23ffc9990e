/**
 * One run's contracts: what fineTuneRunWorkflow returns and reports, and the content identity the
 * deriveRunKeys activity computes, and the inputs and results of deriveRunKeys, lookupRunResult
 * and saveRunResult. Read by the grid workflow, the results and report activities,
 * the CLI and the report. Plain JSON only (no classes, Dates or Buffers): they are recorded in
 * workflow history.
 */
import type { EvalEngine } from '../config/engine';
import type { RunSpec } from '../config/plan';
import type { Summary } from '../metrics/summarize';
import type { ObjectRef } from '../store/object-store';
import type { PrecisionParity } from './training';

export type RunPhase =
  'pending' | 'tokenizing' | 'training' | 'exporting' | 'evaluating' | 'completed' | 'failed' | 'cancelled';

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
    tokensPerSec: number;
    ttftMsP50: number;
    tokenLatencyMsP50: number;
    tokenLatencyMsP95: number;
    hitLimitFraction: number;
    /** Test prompts cut from the left to fit the context (eval.longPrompt truncate). Absent in older results. */
    truncatedPrompts?: number;
    /** Items that did not run (a prompt too long under eval.longPrompt error, empty, bad ids); their ids and reasons are in predictions.jsonl. */
    failedItems?: number;
    /** Speculative runs: draft acceptance and speedup over target-only greedy decoding of the same prompts. */
    acceptanceRate?: number | null;
    speedup?: number;
    targetOnlyTokensPerSec?: number;
    /** Speculative runs on the onnx engine: generated tokens per target forward pass. */
    tokensPerTargetPass?: number;
  };
  training?: {
    steps: number;
    trainLoss: number;
    trainPerplexity: number;
    tokensPerSec: number | null;
    /** Peak training memory in bytes (TrainResources.peakMemoryBytes: CUDA allocator peak, or peak RSS on CPU). */
    peakMemoryBytes?: number;
    /** Which measure peakMemoryBytes is: `cuda.max_memory_allocated` or `ru_maxrss`. */
    peakMemorySource?: string;
    /** Model FLOPs utilisation of training (TrainResources.mfu); absent on CPU. */
    mfu?: number;
    gradientCheckpointing?: boolean;
  };
  /** Where predictions.jsonl and metrics.json are. */
  evalPrefix?: string;
  /** The engine that produced the predictions; absent in results saved before the torch engine (onnx). */
  engine?: EvalEngine;
  /** The numbers it computed in: 'fp32' (onnx, torch on CPU), 'int8' (onnx, eval.precision), 'bf16' (torch on CUDA), 'nf4-base' (QLoRA on its 4-bit base). */
  precision?: string;
  /** int8 runs: the export's greedy-token agreement with fp32; `belowThreshold` marks a result not to be read as fp32's. */
  precisionParity?: PrecisionParity;
  /** What produced this result, so numbers can be traced and reproduced. */
  provenance?: Provenance;
}

export interface Provenance {
  /** Hash of the run's config (model, method, data, training, eval): the runKey suffix. */
  configHash: string;
  /** `git describe` of the worker's checkout (or PEFTGRID_CODE_VERSION), plus the package version. */
  codeVersion: string;
  /** First 16 hex of the prepared train split's sha256, then the first 16 of the test split's. */
  dataHash: string;
  /** Model fingerprint (activities/model-fingerprint.ts); null only in results saved before content keys. */
  modelHash: string | null;
  seed: number;
  /** Content identity (docs/contracts.md §3); absent in results saved before content keys. */
  trainingKey?: string | null;
  evalKey?: string;
  modelHashBasis?: RunIdentity['modelHashBasis'];
  draftModelHash?: string;
  /** `drafting: distilled`: the distilled draft's content key (its files are under `runs/<distillKey>/`). */
  distillKey?: string;
  /** Hub models: the commit sha the run's model files came from (stageModel). */
  modelRevision?: string;
  /** sha256 of every split the run read: prepared (JSONL) and tokenized (what trained and was evaluated). */
  data?: { preparedTrain: string; preparedTest: string; tokenizedTrain: string | null; tokenizedTest: string };
}

/**
 * A run's content identity, derived at run time by the deriveRunKeys activity
 * (src/config/identity.ts). Checkpoints, the final adapter and its ONNX export live under
 * `runs/<trainingKey>/`; evaluation outputs and the saved result under `runs/<evalKey>/`.
 */
export interface RunIdentity {
  /** null for runs that do not train (ICL, speculative). */
  trainingKey: string | null;
  evalKey: string;
  /** The model's fingerprint (64 hex). */
  modelHash: string;
  /** `content`: hashed from the model's files; `name`: a hub id, not on disk where the keys were derived. */
  modelHashBasis: 'content' | 'name';
  /** Speculative runs: the draft model's fingerprint. */
  draftModelHash?: string;
  /** `drafting: distilled`: where the distilled draft lives, `runs/<distillKey>/` (identity.ts distillKey). */
  distillKey?: string;
  /** The engine `eval.engine` resolved to (src/config/engine.ts); absent in identities derived before it: onnx. */
  engine?: EvalEngine;
  /** Why that engine, in words. */
  engineReason?: string;
  data: { tokenizedTrain: string | null; tokenizedTest: string };
}

export interface RunProgress {
  runKey: string;
  phase: RunPhase;
  label: string;
  model: string;
  /** Where this run's checkpoints and adapter live, once derived (after tokenization). */
  trainingKey?: string | null;
  /** Where this run's evaluation and result live, once derived. */
  evalKey?: string;
}

export interface DeriveRunKeysInput {
  run: RunSpec;
  /** The tokenized training shard (tokenizeData's `train`); absent for runs that do not train. */
  trainData?: ObjectRef;
  /** The tokenized test prompts (tokenizeData's `test`). */
  testData: ObjectRef;
}

export type DeriveRunKeysResult = RunIdentity;

export interface LookupRunResultInput {
  storeUrl: string;
  /** The run's plan-time key: where results were saved before content keys. */
  runKey: string;
  /** The run's evaluation key: where its result is saved. */
  evalKey?: string;
}

export interface SaveRunResultInput {
  storeUrl: string;
  result: RunResult;
  /** Inputs for the provenance record. */
  modelPath: string;
  /** Hub models: the commit sha stageModel pinned (activities/model-source.ts stages exactly it). */
  revision?: string;
  seed: number;
  dataHash: string;
  /** The run's content identity: the result is saved under its evalKey (else, before content keys, under result.runKey). */
  identity?: RunIdentity;
  /** sha256 of the prepared train and test splits. */
  prepared?: { train: string; test: string };
}

export interface SaveRunResultResult {
  provenance: Provenance;
}
