/**
 * Answer-level QA metrics: exact match, token F1 and the two Jaccard variants. Each takes one
 * prediction and a list of references and returns the best score over the references, in [0, 1].
 *
 * Tokenization, for all of them: {@link normalizeAnswer} (lowercase, no punctuation, no articles,
 * collapsed whitespace), then whitespace tokens. Edge cases follow {@link emptyTokensScore} and
 * {@link maxOverReferences}: an empty reference list scores 0; prediction and reference that both
 * normalize to nothing score 1.
 */
import { normalizeAnswer, normalizedTokens } from './normalize';
import { commonTokenCount, emptyTokensScore, maxOverReferences } from './references';

/** 1 when the normalized prediction equals some normalized reference, else 0. */
export function exactMatch(prediction: string, references: readonly string[]): number {
  return maxOverReferences(prediction, references, (p, r) => (normalizeAnswer(p) === normalizeAnswer(r) ? 1 : 0));
}

/** SQuAD token F1: harmonic mean of token precision and recall on the multiset intersection. */
export function tokenF1(prediction: string, references: readonly string[]): number {
  return maxOverReferences(prediction, references, (p, r) => {
    const pred = normalizedTokens(p);
    const ref = normalizedTokens(r);
    const edge = emptyTokensScore(pred, ref);
    if (edge !== undefined) return edge;
    const common = commonTokenCount(pred, ref);
    if (common === 0) return 0;
    const precision = common / pred.length;
    const recall = common / ref.length;
    return (2 * precision * recall) / (precision + recall);
  });
}

/**
 * The study's Jaccard similarity: common tokens / tokens of the longer answer.
 *
 * "Common tokens" is the multiset intersection (a token repeated twice on both sides counts twice),
 * so the score is 1 only for equal token multisets and repeating a correct word cannot raise it
 * past what the reference supports. Dividing by the longer side (not the union) is the study's
 * definition; it equals min(precision, recall) of {@link tokenF1}.
 */
export function jaccardStudy(prediction: string, references: readonly string[]): number {
  return maxOverReferences(prediction, references, (p, r) => {
    const pred = normalizedTokens(p);
    const ref = normalizedTokens(r);
    const edge = emptyTokensScore(pred, ref);
    if (edge !== undefined) return edge;
    return commonTokenCount(pred, ref) / Math.max(pred.length, ref.length);
  });
}

/** Textbook Jaccard index on token sets: |A ∩ B| / |A ∪ B| (duplicates ignored). */
export function jaccardSet(prediction: string, references: readonly string[]): number {
  return maxOverReferences(prediction, references, (p, r) => {
    const pred = new Set(normalizedTokens(p));
    const ref = new Set(normalizedTokens(r));
    const edge = emptyTokensScore([...pred], [...ref]);
    if (edge !== undefined) return edge;
    let intersection = 0;
    for (const token of pred) if (ref.has(token)) intersection++;
    return intersection / (pred.size + ref.size - intersection);
  });
}
