/** Perplexity from summed natural-log probabilities. */

/**
 * exp(−sumLogProb / tokenCount). Pass corpus totals (Σ log p over all answer tokens, Σ tokens) for
 * corpus perplexity; averaging per-item perplexities instead overweights short answers.
 * @throws RangeError when tokenCount is not a positive integer or sumLogProb is not finite.
 */
export function perplexity(sumLogProb: number, tokenCount: number): number {
  if (!Number.isInteger(tokenCount) || tokenCount <= 0) {
    throw new RangeError(`perplexity: tokenCount must be a positive integer, got ${tokenCount}`);
  }
  if (!Number.isFinite(sumLogProb)) throw new RangeError(`perplexity: sumLogProb must be finite, got ${sumLogProb}`);
  return Math.exp(-sumLogProb / tokenCount);
}
