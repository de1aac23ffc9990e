/**
 * The method spec of one run, typed from the grid schema to the activities and the trainer.
 *
 * The schema (src/config/schema.ts) parses a method entry as a discriminated union whose
 * hyperparameters may be lists (each list expands the grid). A run's spec is that entry with
 * every list-valued field narrowed to one value, `lr` lifted into the training config, plus the
 * `speculative` variant that a speculative pair plans. Defaults are applied once, by the schema:
 * every field a consumer reads is already resolved (the trainer's spec.py requires them rather
 * than defaulting them), so no consumer repeats a default. Switch on `method` to read a field.
 */
import type { MethodEntry } from '../config/schema';

/** `number | number[]` (a `many(...)` field) → `number`; other fields (targetModules: string[]) as they are. */
type One<V> = V extends readonly number[] ? number : V;

/** An entry with each hyperparameter list narrowed to one value (distributes over the union). */
export type ExpandedMethod<E = MethodEntry> = E extends unknown ? { [K in keyof E]: One<E[K]> } : never;

type WithoutLr<E> = E extends unknown ? Omit<E, 'lr'> : never;

/**
 * A speculative-decoding run: `draft` proposes `gamma` tokens per pass of the run's model, or,
 * with `promptLookup`, the run's own sequence does (no draft model). Exactly one of the two is
 * set; model-draft specs carry no `promptLookup` key, so their run keys are those they always had.
 */
export interface SpeculativeMethodSpec {
  method: 'speculative';
  /** The draft model's name (from the grid's models); absent with prompt lookup. */
  draft?: string;
  gamma: number;
  /** Prompt-lookup drafting: the longest n-gram looked up. */
  promptLookup?: { maxNgram: number };
  /** Distilled drafting: `draft` fine-tuned on the target's greedy outputs first (every setting resolved). */
  distill?: DistillSettings;
}

/** `drafting: distilled` as planned: the grid's `distill` object with every default applied. */
export interface DistillSettings {
  steps: number;
  lr: number;
  maxNewTokens: number;
  method: 'lora' | 'full';
}

/**
 * `spec-<draft>-g<γ>`, `spec-lookup-n<n>-g<γ>` or `spec-distill-<draft>-g<γ>`: the readable part
 * of a speculative run's keys.
 */
export function speculativeSlug(m: SpeculativeMethodSpec): string {
  if (m.promptLookup) return `spec-lookup-n${m.promptLookup.maxNgram}-g${m.gamma}`;
  return m.distill ? `spec-distill-${m.draft}-g${m.gamma}` : `spec-${m.draft}-g${m.gamma}`;
}

/** One concrete method configuration of a run (a method's own lr lives in the run's training config). */
export type MethodSpec = WithoutLr<ExpandedMethod> | SpeculativeMethodSpec;

export type MethodSpecName = MethodSpec['method'];

/** The variant of MethodSpec named `M`. */
export type MethodSpecOf<M extends MethodSpecName> = Extract<MethodSpec, { method: M }>;
