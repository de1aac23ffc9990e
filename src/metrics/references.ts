/**
 * The reference-handling rules every QA metric shares, kept in one place so that the metrics
 * cannot drift apart on edge cases.
 */

/**
 * Scores a prediction against each reference and keeps the best score (SQuAD's
 * `metric_max_over_ground_truths`). An empty reference list scores 0: nothing can be matched, and
 * throwing would abort a whole evaluation for one unlabeled row.
 */
export function maxOverReferences(
  prediction: string,
  references: readonly string[],
  metric: (prediction: string, reference: string) => number,
): number {
  let best = 0;
  for (const reference of references) {
    const score = metric(prediction, reference);
    if (score > best) best = score;
  }
  return best;
}

/**
 * Token-level edge cases: two answers that both normalize to nothing (empty, or punctuation and
 * articles only) are identical, so they score 1, as exact match already does; exactly one empty
 * side scores 0. This is SQuAD v2's rule; v1.1 scored both-empty as 0, which made F1 < EM possible.
 * Returns undefined when neither side is empty and the metric must compute.
 */
export function emptyTokensScore(a: readonly string[], b: readonly string[]): number | undefined {
  if (a.length === 0 && b.length === 0) return 1;
  if (a.length === 0 || b.length === 0) return 0;
  return undefined;
}

/** Size of the multiset intersection of two token lists (Python's `Counter(a) & Counter(b)`). */
export function commonTokenCount(a: readonly string[], b: readonly string[]): number {
  const counts = new Map<string, number>();
  for (const token of a) counts.set(token, (counts.get(token) ?? 0) + 1);
  let common = 0;
  for (const token of b) {
    const left = counts.get(token) ?? 0;
    if (left > 0) {
      common++;
      counts.set(token, left - 1);
    }
  }
  return common;
}
