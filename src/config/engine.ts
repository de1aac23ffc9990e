/**
 * Which engine evaluates a run (`eval.engine`, docs/contracts.md §3 "evaluation engine"). Pure: the
 * resolveEvalEngine activity (activities/eval-engine.ts) reads the model's config.json and calls
 * these; the unit tests call them directly.
 *
 * - `onnx`: export to ONNX, then onnxruntime-node on the cpu queue (fp32). Cheap for small models.
 * - `torch`: `python -m trainer generate` on the gpu queue: bf16 on CUDA (fp32 on CPU), the adapter
 *   unmerged, QLoRA on its NF4 base. No export.
 * - `auto`: torch where the run trains on a GPU or the model is large, onnx otherwise.
 */
import type { EvalConfig, TrainingConfig } from './schema';

export type EvalEngine = 'onnx' | 'torch';

/**
 * Above this many parameters `auto` picks torch: an fp32 ONNX export of a 3B model is already
 * ~12 GB and its CPU evaluation takes hours (issue #14 measured 28 GB and 7–8 h per 7B run), while
 * SmolLM2-class models evaluate in minutes on the cpu queue.
 */
export const TORCH_ENGINE_MIN_PARAMETERS = 3e9;

/** The HF config.json fields the estimate reads (Llama/Gemma/Mistral/Qwen2 names). */
export interface ModelShape {
  vocab_size?: number;
  hidden_size?: number;
  intermediate_size?: number;
  num_hidden_layers?: number;
  num_attention_heads?: number;
  num_key_value_heads?: number;
  head_dim?: number;
  tie_word_embeddings?: boolean;
}

/**
 * Parameter count of a decoder-only transformer from its config: embeddings (twice when untied),
 * per layer the q/o projections, the k/v projections (grouped-query heads), a gated MLP (3 matrices)
 * and two norms. Within a few percent of the real count for the families the grid supports; null
 * when the config lacks a field the estimate needs.
 */
export function estimateParameters(c: ModelShape): number | null {
  const { vocab_size: vocab, hidden_size: hidden, intermediate_size: inter, num_hidden_layers: layers } = c;
  if (!vocab || !hidden || !inter || !layers) return null;
  const heads = c.num_attention_heads ?? 1;
  const headDim = c.head_dim ?? hidden / heads;
  const kvHeads = c.num_key_value_heads ?? heads;
  const attention = 2 * hidden * heads * headDim + 2 * hidden * kvHeads * headDim;
  const mlp = 3 * hidden * inter;
  const embeddings = vocab * hidden * (c.tie_word_embeddings === false ? 2 : 1);
  return embeddings + layers * (attention + mlp + 2 * hidden) + hidden;
}

export interface EngineChoice {
  engine: EvalEngine;
  /** Why, in words (the workflow's current details and the logs show it). */
  reason: string;
}

/** `eval.engine` → the engine, given where the run trains and the model's size (null: unknown). */
export function chooseEvalEngine(
  evalConfig: Pick<EvalConfig, 'engine'> & { precision?: unknown },
  training: Pick<TrainingConfig, 'device'>,
  parameters: number | null,
): EngineChoice {
  const requested = evalConfig.engine ?? 'auto';
  if (requested !== 'auto') return { engine: requested, reason: `eval.engine is ${requested}` };
  // int8 is an export of the onnx engine (validate.ts refuses it with engine: torch).
  if (evalConfig.precision === 'int8') return { engine: 'onnx', reason: 'auto: eval.precision int8 is an onnx export' };
  if (training.device === 'cuda') return { engine: 'torch', reason: 'auto: training.device is cuda' };
  if (parameters !== null && parameters > TORCH_ENGINE_MIN_PARAMETERS) {
    return {
      engine: 'torch',
      reason: `auto: ${(parameters / 1e9).toFixed(1)}B parameters > ${TORCH_ENGINE_MIN_PARAMETERS / 1e9}B`,
    };
  }
  return {
    engine: 'onnx',
    reason:
      parameters === null
        ? 'auto: model size unknown, training.device is not cuda'
        : `auto: ${(parameters / 1e9).toFixed(2)}B parameters`,
  };
}
