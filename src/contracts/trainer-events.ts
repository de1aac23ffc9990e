/**
 * The trainer's stdout protocol (docs/contracts.md §2, STYLE.md rule 12): one JSON object per line,
 * discriminated by `event`. `TRAINER_EVENTS` is the one table on this side: the TypeScript union,
 * the runtime parser and the published schema/trainer-protocol.json all derive from it;
 * trainer/events.py's `EVENTS` is the table on the Python side, which `emit()` checks every line
 * against, and test/python/test_trainer_protocol.py compares the two through the JSON file.
 *
 * Field kinds: `int` (a JSON integer), `float` (a number, or null: the trainer prints floats that
 * are not finite, and a loss it does not have, as null), `str`, `bool`, `ints` (a list of integers:
 * token ids), `floats` (a list of numbers: step timings).
 */
import { z } from 'zod';
import { FAILURES, TRAINER_EXIT } from './failures';

const KINDS = {
  int: z.number().int(),
  float: z.number().nullable(),
  str: z.string(),
  bool: z.boolean(),
  ints: z.array(z.number().int()),
  floats: z.array(z.number()),
} as const;
type FieldKind = keyof typeof KINDS;

export const TRAINER_EVENTS = {
  start: { step: 'int', maxSteps: 'int', device: 'str', trainableParams: 'int', totalParams: 'int' },
  step: {
    step: 'int',
    loss: 'float',
    lr: 'float',
    gradNorm: 'float',
    tokens: 'int',
    tokensPerSec: 'float',
    elapsedMs: 'int',
    stepMs: 'int',
  },
  checkpoint: { step: 'int', dir: 'str', loss: 'float' },
  preempting: { signal: 'str', signalStep: 'int', step: 'int' },
  /** Just before `done`: peak memory (CUDA allocator peak or peak RSS, per source) and MFU (null where unknown). */
  resources: {
    peakMemoryBytes: 'int',
    peakMemorySource: 'str',
    mfu: 'float',
    flopsPerToken: 'float',
    peakFlops: 'float',
    gradientCheckpointing: 'bool',
  },
  done: { step: 'int', finalDir: 'str', trainLoss: 'float', trainPerplexity: 'float' },
  error: { type: 'str', message: 'str' },
  // The torch engine (trainer/generate.py): one `sequence` per test item, one `batch` per generate
  // call (the engine's BatchTiming), one `score` per item, then `generated` with the totals.
  generating: { device: 'str', precision: 'str', items: 'int', maxPositions: 'int' },
  sequence: {
    index: 'int',
    tokens: 'ints',
    finishReason: 'str',
    generatedTokens: 'int',
    truncated: 'bool',
    error: 'str',
  },
  batch: { size: 'int', promptWidth: 'int', ttftMs: 'float', stepMs: 'floats', done: 'int', total: 'int' },
  score: { index: 'int', sumLogProb: 'float', tokenCount: 'int', truncated: 'bool', error: 'str' },
  generated: { generatedTokens: 'int', wallMs: 'float', acceptanceRate: 'float', targetOnlyTokensPerSec: 'float' },
  export: {
    outputDir: 'str',
    maxAbsDiff: 'float',
    prefillMaxAbsDiff: 'float',
    decodeMaxAbsDiff: 'float',
    /** max |Δ logits| / max |logits|: what the export's tolerance bounds. */
    maxRelDiff: 'float',
    /** float16 (a CUDA export) or float32; the graph's inputs and outputs are float32 either way. */
    weightDtype: 'str',
    bytes: 'int',
    exportSeconds: 'float',
    seconds: 'float',
  },
  // `quantize` (trainer/quantize.py): the int8 variant of an export and its greedy-token agreement with fp32.
  quantize: {
    outputDir: 'str',
    /** dynamic (quantize_dynamic), smoothquant (SmoothQuant rescaling, then quantize_dynamic), per-token (SmoothQuant rescaling, then MatMulIntegerToFloat with per-token activation scales) or matmul-nbits (MatMulNBits, 8 bits). */
    scheme: 'str',
    /** Share of fp32 greedy tokens that the int8 graph also predicts (teacher-forced) on the fixed parity prompts. */
    agreement: 'float',
    threshold: 'float',
    belowThreshold: 'bool',
    parityTokens: 'int',
    bytes: 'int',
    quantizeSeconds: 'float',
    seconds: 'float',
  },
  // `stage` (trainer/stage.py): bytes on disk so far while a hub model downloads, then where it landed.
  staging: { repoId: 'str', bytes: 'int', totalBytes: 'int' },
  staged: { repoId: 'str', revision: 'str', dir: 'str', bytes: 'int', files: 'int' },
} as const satisfies Record<string, Record<string, FieldKind>>;

export type TrainerEventName = keyof typeof TRAINER_EVENTS;
type Fields<F extends Record<string, FieldKind>> = { -readonly [K in keyof F]: z.infer<(typeof KINDS)[F[K]]> };
export type TrainerEventOf<E extends TrainerEventName> = { event: E } & Fields<(typeof TRAINER_EVENTS)[E]>;
/** One line of trainer stdout, narrowed by `event`. */
export type TrainerEvent = { [E in TrainerEventName]: TrainerEventOf<E> }[TrainerEventName];

const schemas: Record<string, z.ZodType> = Object.fromEntries(
  Object.entries(TRAINER_EVENTS).map(([name, fields]) => [
    name,
    // Extra fields are dropped, not rejected: a newer trainer may add one before this side reads it.
    z.object({
      event: z.literal(name),
      ...Object.fromEntries(Object.entries(fields).map(([f, kind]) => [f, KINDS[kind as FieldKind]])),
    }),
  ]),
);

export type ParsedLine = { ok: true; event: TrainerEvent } | { ok: false; reason: string };

/** One stdout line → an event, or why it is not one (not JSON, no or an unknown `event`, a missing or mistyped field). */
export function parseTrainerLine(line: string): ParsedLine {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const name = (raw as { event?: unknown } | null)?.event;
  if (typeof name !== 'string' || !Object.hasOwn(TRAINER_EVENTS, name)) {
    return {
      ok: false,
      reason: `event: got ${JSON.stringify(name)}; expected one of ${Object.keys(TRAINER_EVENTS).join(', ')}`,
    };
  }
  const parsed = (schemas[name] as z.ZodType).safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    return { ok: false, reason: `${name} event: ${issues}` };
  }
  return { ok: true, event: parsed.data as TrainerEvent };
}

/** What schema/trainer-protocol.json holds: the events, the trainer's failure types and its exit codes. */
export function trainerProtocol() {
  const failures = Object.fromEntries(
    Object.entries(FAILURES)
      .filter(([, f]) => 'trainerExit' in f)
      .map(([type, f]) => [type, { exitCode: (f as { trainerExit: number }).trainerExit, retryable: f.retryable }]),
  );
  return { events: TRAINER_EVENTS, failures, exitCodes: TRAINER_EXIT };
}

/** The committed file's exact text (regenerate: see test/unit/trainer-protocol.test.ts). */
export function trainerProtocolText(): string {
  return JSON.stringify(trainerProtocol(), null, 2) + '\n';
}
