/**
 * Training and export contracts: the inputs and results of the gpu activities trainModel and
 * exportModel, and the heartbeat details a retried trainModel resumes from.
 */
import type { MethodSpec } from '../config/plan';
import type { TrainingConfig } from '../config/schema';
import type { ActivityHeartbeatDetails } from './heartbeat';
import type { ObjectRef } from '../store/object-store';
import type { RetentionPolicy } from '../store/retention';
import type { TrackingTarget } from './tracking';

export interface TrainModelInput {
  storeUrl: string;
  runKey: string;
  modelPath: string;
  /** Hub models: the commit sha stageModel pinned (activities/model-source.ts stages exactly it). */
  revision?: string;
  family: string;
  method: MethodSpec;
  /** gradientCheckpointing is absent in inputs recorded before it existed: the activity sends 'auto'. */
  training: Omit<TrainingConfig, 'gradientCheckpointing'> & Partial<Pick<TrainingConfig, 'gradientCheckpointing'>>;
  trainData: ObjectRef;
  /** Which committed checkpoints survive (applied after each commit). @default keepLast 3, keepBest */
  retention?: RetentionPolicy;
  /** Experiment tracking: step metrics go to this MLflow run (absent: tracking is off). */
  tracking?: TrackingTarget;
}

/**
 * distillDraft: trainModel's input for the draft (`modelPath`, `family`, `method`, `training`,
 * `trainData`: the tokenized training split, whose prompts the target answers), plus the target.
 * `runKey` is the distill key (identity.ts distillKey); the result is trainModel's, its
 * `finalPrefix` a plain model directory (a LoRA draft is merged).
 */
export interface DistillDraftInput extends TrainModelInput {
  /** The target whose greedy outputs the draft learns: a base model, as the speculative pair names it. */
  target: { modelPath: string; revision?: string };
  /** Target tokens generated per training prompt. */
  maxNewTokens: number;
}

/**
 * What training cost, measured by the trainer (trainer/resources.py) in the attempt that finished.
 * Absent in results of adapters committed before these were measured.
 */
export interface TrainResources {
  /** Peak bytes: the CUDA caching allocator's `max_memory_allocated`, or the process's peak RSS on CPU. */
  peakMemoryBytes?: number;
  /** `cuda.max_memory_allocated` or `ru_maxrss`: which of the two peakMemoryBytes is. */
  peakMemorySource?: string;
  /** Model FLOPs utilisation: (4·N + 2·N_trainable) × tokens/s ÷ the GPU's dense bf16 peak; absent on CPU or an unlisted GPU. */
  mfu?: number;
  /** Whether activations were recomputed in the backward pass (training.gradientCheckpointing resolved). */
  gradientCheckpointing?: boolean;
}

export interface TrainModelResult extends TrainResources {
  /** Store prefix of the final adapter (or full weights for `full`). */
  finalPrefix: string;
  steps: number;
  trainLoss: number;
  trainPerplexity: number;
  /** Mean training tokens/s over the steps this attempt ran (null when nothing ran). */
  tokensPerSec: number | null;
  /** Step this attempt resumed from (0 = fresh start); null when the run had already finished. */
  resumedFrom: number | null;
}

/**
 * Heartbeat details: what a retry needs to resume without listing the store. While the attempt
 * moves bytes (data, model, a checkpoint down or up, the final adapter) they also carry that
 * transfer's phase and bytes.
 */
export interface TrainHeartbeat extends Partial<ActivityHeartbeatDetails> {
  step: number;
  checkpointKey?: string;
  loss?: number;
  maxSteps: number;
  tokensPerSec?: number;
}

export interface ExportModelInput {
  storeUrl: string;
  /** The run whose adapter is exported; null exports the base model. */
  runKey: string | null;
  modelName: string;
  modelPath: string;
  /** Hub models: the commit sha stageModel pinned (activities/model-source.ts stages exactly it). */
  revision?: string;
  /** The method that trained the adapter; the exporter reads only its name (the adapter carries its config). */
  method: Pick<MethodSpec, 'method'>;
  /** Store prefix of the committed adapter (TrainModelResult.finalPrefix); null for the base model. */
  adapterPrefix: string | null;
  /**
   * The model's fingerprint (deriveRunKeys' modelHash). A base-model export is addressed by it, so
   * a model replaced at the same path is exported again; without it (executions started before
   * content keys) by the path. An adapter export lives under its run key (the training key).
   */
  modelHash?: string;
  /**
   * int8: also (once) the int8 variant of the export, committed next to the fp32 one under
   * `<onnx prefix>-int8` (trainer/quantize.py), and that is the prefix returned. Absent: fp32.
   */
  precision?: 'int8';
}

/** An int8 export's greedy-token agreement with its fp32 export (engine.json `precisionParity`). */
export interface PrecisionParity {
  /** Share of the fp32 greedy tokens that the int8 graph also predicts, teacher-forced, on fixed prompts. */
  agreement: number;
  /** The bound it was held to (trainer/quantize.py MIN_AGREEMENT unless the spec set one). */
  threshold: number;
  /** agreement < threshold: the int8 numbers are not to be trusted as fp32's; the report marks them. */
  belowThreshold: boolean;
  /** Greedy tokens compared. */
  tokens: number;
}

export interface ExportModelResult {
  /** Store prefix holding model.onnx (+ data) and engine.json. */
  onnxPrefix: string;
  /** Max |logits(onnx) − logits(pytorch)| measured by the exporter (of the fp32 export). */
  maxAbsDiff: number | null;
  /** int8 exports: the parity against fp32 recorded at quantization. */
  precisionParity?: PrecisionParity;
}
