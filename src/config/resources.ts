/**
 * What a run needs, from a model's config.json alone: parameter counts and the training-memory
 * estimate, the same formulas as trainer/resources.py (its docstring derives them), so that
 * `peftgrid validate` refuses a `full` fine-tune that cannot fit before any data is prepared.
 * test/fixtures/model-shapes.json holds cases both sides must compute to the byte
 * (test/unit/config-resources.test.ts, test/python/test_resources.py).
 */
import { existsSync, readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { deviceMemoryBytesEnv, type Env } from '../common/env';

/** 'auto' turns gradient checkpointing on from here (trainer/resources.py's GRADIENT_CHECKPOINTING_MIN_PARAMS). */
export const GRADIENT_CHECKPOINTING_MIN_PARAMS = 1_000_000_000;
const GIB = 1024 ** 3;
const CUDA_OVERHEAD_BYTES = GIB;
/** CPU training: what the trainer process holds before any tensor (Python, torch, transformers). */
const HOST_PROCESS_BYTES = GIB;
const ACTIVATION_VALUES_PER_LAYER = 17;
export const OPTIMIZER_STATE_BYTES = { adamw: 8, adamw_8bit: 2, sgd: 0 } as const;
/**
 * What `validate` assumes a GPU worker has when PEFTGRID_DEVICE_MEMORY_BYTES does not say: one
 * 80 GB A100/H100, the study's target. The trainer checks the real device again before loading.
 */
export const DEFAULT_GPU_MEMORY_BYTES = 80 * GIB;

const TIED_BY_DEFAULT: Record<string, boolean> = { gemma: true, gemma2: true };
const KNOWN = ['llama', 'mistral', 'qwen2', 'gemma', 'gemma2'];

export interface ParamBreakdown {
  /** Parameters of the decoder layers' linear projections (what QLoRA quantizes). */
  linear: number;
  /** Embeddings, lm_head (unless tied), norms. */
  other: number;
  layers: number;
  hidden: number;
  vocab: number;
}

type ModelConfigJson = Record<string, unknown>;
const num = (c: ModelConfigJson, k: string): number | undefined => (typeof c[k] === 'number' ? c[k] : undefined);

/** Parameter counts of a Llama/Mistral/Qwen2/Gemma/Gemma 2 decoder from its config.json; null for other shapes. */
export function paramBreakdown(c: ModelConfigJson): ParamBreakdown | null {
  const kind = c['model_type'];
  if (typeof kind !== 'string' || !KNOWN.includes(kind)) return null;
  const h = num(c, 'hidden_size');
  const heads = num(c, 'num_attention_heads');
  const inter = num(c, 'intermediate_size');
  const layers = num(c, 'num_hidden_layers');
  const vocab = num(c, 'vocab_size');
  if (!h || !heads || !inter || !layers || !vocab) return null;
  const headDim = num(c, 'head_dim') || Math.floor(h / heads);
  const q = heads * headDim;
  const kv = (num(c, 'num_key_value_heads') || heads) * headDim;
  const tied =
    typeof c['tie_word_embeddings'] === 'boolean' ? c['tie_word_embeddings'] : (TIED_BY_DEFAULT[kind] ?? false);
  const qkvBias = Boolean(c['attention_bias']) || kind === 'qwen2';
  const attn = h * q + 2 * h * kv + q * h + (qkvBias ? q + 2 * kv : 0);
  const mlp = 3 * h * inter + (c['mlp_bias'] ? 2 * inter + h : 0);
  const norms = (kind === 'gemma2' ? 4 : 2) * h;
  const embed = vocab * h;
  return {
    linear: layers * (attn + mlp),
    other: layers * norms + embed + h + (tied ? 0 : embed),
    layers,
    hidden: h,
    vocab,
  };
}

export function paramCount(c: ModelConfigJson): number | null {
  const b = paramBreakdown(c);
  return b && b.linear + b.other;
}

function loraParamCount(c: ModelConfigJson, r: number): number {
  const h = num(c, 'hidden_size')!;
  const heads = num(c, 'num_attention_heads')!;
  const headDim = num(c, 'head_dim') || Math.floor(h / heads);
  const q = heads * headDim;
  const kv = (num(c, 'num_key_value_heads') || heads) * headDim;
  // q, k, v, o projections: A is r × in, B is out × r.
  return num(c, 'num_hidden_layers')! * r * (h + q + (h + kv) * 2 + (q + h));
}

export interface MemoryEstimate {
  weights: number;
  trainable: number;
  activations: number;
  overhead: number;
  total: number;
}

export interface EstimateInput {
  method: string;
  optimizer: keyof typeof OPTIMIZER_STATE_BYTES;
  batchSize: number;
  maxLength: number;
  checkpointing: boolean;
  device: 'cuda' | 'cpu';
}

/** trainer/resources.py's train_memory_bytes, byte for byte; null for an unknown shape. */
export function trainMemoryBytes(c: ModelConfigJson, e: EstimateInput): MemoryEstimate | null {
  const b = paramBreakdown(c);
  if (!b) return null;
  const n = b.linear + b.other;
  const cuda = e.device === 'cuda';
  const act = cuda ? 2 : 4;
  let weights: number;
  let trainable: number;
  if (e.method === 'full') {
    weights = 4 * n + (cuda ? 2 * n : 0);
    trainable = n;
  } else {
    weights = e.method === 'qlora' ? 0.52 * b.linear + 2 * b.other : (cuda ? 2 : 4) * n;
    trainable = ['lora', 'qlora', 'adalora'].includes(e.method) ? loraParamCount(c, 8) : 0;
  }
  const tokensHidden = e.batchSize * e.maxLength * b.hidden * act;
  const oneLayer = ACTIVATION_VALUES_PER_LAYER * tokensHidden;
  const layers = e.checkpointing ? b.layers * tokensHidden + oneLayer : b.layers * oneLayer;
  const logits = e.batchSize * e.maxLength * b.vocab * (act + 8);
  const parts = {
    weights: Math.trunc(weights),
    trainable: Math.trunc((8 + OPTIMIZER_STATE_BYTES[e.optimizer]) * trainable),
    activations: Math.trunc(layers + logits),
    overhead: cuda ? CUDA_OVERHEAD_BYTES : HOST_PROCESS_BYTES,
  };
  return { ...parts, total: parts.weights + parts.trainable + parts.activations + parts.overhead };
}

export function resolveGradientCheckpointing(setting: 'auto' | boolean, params: number): boolean {
  return setting === 'auto' ? params >= GRADIENT_CHECKPOINTING_MIN_PARAMS : setting;
}

/** The memory `validate` checks against: PEFTGRID_DEVICE_MEMORY_BYTES, else this host's RAM on cpu, else one 80 GB GPU. */
export function assumedDeviceMemory(
  device: 'auto' | 'cpu' | 'cuda',
  env: Env = process.env,
): { bytes: number; source: string } {
  const override = deviceMemoryBytesEnv(env);
  if (override !== undefined) return { bytes: override, source: 'PEFTGRID_DEVICE_MEMORY_BYTES' };
  if (device === 'cpu') return { bytes: totalmem(), source: "this host's RAM" };
  return { bytes: DEFAULT_GPU_MEMORY_BYTES, source: 'one 80 GB GPU (set PEFTGRID_DEVICE_MEMORY_BYTES for yours)' };
}

/** A local model directory's config.json, or null (a hub id, an s3:// prefix, no such file, not JSON). */
export function readModelConfig(dir: string): ModelConfigJson | null {
  const file = join(dir, 'config.json');
  if (!existsSync(file)) return null;
  try {
    const c: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return c && typeof c === 'object' ? (c as ModelConfigJson) : null;
  } catch {
    return null;
  }
}

export interface FitCheck {
  need: MemoryEstimate;
  have: { bytes: number; source: string };
  params: number;
}

/** The estimate for a full fine-tune of the model in `dir` and the memory it is held against; null when it fits or cannot be known. */
export function fullFineTuneMisfit(
  dir: string,
  training: {
    optimizer: EstimateInput['optimizer'];
    batchSize: number;
    maxLength: number;
    device: 'auto' | 'cpu' | 'cuda';
    gradientCheckpointing: 'auto' | boolean;
  },
  env: Env = process.env,
): FitCheck | null {
  const config = readModelConfig(dir);
  const params = config && paramCount(config);
  if (!config || !params) return null;
  const need = trainMemoryBytes(config, {
    method: 'full',
    optimizer: training.optimizer,
    batchSize: training.batchSize,
    maxLength: training.maxLength,
    checkpointing: resolveGradientCheckpointing(training.gradientCheckpointing, params),
    device: training.device === 'cpu' ? 'cpu' : 'cuda',
  });
  const have = assumedDeviceMemory(training.device, env);
  return need && need.total > have.bytes ? { need, have, params } : null;
}

export const gib = (b: number): string => `${(b / GIB).toFixed(1)} GiB`;
