/**
 * Evaluation contracts: the input and result of the evaluateModel activity.
 */
import type { EvalConfig } from '../config/schema';
import type { Summary } from '../metrics/summarize';
import type { ObjectRef } from '../store/object-store';
import type { RunResult } from './run';

export interface EvaluateModelInput {
  storeUrl: string;
  runKey: string;
  onnxPrefix: string;
  /** JSONL of {@link TestItem}, written by tokenizeData. */
  testData: ObjectRef;
  /** The model directory whose tokenizer decodes the predictions. */
  modelPath: string;
  /** Hub models: the commit sha stageModel pinned (activities/model-source.ts stages exactly it). */
  revision?: string;
  eval: EvalConfig;
  /** Decode with a draft model proposing `gamma` tokens per target pass (greedy: same output). */
  speculative?: { draftOnnxPrefix: string; gamma: number };
}

export interface EvaluateModelResult {
  evalPrefix: string;
  metrics: Summary;
  throughput: NonNullable<RunResult['throughput']>;
}
