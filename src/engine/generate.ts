/**
 * Batched greedy generation over many prompts, with throughput and latency accounting that
 * cannot be inflated by padding or by rows that keep running after their EOS.
 */
import { performance } from 'node:perf_hooks';
import { decodeBatch } from './decode-batch';
import { generationPlan, planBatches, preparePrompts, type LongPromptPolicy, type PreparedPrompt } from './prompts';
import { scoreContinuation, type ContinuationScore } from './score';
import type { FinishReason, StopRules } from './sequence-state';
import type { EngineModel } from './session';
import { percentile } from './stats';

/** Options of {@link generate}. */
export interface GenerateOptions {
  /** Most tokens generated per prompt (the EOS that ends a sequence counts as one). @default 32 */
  maxNewTokens?: number;
  /** Prompts per batch; prompts are sorted by length before batching to minimize padding. @default 8 */
  batchSize?: number;
  /**
   * Reuse the KV cache between steps. `false` recomputes the whole prefix at every step: same
   * tokens, quadratic cost — the baseline the KV-cache benchmark compares against.
   * @default true
   */
  useCache?: boolean;
  /** Token ids that end a sequence. @default engine.json's eosTokenIds */
  eosTokenIds?: readonly number[];
  /**
   * Token sequences that end a sequence when its output ends with one (e.g. the tokens of
   * "\n\n"); the matched tokens are removed from the output and finishReason is 'stop'.
   * @default []
   */
  stopSequences?: readonly (readonly number[])[];
  /**
   * A prompt longer than maxPositions − maxNewTokens is cut from the left (`truncate`, flagged
   * with `truncated: true`) or not run (`error`: finishReason 'error').
   * @default 'truncate'
   */
  longPrompt?: LongPromptPolicy;
  /**
   * Reference continuations to score, one per prompt: `scores[i]` is what
   * `scoreContinuation(model, prompts, scoreContinuations)[i]` returns, computed from the
   * generation's own prefill (docs/contracts.md §2, "one prefill per item"). Items that prefill
   * cannot serve (a truncated prompt, a continuation that does not fit, an empty one) are scored
   * by scoreContinuation itself, so the values are the same either way.
   */
  scoreContinuations?: readonly (readonly number[])[];
}

/** One prompt's generation. */
export interface GeneratedSequence {
  /** Generated token ids, excluding the EOS (or stop sequence) that ended the sequence. */
  tokens: number[];
  /** 'eos' / 'stop': ended by an EOS id / stop sequence; 'length': hit maxNewTokens; 'error': not run. */
  finishReason: FinishReason;
  /** True when the sequence was cut off by maxNewTokens (finishReason 'length'). */
  hitLimit: boolean;
  /** True when the prompt was cut from the left to fit maxPositions − maxNewTokens. */
  truncated: boolean;
  /** Tokens generated for this sequence including its EOS/stop tokens: its share of throughput. */
  generatedTokens: number;
  /** Why the prompt was not run (finishReason 'error'). */
  error?: string;
}

/** Timings of one batch. */
export interface BatchTiming {
  /** Number of prompts in the batch. */
  size: number;
  /** Padded prompt width of the batch. */
  promptWidth: number;
  /** Time to first token: prefill plus picking the first tokens, ms. */
  ttftMs: number;
  /** Latency of each later decode step, ms; each step yields one token per unfinished row. */
  stepMs: number[];
}

/** Totals of a {@link generate} call. Percentiles are null when there is no sample. */
export interface GenerationStats {
  /** Σ generatedTokens over sequences (pads and post-EOS tokens of finished rows excluded). */
  generatedTokens: number;
  /** Wall time of the whole generation (all batches), ms. */
  wallMs: number;
  /** generatedTokens / wall time in seconds. */
  tokensPerSecond: number;
  /** Median time to first token over batches, ms. */
  ttftP50Ms: number | null;
  /** Median per-token latency (decode step time) over all steps of all batches, ms. */
  perTokenP50Ms: number | null;
  /** 95th percentile of the per-token latency, ms. */
  perTokenP95Ms: number | null;
  /** Fraction of the sequences that ran (no error) that hit maxNewTokens; 0 when none ran. */
  hitLimitFraction: number;
  batches: BatchTiming[];
}

