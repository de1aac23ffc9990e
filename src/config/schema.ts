/**
 * The grid config: one schema, from which the TypeScript types, the runtime validation and the
 * published JSON Schema (`schema/grid.schema.json`) are all derived. Defaults reproduce the
 * study's settings (8-bit Adam, lr 2e-5, linear schedule, 30 warm-up steps, 200 steps, batch 8/4).
 */
import { z } from 'zod';

const posInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();
/**
 * Dropout is a probability in [0, 1): at 1 every input of the adapter is zeroed, so it cannot learn,
 * and trainer/spec.py rejects it. Every bound here that the trainer also checks is held equal to
 * spec.py's by test/python/test_spec_schema.py (through the generated schema/grid.schema.json).
 */
const dropoutRate = z.number().min(0).lt(1);
/** Schemes a store URL may have; anything else (ftp://, gs://) has no backend (src/store/index.ts). */
const STORE_URL = /^(?:file:\/\/.+|s3:\/\/[^/]+(?:\/.*)?|(?![a-zA-Z][a-zA-Z0-9+.-]*:\/\/).+)$/;
/** Schemes the data download serves (activities/download.ts); a plain path is a local directory. */
const DATA_URL = /^(?:https?:\/\/.+|file:\/\/.+|s3:\/\/[^/]+(?:\/.*)?|(?![a-zA-Z][a-zA-Z0-9+.-]*:\/\/).+)$/;
/** A hyperparameter that may be a list: each list expands the grid (cartesian product). */
const many = <T extends z.ZodType>(t: T) => z.union([t, z.array(t).min(1)]);

export const FAMILIES = ['llama', 'gemma', 'mistral', 'template'] as const;
export const METHODS = ['lora', 'qlora', 'adalora', 'ia3', 'prompt_tuning', 'full', 'icl'] as const;
export type MethodName = (typeof METHODS)[number];

/** Per-method learning rate: PEFT methods train best at very different rates (prompt tuning ≫ LoRA). */
const methodLr = many(z.number().positive())
  .optional()
  .describe('overrides training.lr for this method; a list expands the grid');
const targetModules = z
  .array(z.string().min(1))
  .min(1)
  .optional()
  .describe("modules to adapt; default: the family's attention projections");

export const methodSchemas = {
  lora: z.strictObject({
    method: z.literal('lora'),
    r: many(posInt).default(8),
    alpha: many(z.number().positive()).default(16),
    dropout: many(dropoutRate).default(0.05),
    targetModules,
    lr: methodLr,
  }),
  qlora: z.strictObject({
    method: z.literal('qlora'),
    r: many(posInt).default(8),
    alpha: many(z.number().positive()).default(16),
    dropout: many(dropoutRate).default(0.05),
    targetModules,
    lr: methodLr,
  }),
  adalora: z.strictObject({
    method: z.literal('adalora'),
    initR: many(posInt).default(12),
    targetR: many(posInt).default(8),
    tinit: nonNegInt.default(20),
    tfinal: nonNegInt.default(40),
    deltaT: posInt.default(10),
    alpha: many(z.number().positive()).default(16),
    dropout: many(dropoutRate).default(0.05),
    targetModules,
    lr: methodLr,
  }),
  ia3: z.strictObject({ method: z.literal('ia3'), targetModules, feedforwardModules: targetModules, lr: methodLr }),
  prompt_tuning: z.strictObject({
    method: z.literal('prompt_tuning'),
    numVirtualTokens: many(posInt).default(20),
    initText: z.string().min(1).default('answer the question'),
    lr: methodLr,
  }),
  full: z.strictObject({ method: z.literal('full'), lr: methodLr }),
  icl: z.strictObject({ method: z.literal('icl'), shots: many(nonNegInt).default(0) }),
} as const;

export const methodEntrySchema = z.discriminatedUnion('method', [
  methodSchemas.lora,
  methodSchemas.qlora,
  methodSchemas.adalora,
  methodSchemas.ia3,
  methodSchemas.prompt_tuning,
  methodSchemas.full,
  methodSchemas.icl,
]);

export const modelSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]*$/, 'lowercase letters, digits, ".", "_" or "-"')
    .max(64),
  path: z.string().min(1).describe('local HF directory, s3:// prefix, or hub id (owner/name: HF_TOKEN, HF_ENDPOINT)'),
  family: z.enum(FAMILIES).describe('chat format: llama | gemma | mistral | template'),
  revision: z
    .string()
    .min(1)
    .optional()
    .describe('hub ids only: branch, tag or commit sha; the run pins the commit it resolves to'),
});

