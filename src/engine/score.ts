/**
 * Log-likelihood of given continuations (reference answers) under the model, for held-out
 * perplexity: one teacher-forced forward pass per batch, no generation.
 */
import { LOGITS } from './contract';
import { fullInputs, leftPad, logitsToKeep } from './feeds';
import { KvCache } from './kv-cache';
import { logitsData, logProbAt } from './logits';
import { generationPlan, planBatches, preparePrompts } from './prompts';
import type { EngineModel } from './session';

/** Options of {@link scoreContinuation}. */
export interface ScoreOptions {
  /** Pairs per forward pass; pairs are sorted by total length before batching. @default 8 */
  batchSize?: number;
}

/** Log-likelihood of one continuation given its prompt. */
export interface ContinuationScore {
  /** Σ over continuation tokens of ln p(token | prompt, previous continuation tokens); 0 when empty. */
  sumLogProb: number;
  /** Number of continuation tokens scored (0 for an empty continuation or an error). */
  tokenCount: number;
  /** True when the prompt was cut from the left so that prompt + continuation fit maxPositions. */
  truncated: boolean;
  /** Why the pair was not scored: empty prompt, id outside the vocabulary, continuation too long. */
  error?: string;
}

interface ScoreItem {
  index: number;
  /** prompt + continuation */
  tokens: number[];
  promptLength: number;
}

/**
 * Scores `continuations[i]` after `prompts[i]` (token ids). The continuation is never truncated:
 * a too-long prompt loses tokens from the left, and a continuation that alone does not fit
 * maxPositions − 1 is a per-item error.
 * @throws TypeError when the two arrays differ in length or options are invalid.
 */
export async function scoreContinuation(
  model: EngineModel,
  prompts: readonly (readonly number[])[],
  continuations: readonly (readonly number[])[],
  options: ScoreOptions = {},
): Promise<ContinuationScore[]> {
  const remote = model.remote();
  if (remote) {
    return remote.host.call<ContinuationScore[]>({
      op: 'score',
      model: remote.id,
      prompts: [...prompts],
      continuations: [...continuations],
      options,
    });
  }
  const { batchSize = 8 } = options;
  if (prompts.length !== continuations.length) {
    throw new TypeError(`scoreContinuation: ${prompts.length} prompts but ${continuations.length} continuations`);
  }
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new TypeError(`scoreContinuation: batchSize must be a positive integer, got ${batchSize}`);
  const { maxPositions, vocabSize, padTokenId } = model.config;
  const scores: ContinuationScore[] = [];
  const items: ScoreItem[] = [];
  prompts.forEach((prompt, index) => {
    const continuation = continuations[index]!;
    const fail = (error: string) => scores.push({ sumLogProb: 0, tokenCount: 0, truncated: false, error });
    // The first continuation token needs at least one prompt token as context.
    if (continuation.length > maxPositions - 1)
      return fail(`continuation has ${continuation.length} tokens, more than ${maxPositions - 1}`);
    const [checked] = preparePrompts([prompt], maxPositions - continuation.length, vocabSize, 'truncate');
    const [checkedCont] = preparePrompts([continuation], maxPositions, vocabSize, 'error');
    if (checked!.error !== undefined) return fail(checked!.error);
    if (continuation.length > 0 && checkedCont!.error !== undefined) return fail(`continuation: ${checkedCont!.error}`);
    scores.push({ sumLogProb: 0, tokenCount: continuation.length, truncated: checked!.truncated });
    if (continuation.length > 0) {
      items.push({ index, tokens: [...checked!.tokens, ...continuation], promptLength: checked!.tokens.length });
    }
  });
  // one pass per batch: the plan of a prefill with no decode steps
  for (const batch of planBatches(items, batchSize, generationPlan(1))) {
    const padded = leftPad(
      batch.map((item) => item.tokens),
      padTokenId,
    );
    const cache = KvCache.empty(model.config, batch.length);
    // Every position: rows' continuations end in the last column but start in different ones.
    const outputs = await model.run({ ...fullInputs(padded), ...cache.feed(), ...logitsToKeep(model.inputNames, 0) }, [
      LOGITS,
    ]);
    try {
      const { data, seq } = logitsData(outputs[LOGITS], batch.length, vocabSize);
      batch.forEach((item, row) => {
        const offset = padded.width - item.tokens.length - (padded.width - seq); // an export may keep fewer
        let sum = 0;
        // The logits at position j − 1 predict token j.
        for (let j = item.promptLength; j < item.tokens.length; j++) {
          sum += logProbAt(data, (row * seq + offset + j - 1) * vocabSize, vocabSize, item.tokens[j]!);
        }
        scores[item.index]!.sumLogProb = sum;
      });
    } finally {
      cache.dispose();
      outputs[LOGITS]?.dispose();
    }
  }
  return scores;
}
