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
 * Groups runnable items into batches of at most `batchSize`, sorted by length so that each
 * batch pads as little as possible. The sort is stable (ties keep input order), which keeps the
 * plan deterministic.
 */
export function planBatches<T extends { index: number; tokens: readonly number[] }>(
  items: readonly T[],
  batchSize: number,
): T[][] {
  const sorted = [...items].sort((a, b) => a.tokens.length - b.tokens.length || a.index - b.index);
  const batches: T[][] = [];
  for (let i = 0; i < sorted.length; i += batchSize) batches.push(sorted.slice(i, i + batchSize));
  return batches;
}