/** How an answer relates to its input (as in src/data/catalog.ts); it picks the official metric. */
export const QA_FORMATS = ['yes_no', 'multiple_choice', 'extractive', 'abstractive'] as const;
/** Field layouts of a custom dataset's records (src/data/jsonl.ts). */
export const RECORD_LAYOUTS = ['qa', 'chat', 'alpaca'] as const;

/**
 * A dataset of one's own, next to (or instead of) the UnifiedQA names: JSON-lines files (`train`,
 * `test`: a path, file://, https:// or s3:// URL), an HF `datasets` directory written by
 * `save_to_disk` (`hfDisk`) or a hub dataset repo (`hub`), the last two read by the trainer's
 * Python. custom-data.ts checks that exactly one source is given.
 */
export const customDatasetSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9_]+$/, 'lowercase letters, digits or "_"')
    .max(64)
    .describe('names the dataset in reports; not a UnifiedQA name'),
  format: z
    .enum(QA_FORMATS)
    .describe('yes_no | multiple_choice | extractive | abstractive: decides the prompt and the official metric'),
  layout: z
    .enum(RECORD_LAYOUTS)
    .default('qa')
    .describe(
      'qa: question, answer|answers, context?, choices?; chat: messages (last one the assistant answer); ' +
        'alpaca: instruction, input?, output',
    ),
  train: z.string().min(1).optional().describe('JSONL file: local path, file://, https:// or s3:// URL'),
  test: z.string().min(1).optional().describe('JSONL file of held-out items (kept out of training)'),
  hfDisk: z.string().min(1).optional().describe('a DatasetDict directory written by datasets save_to_disk'),
  hub: z
    .string()
    .min(1)
    .optional()
    .describe('a hub dataset repo (owner/name: HF_TOKEN, HF_ENDPOINT), staged like hub models'),
  revision: z.string().min(1).optional().describe('hub only: branch, tag or commit sha'),
  splits: z
    .strictObject({ train: z.string().min(1).default('train'), test: z.string().min(1).default('test') })
    .optional()
    .describe('hfDisk and hub only: the splits to train on and to test on'),
});

export const dataSchema = z.strictObject({
  source: z.literal('unifiedqa').default('unifiedqa'),
  baseUrl: z
    .string()
    .regex(DATA_URL, 'an https://, http://, file:// or s3://bucket URL, or a local directory path')
    .default('https://storage.googleapis.com/unifiedqa/data')
    .describe('https://, http://, file:// or s3:// prefix; a plain path is a local directory'),
  datasets: z
    .array(z.union([z.string().min(1), customDatasetSchema]))
    .min(1)
    .optional()
    .describe(
      'UnifiedQA names and/or custom datasets ({name, format, train, test} or {name, format, hfDisk}); default: all 11 of the study',
    ),
  trainSplit: z.string().default('train'),
  testSplit: z.string().default('dev').describe('UnifiedQA publishes labels for dev, not test'),
  maxTrainPerDataset: posInt.default(2000),
  testSamples: posInt.default(1000).describe('stratified across datasets, fixed by seed'),
  seed: z.number().int().default(42),
});

export const trainingSchema = z.strictObject({
  maxSteps: posInt.default(200),
  lr: z.number().positive().default(2e-5),
  warmupSteps: nonNegInt.default(30),
  scheduler: z.enum(['linear', 'cosine', 'constant']).default('linear'),
  optimizer: z.enum(['adamw_8bit', 'adamw', 'sgd']).default('adamw_8bit'),
  batchSize: posInt.default(8),
  checkpointEverySteps: posInt
    .default(25)
    .describe('at most maxSteps: a larger value never checkpoints, so a retry restarts from step 0'),
  // 2: an example needs at least one prompt token and one answer token to have a loss at all.
  maxLength: z
    .number()
    .int()
    .min(2)
    .default(512)
    .describe('tokens per training example; the prompt is cut, never the answer'),
  // The trainer seeds numpy's SeedSequence with it, which rejects negative seeds.
  seed: nonNegInt.default(42),
  device: z.enum(['auto', 'cpu', 'cuda']).default('auto'),
  // Not part of any run key (plan.ts, identity.ts): recomputing activations changes memory and
  // time, not the result (the losses agree to float rounding, test/python/test_resources.py).
  gradientCheckpointing: z
    .union([z.literal('auto'), z.boolean()])
    .default('auto')
    .describe(
      'recompute activations in the backward pass to save memory; auto: on for models of 1e9 parameters and more',
    ),
});