/** Result of {@link generate}: `sequences[i]` belongs to `prompts[i]`. */
export interface GenerateResult {
  sequences: GeneratedSequence[];
  stats: GenerationStats;
  /** With `scoreContinuations`: the score of each, in input order. */
  scores?: ContinuationScore[];
  /** With `scoreContinuations`: how many were scored from the generation's prefill (the rest in a pass of their own). */
  scoredInPrefill?: number;
}

/** The options generate and generateSpeculative share, with defaults applied and checked. */
export interface CheckedOptions {
  rules: StopRules;
  batchSize: number;
  longPrompt: 'truncate' | 'error';
  /** Prompts longer than this are truncated (or rejected): room is left for maxNewTokens. */
  maxPromptLength: number;
}

/**
 * Checks the shared options against a model's (or a model pair's) position limit; `fn` names the
 * caller in the messages. @throws TypeError naming the option, the value and what was expected.
 */
export function checkSharedOptions(
  fn: string,
  maxPositions: number,
  options: Pick<GenerateOptions, 'maxNewTokens' | 'eosTokenIds' | 'stopSequences' | 'longPrompt'> & {
    batchSize: number;
    eosTokenIds: readonly number[];
  },
): CheckedOptions {
  const { maxNewTokens = 32, batchSize, eosTokenIds, stopSequences = [], longPrompt = 'truncate' } = options;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1 || maxNewTokens >= maxPositions) {
    throw new TypeError(`${fn}: maxNewTokens must be an integer in [1, ${maxPositions - 1}], got ${maxNewTokens}`);
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new TypeError(`${fn}: batchSize must be a positive integer, got ${batchSize}`);
  }
  if (eosTokenIds.some((id) => !Number.isInteger(id) || id < 0)) {
    throw new TypeError(`${fn}: eosTokenIds must be non-negative integers, got ${JSON.stringify(eosTokenIds)}`);
  }
  if (stopSequences.some((seq) => seq.length === 0))
    throw new TypeError(`${fn}: stopSequences must not contain an empty sequence`);
  if (longPrompt !== 'truncate' && longPrompt !== 'error') {
    throw new TypeError(`${fn}: longPrompt must be 'truncate' or 'error', got ${String(longPrompt)}`);
  }
  const rules: StopRules = { eosTokenIds: new Set(eosTokenIds), stopSequences, maxNewTokens };
  return { rules, batchSize, longPrompt, maxPromptLength: maxPositions - maxNewTokens };
}

function resolveOptions(model: EngineModel, options: GenerateOptions) {
  const checked = checkSharedOptions('generate', model.config.maxPositions, {
    ...options,
    batchSize: options.batchSize ?? 8,
    eosTokenIds: options.eosTokenIds ?? model.config.eosTokenIds,
  });
  return { ...checked, useCache: options.useCache ?? true, continuations: options.scoreContinuations };
}

/**
 * Whether item `p`'s continuation can be scored in its generation prefill with exactly the value
 * scoreContinuation gives: the prompt ran untruncated, and prompt + continuation fit maxPositions
 * (else scoreContinuation would cut the prompt differently), with ids inside the vocabulary.
 */
function scorableInPrefill(p: PreparedPrompt, continuation: readonly number[], model: EngineModel): boolean {
  const { maxPositions, vocabSize } = model.config;
  return (
    p.error === undefined &&
    !p.truncated &&
    continuation.length > 0 &&
    p.tokens.length + continuation.length <= maxPositions &&
    continuation.every((id) => Number.isInteger(id) && id >= 0 && id < vocabSize)
  );
}

/**
 * Greedy decoding of token-id prompts. Prompts are sorted by length into batches of at most
 * `batchSize` (cut where padding would cost more than another batch: planBatches), left-padded,
 * prefilled, then decoded one token per step; results come back in input order.
 * Empty prompts and out-of-vocabulary ids give per-item errors instead of throwing.
 * @throws TypeError on invalid options; FeedError / SessionRunError when ORT fails.
 */
