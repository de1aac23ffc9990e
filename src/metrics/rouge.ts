/**
 * ROUGE-L as UnifiedQA scores NarrativeQA: an LCS-based F-measure with alpha = 0.5 (so plain F1
 * of LCS precision and recall), each text cut to its first 100 words, max over references.
 *
 * Deviations from UnifiedQA's py-rouge setup, on purpose: tokens come from {@link normalizeAnswer}
 * like every other metric here (py-rouge keeps articles and splits on non-alphanumerics), and
 * there is no Porter stemming, so "running" and "run" do not match. Scores are therefore close to,
 * not identical with, the published NarrativeQA numbers.
 */
import { normalizedTokens } from './normalize';
import { emptyTokensScore, maxOverReferences } from './references';

/** py-rouge's `length_limit=100, length_limit_type='words'` in UnifiedQA's evaluator. */
const WORD_LIMIT = 100;

/** Length of the longest common subsequence of two token lists; O(|a|·|b|) time, O(|b|) memory. */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  let previous = new Array<number>(b.length + 1).fill(0);
  let current = new Array<number>(b.length + 1).fill(0);
  for (const tokenA of a) {
    for (let j = 1; j <= b.length; j++) {
      current[j] = tokenA === b[j - 1] ? previous[j - 1]! + 1 : Math.max(previous[j]!, current[j - 1]!);
    }
    [previous, current] = [current, previous];
  }
  return previous[b.length]!;
}

/** ROUGE-L F1 of the prediction against its best reference. */
export function rougeL(prediction: string, references: readonly string[]): number {
  return maxOverReferences(prediction, references, (p, r) => {
    const pred = normalizedTokens(p).slice(0, WORD_LIMIT);
    const ref = normalizedTokens(r).slice(0, WORD_LIMIT);
    const edge = emptyTokensScore(pred, ref);
    if (edge !== undefined) return edge;
    const lcs = lcsLength(pred, ref);
    if (lcs === 0) return 0;
    const precision = lcs / pred.length;
    const recall = lcs / ref.length;
    return (2 * precision * recall) / (precision + recall);
  });
}