export const EVAL_ENGINES = ['auto', 'onnx', 'torch'] as const;

/** Weights the onnx engine evaluates with: the fp32 export, or its int8 variant (trainer/quantize.py). */
export const EVAL_PRECISIONS = ['fp32', 'int8'] as const;
export type EvalPrecision = (typeof EVAL_PRECISIONS)[number];
/**
 * How int8 exports are quantized (trainer/quantize.py `scheme`): SmoothQuant rescaling, then int8
 * weights per output channel and activations per token.
 */
export const INT8_SCHEME = 'per-token';
/**
 * The int8 export's identity: the scheme and its weight codes. It is in the int8 export's prefix
 * and in every int8 evaluation key, so another scheme or encoding is another export and another
 * evaluation. `u8`: uint8 weight codes (MLAS's U8U8 GEMM), since int8 ones clipped in its AVX2
 * kernel (trainer/pertoken.py); the int8-weight exports written before are never reused.
 */
export const INT8_EXPORT_ID = `${INT8_SCHEME}-u8`;

export const evalSchema = z.strictObject({
  maxNewTokens: posInt.default(32),
  batchSize: posInt.default(8),
  // No default: one in the parsed config would change every evaluation key written before it.
  longPrompt: z
    .enum(['truncate', 'error'])
    .optional()
    .describe(
      "a test prompt longer than the model's context less maxNewTokens: truncate (default: cut from the left, " +
        'keeping the question) or error (the item is not run, its id and reason are in predictions.jsonl); ' +
        'both are counted in the run result',
    ),
  threads: posInt.optional().describe('ONNX Runtime intra-op threads; default: all cores'),
  // No default, like longPrompt: absent is fp32, and fp32 (absent or written) stays out of every key
  // (plan.ts), so configs written before int8 existed keep their run and evaluation keys.
  precision: z
    .union([z.enum(EVAL_PRECISIONS), z.array(z.enum(EVAL_PRECISIONS)).min(1)])
    .optional()
    .describe(
      'onnx engine weights: fp32 (default) or int8 (the export with SmoothQuant rescaling, int8 weights per channel and activations per token, lm_head and embeddings kept fp32; ' +
        'its greedy-token agreement with fp32 is checked at export and marked in the result when low); ' +
        'a list such as [fp32, int8] evaluates every run in each, and the report shows the exact-match delta',
    ),
  engine: z
    .enum(EVAL_ENGINES)
    .default('auto')
    .describe(
      'onnx: export, then onnxruntime-node on the cpu queue; torch: HF generate on the gpu queue (bf16 on CUDA, ' +
        'unmerged adapter); auto: torch when training.device is cuda or the model is large, else onnx',
    ),
});

export const retentionSchema = z.strictObject({
  keepLast: posInt.default(3).describe('newest committed checkpoints kept per run (the newest is never deleted)'),
  keepBest: z.boolean().default(true).describe('also keep the checkpoint with the lowest training loss'),
});

/** How a speculative pair gets its proposals. */
export const DRAFTING_METHODS = ['model', 'prompt-lookup', 'distilled'] as const;
export type DraftingMethod = (typeof DRAFTING_METHODS)[number];
/** Prompt lookup's longest n-gram when `maxNgram` is not set. */
export const DEFAULT_MAX_NGRAM = 3;
/** How a distilled draft trains: `full` fine-tunes every weight, `lora` trains an adapter merged at the end. */
export const DISTILL_METHODS = ['lora', 'full'] as const;
/**
 * `drafting: distilled` settings left unset (applied by the plan, not the parser: a default in the
 * parsed config would change the grid id of every config written before distillation existed).
 * The learning rate depends on the method: an adapter trains at a rate that would wreck a full fine-tune.
 */
export const DEFAULT_DISTILL = { steps: 200, method: 'lora', lr: { lora: 2e-4, full: 5e-5 } } as const;