export async function generate(
  model: EngineModel,
  prompts: readonly (readonly number[])[],
  options: GenerateOptions = {},
): Promise<GenerateResult> {
  // In an engine process the whole call (every batch and step) runs there: one message each way.
  const remote = model.remote();
  if (remote)
    return remote.host.call<GenerateResult>({ op: 'generate', model: remote.id, prompts: [...prompts], options });
  const { rules, batchSize, useCache, longPrompt, maxPromptLength, continuations } = resolveOptions(model, options);
  if (continuations && continuations.length !== prompts.length)
    throw new TypeError(`generate: ${prompts.length} prompts but ${continuations.length} scoreContinuations`);
  const prepared = preparePrompts(prompts, maxPromptLength, model.config.vocabSize, longPrompt);
  // Rows whose continuation cannot ride on the prefill get an empty one there, scored apart below.
  const joint =
    continuations && useCache ? prepared.map((p) => scorableInPrefill(p, continuations[p.index]!, model)) : [];
  const scores: ContinuationScore[] = [];
  const sequences: GeneratedSequence[] = prepared.map((p) => ({
    tokens: [],
    finishReason: 'error',
    hitLimit: false,
    truncated: p.truncated,
    generatedTokens: 0,
    ...(p.error !== undefined && { error: p.error }),
  }));
  const batches: BatchTiming[] = [];
  const start = performance.now();
  for (const batch of planBatches(
    prepared.filter((p) => p.error === undefined),
    batchSize,
    generationPlan(rules.maxNewTokens),
  )) {
    const outcome = await decodeBatch(
      model,
      batch.map((p) => p.tokens),
      rules,
      useCache,
      continuations && useCache ? batch.map((p) => (joint[p.index] ? continuations[p.index]! : [])) : undefined,
    );
    batch.forEach((item, row) => {
      if (joint[item.index]) {
        const tokenCount = continuations![item.index]!.length;
        scores[item.index] = { sumLogProb: outcome.sumLogProbs![row]!, tokenCount, truncated: false };
      }
      const state = outcome.states[row]!;
      const reason = state.finishReason ?? 'length';
      sequences[item.index] = {
        tokens: state.tokens,
        finishReason: reason,
        hitLimit: reason === 'length',
        truncated: item.truncated,
        generatedTokens: state.generated,
      };
    });
    const promptWidth = Math.max(...batch.map((p) => p.tokens.length));
    batches.push({ size: batch.length, promptWidth, ttftMs: outcome.ttftMs, stepMs: outcome.stepMs });
  }
  const wallMs = performance.now() - start;
  let scoredInPrefill = 0;
  if (continuations) {
    const rest = prepared.filter((p) => !joint[p.index]).map((p) => p.index);
    scoredInPrefill = prompts.length - rest.length;
    const apart = await scoreContinuation(
      model,
      rest.map((i) => prompts[i]!),
      rest.map((i) => continuations[i]!),
      { batchSize },
    );
    rest.forEach((i, k) => (scores[i] = apart[k]!));
  }
  const ran = sequences.filter((s) => s.finishReason !== 'error');
  const generatedTokens = ran.reduce((sum, s) => sum + s.generatedTokens, 0);
  const steps = batches.flatMap((b) => b.stepMs);
  return {
    sequences,
    ...(continuations ? { scores, scoredInPrefill } : {}),
    stats: {
      generatedTokens,
      wallMs,
      tokensPerSecond: wallMs > 0 ? generatedTokens / (wallMs / 1000) : 0,
      ttftP50Ms: percentile(
        batches.map((b) => b.ttftMs),
        50,
      ),
      perTokenP50Ms: percentile(steps, 50),
      perTokenP95Ms: percentile(steps, 95),
      hitLimitFraction: ran.length > 0 ? ran.filter((s) => s.hitLimit).length / ran.length : 0,
      batches,
    },
  };
}
