/**
 * Per-prompt checks and the batch plan. Bad prompts become per-item errors instead of failing the
 * whole evaluation: one empty row in a dataset must not cost the other few thousand.
 */

/** What to do with a prompt that does not fit in `maxPositions` together with its new tokens. */
export type LongPromptPolicy = 'truncate' | 'error';

/** A prompt after the checks: kept tokens, or the reason it cannot run. */
export interface PreparedPrompt {
  /** Position in the caller's input array. */
  index: number;
  /** Tokens to run (after left truncation); empty when `error` is set. */
  tokens: number[];
  /** True when tokens were cut from the left to fit. */
  truncated: boolean;
  /** Why this prompt is not run, if it is not. */
  error?: string;
}

/**
 * Checks each prompt: non-empty, ids within the vocabulary, at most `maxLength` tokens. A longer
 * prompt is cut from the left (keeping the end, where the question and answer cue are, as the
 * tokenizer contract does for training data) or marked as an error, per `policy`.
 */
export function preparePrompts(
  prompts: readonly (readonly number[])[],
  maxLength: number,
  vocabSize: number,
  policy: LongPromptPolicy,
): PreparedPrompt[] {
  return prompts.map((prompt, index) => {
    if (prompt.length === 0) return { index, tokens: [], truncated: false, error: 'empty prompt' };
    const bad = prompt.find((id) => !Number.isInteger(id) || id < 0 || id >= vocabSize);
    if (bad !== undefined) {
      return { index, tokens: [], truncated: false, error: `token id ${bad} outside the vocabulary [0, ${vocabSize})` };
    }
    if (prompt.length <= maxLength) return { index, tokens: [...prompt], truncated: false };
    if (policy === 'error') {
      return {
        index,
        tokens: [],
        truncated: false,
        error: `prompt has ${prompt.length} tokens, more than ${maxLength}`,
      };
    }
    return { index, tokens: prompt.slice(prompt.length - maxLength), truncated: true };
  });
}

/**
 * What one batch costs beyond its padded prompt tokens, in prefill tokens, and how many padded
 * prompt tokens one prefill should hold. Measured with the demo model (SmolLM2-135M fp32, ORT, 2
 * threads, Zen 4 with a 32 MiB L3; bench/eval-qa.ts and docs in bench/README.md): a prompt token
 * of prefill costs 1.6-1.9 ms, a batch's call about 30 tokens' worth and each of its decode steps
 * about 16 more whatever its row count; past about 5,000 padded tokens in one prefill every token
 * costs 20-25% more (16 x 600: 2.37 ms per token, 4 x 600: 1.94; the MLP's activations no longer
 * fit in cache), so a prefill holds at most 4,096.
 */
export const BATCH_COST_TOKENS = 32;
export const DECODE_STEP_COST_TOKENS = 16;
export const BATCH_TOKEN_BUDGET = 4096;

/** How planBatches cuts: see there. */
export interface BatchPlan {
  /** The fixed cost of one batch, in prefill tokens (its call and its decode steps). */
  overheadTokens: number;
  /** At most this many padded tokens (rows × the longest row) per batch; one row always fits. */
  tokenBudget: number;
}

/** The plan for a call that generates up to `maxNewTokens` (prefill, then maxNewTokens − 1 steps). */
export function generationPlan(maxNewTokens: number): BatchPlan {
  return {
    overheadTokens: BATCH_COST_TOKENS + DECODE_STEP_COST_TOKENS * Math.max(0, maxNewTokens - 1),
    tokenBudget: BATCH_TOKEN_BUDGET,
  };
}

/**
 * Groups runnable items into batches of at most `batchSize`, sorted by length so that each
 * batch pads as little as possible. The sort is stable (ties keep input order), which keeps the
 * plan deterministic.
 *
 * With a `plan` the cut points are chosen, not fixed: the plan minimises the padded prompt tokens
 * (rows × the longest row, per batch) plus `overheadTokens` per batch, by dynamic programming over
 * the sorted lengths, keeping every batch within `tokenBudget`. Long, spread-out prompts (400–800
 * tokens) then go in several narrower batches instead of all padding to the longest in one that
 * overflows the cache; short, similar prompts keep full batches. Without it, consecutive chunks
 * of `batchSize`.
 */
export function planBatches<T extends { index: number; tokens: readonly number[] }>(
  items: readonly T[],
  batchSize: number,
  plan?: BatchPlan,
): T[][] {
  const sorted = [...items].sort((a, b) => a.tokens.length - b.tokens.length || a.index - b.index);
  const batches: T[][] = [];
  if (!plan) {
    for (let i = 0; i < sorted.length; i += batchSize) batches.push(sorted.slice(i, i + batchSize));
    return batches;
  }
  // cost[j]: the cheapest plan of sorted[0, j); cut[j]: where its last batch starts. Ties go to
  // the larger batch (the smaller i), which keeps the plan as close to fixed chunks as it can.
  const n = sorted.length;
  const cost = new Float64Array(n + 1).fill(Infinity);
  const cut = new Int32Array(n + 1);
  cost[0] = 0;
  for (let j = 1; j <= n; j++) {
    const width = sorted[j - 1]!.tokens.length;
    const rows = Math.max(1, Math.min(batchSize, Math.floor(plan.tokenBudget / Math.max(1, width))));
    for (let i = j - Math.min(rows, j); i < j; i++) {
      const c = cost[i]! + (j - i) * width + plan.overheadTokens;
      if (c < cost[j]!) {
        cost[j] = c;
        cut[j] = i;
      }
    }
  }
  for (let j = n; j > 0; j = cut[j]!) batches.push(sorted.slice(cut[j]!, j));
  return batches.reverse();
}