const distillSchema = z
  .strictObject({
    steps: posInt.optional().describe(`optimizer steps of the draft; default ${DEFAULT_DISTILL.steps}`),
    lr: z
      .number()
      .positive()
      .optional()
      .describe(`default ${DEFAULT_DISTILL.lr.lora} (lora), ${DEFAULT_DISTILL.lr.full} (full)`),
    maxNewTokens: posInt
      .optional()
      .describe("target tokens generated per training prompt (the draft's answers); default eval.maxNewTokens"),
    method: z.enum(DISTILL_METHODS).optional().describe(`lora (default; merged into the draft at the end) or full`),
  })
  .describe(
    "drafting: distilled: the draft is fine-tuned on the target's greedy outputs over the training prompts; " +
      'batch size, optimizer, schedule and seed come from training',
  );

/**
 * Experiment tracking (off unless given). Only the MLflow REST API is spoken: a tracker that is
 * down is retried briefly, then skipped with a warning (src/tracking/): it never fails a run.
 */
export const trackingSchema = z.strictObject({
  mlflow: z.strictObject({
    uri: z
      .string()
      .regex(/^https?:\/\/[^/\s]+(?:\/\S*)?$/, 'an http:// or https:// URL of an MLflow tracking server')
      .describe('MLflow tracking server, e.g. http://127.0.0.1:5000'),
    experiment: z.string().min(1).max(500).optional().describe("MLflow experiment name; default: the grid's name"),
  }),
});

export const gridSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]*$/, 'lowercase letters, digits, ".", "_" or "-"')
    .max(64),
  store: z
    .string()
    .regex(STORE_URL, 'a file://dir or s3://bucket/prefix URL, or a local directory path')
    .default('file://.data/store')
    .describe('file://dir or s3://bucket/prefix'),
  data: dataSchema.default(() => dataSchema.parse({})),
  models: z.array(modelSchema).min(1),
  methods: z.array(methodEntrySchema).min(1),
  training: trainingSchema.default(() => trainingSchema.parse({})),
  eval: evalSchema.default(() => evalSchema.parse({})),
  speculative: z
    .array(
      z.strictObject({
        target: z.string().describe('model name from models'),
        // Optional fields without defaults: a default would appear in the parsed config and so
        // change the grid id of every config written before prompt lookup existed.
        drafting: z
          .enum(DRAFTING_METHODS)
          .optional()
          .describe(
            'model (default): `draft` proposes tokens; prompt-lookup: the n-gram that followed the latest match in ' +
              'the prompt and output so far is proposed, no draft model (suits extractive QA); distilled: `draft` ' +
              "fine-tuned on the target's own greedy outputs first (python -m trainer distill), then proposes",
          ),
        draft: z
          .string()
          .optional()
          .describe("model name from models (drafting: model or distilled); must share the target's tokenizer"),
        maxNgram: posInt
          .max(16)
          .optional()
          .describe(`prompt-lookup: longest n-gram looked up; default ${DEFAULT_MAX_NGRAM}`),
        distill: distillSchema.optional(),
        gamma: posInt.max(64).default(4).describe('tokens proposed per target pass'),
      }),
    )
    .default([]),
  concurrency: z
    .strictObject({
      gpu: posInt.default(1),
      cpu: nonNegInt.default(2).describe('runs in flight = gpu + cpu; 0 runs strictly one at a time per GPU'),
    })
    .default({ gpu: 1, cpu: 2 }),
  // Older checkpoints only serve as fallbacks for a corrupt newest one; 3 survive two bad uploads.
  retention: retentionSchema.default(() => retentionSchema.parse({})),
  tracking: trackingSchema.optional().describe('experiment tracking; off by default'),
});

/** A grid config as written (defaults not yet applied). */
export type GridConfigInput = z.input<typeof gridSchema>;
/** A validated grid config with every default applied. */
export type GridConfig = z.output<typeof gridSchema>;
export type ModelConfig = z.output<typeof modelSchema>;
export type MethodEntry = z.output<typeof methodEntrySchema>;
export type TrainingConfig = z.output<typeof trainingSchema>;
export type EvalConfig = z.output<typeof evalSchema>;
export type DataConfig = z.output<typeof dataSchema>;
export type CustomDatasetConfig = z.output<typeof customDatasetSchema>;
export type RetentionConfig = z.output<typeof retentionSchema>;
export type TrackingConfig = z.output<typeof trackingSchema>;
/** One `speculative[]` pair as parsed. */
export type SpeculativeConfig = GridConfig['speculative'][number];

/** JSON Schema (draft 2020-12) for editors: `# yaml-language-server: $schema=…`. */
export function gridJsonSchema(): unknown {
  return z.toJSONSchema(gridSchema, { io: 'input', target: 'draft-2020-12' });
}
