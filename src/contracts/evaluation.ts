/**
 * Evaluation contracts: the input and result of the evaluateModel activity.
 */
import type { EvalEngine } from '../config/engine';
import type { RunEvalConfig } from '../config/plan';
import type { Summary } from '../metrics/summarize';
import type { ObjectRef } from '../store/object-store';
import type { RunResult } from './run';
import type { PrecisionParity } from './training';

export interface EvaluateModelInput {
  storeUrl: string;
  runKey: string;
  /** The engine (src/config/engine.ts). @default 'onnx' (inputs recorded before the torch engine) */
  engine?: EvalEngine;
  /** onnx engine: the committed export to run. */
  onnxPrefix?: string;
  /**
   * torch engine: the committed final adapter (null: the base model, ICL and speculative runs), the
   * method that trained it, and the device (training.device: where the run trained).
   */
  torch?: { adapterPrefix: string | null; method: string; device: 'auto' | 'cpu' | 'cuda' };
  /** JSONL of {@link TestItem}, written by tokenizeData. */
  testData: ObjectRef;
  /** The model directory whose tokenizer decodes the predictions. */
  modelPath: string;
  /** Hub models: the commit sha stageModel pinned (activities/model-source.ts stages exactly it). */
  revision?: string;
  eval: RunEvalConfig;
  /**
   * Decode with a draft model proposing `gamma` tokens per target pass (greedy: same output): its
   * export (onnx engine) or its model directory (torch engine).
   */
  speculative?: {
    draftOnnxPrefix?: string;
    draftModelPath?: string;
    draftRevision?: string;
    /** Torch engine, `drafting: distilled`: the distilled draft's committed model directory in the store (it replaces draftModelPath). */
    draftPrefix?: string;
    gamma: number;
    /** Prompt-lookup drafting (no draft model): the longest n-gram looked up. */
    promptLookup?: { maxNgram: number };
  };
}

export interface EvaluateModelResult {
  evalPrefix: string;
  metrics: Summary;
  throughput: NonNullable<RunResult['throughput']>;
  /** Absent in results saved before the torch engine: onnx. */
  engine?: EvalEngine;
  /** 'fp32', 'int8', 'bf16' or 'nf4-base' (RunResult.precision). */
  precision?: string;
  /** int8 evaluations: the export's parity against fp32 (RunResult.precisionParity). */
  precisionParity?: PrecisionParity;
}
