/**
 * A run's two content identities (docs/contracts.md §3). Pure: the workflow cannot hash (no
 * node:crypto in its sandbox), so the deriveRunKeys activity calls these with the content hashes
 * it gathered, and the unit tests call them directly.
 *
 * - training key: what the trained adapter is a function of. Checkpoints, the final adapter and
 *   its ONNX export live under it, so a run resumes or reuses only training of the same model
 *   bytes on the same tokenized data with the same settings.
 * - evaluation key: the training key (or, untrained, the base model) plus everything the
 *   evaluation adds. Predictions, metrics and the saved run result live under it.
 *
 * The plan-time runKey (plan.ts) stays the run's name and workflow id: it is config only, so the
 * CLI can print it before anything has been downloaded.
 */
import { contentHash } from '../common/hash';
import type { EvalEngine } from './engine';
import { speculativeSlug } from '../contracts/method';
import { methodSlug, type RunSpec } from './plan';
import { INT8_EXPORT_ID } from './schema';

/** Bump when the meaning of a key changes (a new input, a changed default that the keys omit). */
const IDENTITY_VERSION = 1;

/** Content hashes known only at run time, after the data is tokenized and the model is on disk. */
export interface RunContent {
  /** Model fingerprint (activities/model-fingerprint.ts). */
  model: string;
  /** sha256 of the tokenized training shard; null for runs that do not train. */
  trainData: string | null;
  /** sha256 of the tokenized test prompts (prompt format, shots and tokenizer are in it). */
  testData: string;
  /** Fingerprint of a speculative run's draft model. */
  draft?: string;
  /** The engine `eval.engine` resolved to (src/config/engine.ts); absent: onnx. */
  engine?: EvalEngine;
}

/**
 * The settings that change what training produces, or null for a run that does not train. Left
 * out on purpose: `checkpointEverySteps` (when a checkpoint is written changes no weight: resume is
 * exact, and a changed cadence must not throw away a finished adapter), `device` (a run resumes on
 * whichever worker picks it up), `gradientCheckpointing` (recomputing activations changes memory, not
 * the weights; leaving it out also keeps the keys of configs written before it existed), the model's name and path (its bytes are in the key instead), and
 * the data config (the tokenized shard's sha256 stands for it, and also sees an edited file).
 */
export function trainingSettings(run: RunSpec): Record<string, unknown> | null {
  if (!run.trains) return null;
  const {
    checkpointEverySteps: _every,
    device: _device,
    gradientCheckpointing: _recompute,
    ...training
  } = run.training;
  return { family: run.model.family, method: run.method, training };
}

/**
 * What evaluation adds on top of the model it evaluates: every `eval.*` setting, shots, method (ICL,
 * speculative). `eval.engine` as written is left out: what counts is the engine it resolved to, which
 * evaluationKey adds (so `auto` and an explicit choice of the same engine share one evaluation).
 * `eval.precision` is the run's own (plan.ts RunEvalConfig): present only for int8, so int8 is
 * another evaluation and fp32 keeps the key it had before the option existed. An int8 run also has
 * the quantization (INT8_EXPORT_ID): results of an export quantized another way are not reused.
 */
export function evaluationSettings(run: RunSpec): Record<string, unknown> {
  const { engine: _engine, ...evalSettings } = run.eval;
  return {
    eval: evalSettings,
    shots: run.shots,
    method: run.trains ? null : run.method,
    ...(run.eval.precision === 'int8' ? { int8Scheme: INT8_EXPORT_ID } : {}),
  };
}

function readable(run: RunSpec): string {
  const m = run.method;
  return `${run.model.name}__${m.method === 'speculative' ? speculativeSlug(m) : methodSlug(m)}`;
}

/** `<model>__<method>__t<16 hex>`; null for runs that do not train. */
export function trainingKey(run: RunSpec, content: RunContent): string | null {
  const settings = trainingSettings(run);
  if (!settings) return null;
  if (!content.trainData)
    throw new TypeError(`trainingKey(${run.runKey}): a training run needs the sha256 of its tokenized training data`);
  return `${readable(run)}__t${contentHash({ v: IDENTITY_VERSION, settings, model: content.model, trainData: content.trainData })}`;
}

/**
 * `<target>__spec-distill-<draft>__d<16 hex>`: where a distilled draft's checkpoints, final model
 * and ONNX export live; null unless the pair drafts with `distilled`. It hashes what the distilled
 * weights are a function of: the target's and the draft's bytes, the tokenized training prompts, the
 * draft's method and training settings (less what trainingSettings leaves out, for the same
 * reasons) and maxNewTokens. Not gamma nor any eval setting: a pair that changes only those
 * reuses the distilled draft.
 */
export function distillKey(run: RunSpec, content: RunContent): string | null {
  if (!run.distill || !run.draft) return null;
  if (!content.trainData || !content.draft)
    throw new TypeError(
      `distillKey(${run.runKey}): a distilled draft needs the draft's fingerprint and the training data's sha256`,
    );
  const {
    checkpointEverySteps: _every,
    device: _device,
    gradientCheckpointing: _recompute,
    ...training
  } = run.distill.training;
  const settings = {
    family: run.draft.family,
    method: run.distill.method,
    training,
    maxNewTokens: run.distill.maxNewTokens,
  };
  return `${run.model.name}__spec-distill-${run.draft.name}__d${contentHash({
    v: IDENTITY_VERSION,
    settings,
    target: content.model,
    draft: content.draft,
    trainData: content.trainData,
  })}`;
}

/**
 * `<model>__<method>__e<16 hex>`. The torch engine is in the hash (its bf16/NF4 numbers are other
 * numbers: switching engines re-evaluates); onnx is left out, so ONNX evaluations keep the keys
 * they had before the torch engine existed and their saved results stay reusable.
 */
export function evaluationKey(run: RunSpec, content: RunContent): string {
  const distilled = distillKey(run, content);
  const trained = trainingKey(run, content);
  return `${readable(run)}__e${contentHash({
    v: IDENTITY_VERSION,
    settings: evaluationSettings(run),
    testData: content.testData,
    // A trained run's training key already holds the model; an untrained run is its base model.
    // A distilled pair evaluates the distilled draft: its key stands for it (and for the draft's bytes).
    evaluated: trained ?? { model: content.model, draft: content.draft ?? null, ...(distilled ? { distilled } : {}) },
    ...(content.engine === 'torch' ? { engine: 'torch' } : {}),
  })}`;
}
