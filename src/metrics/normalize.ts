/**
 * Answer normalization shared by every QA metric: the SQuAD / UnifiedQA `normalize_answer`.
 *
 * Steps, in the reference's order: lowercase → drop ASCII punctuation (Python's
 * `string.punctuation`) → replace the articles a/an/the by a space → collapse whitespace.
 */

// Python's string.punctuation, exactly: !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~
const PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g;

// Python's `\b` is Unicode-aware while JavaScript's is ASCII-only, so "éa" would lose its "a" with
// /\ba\b/. Lookarounds over Python's \w class ([\p{L}\p{N}_]) reproduce the reference's boundaries.
const ARTICLES = /(?<![\p{L}\p{N}_])(?:a|an|the)(?![\p{L}\p{N}_])/gu;

/** Normalizes an answer string exactly as SQuAD's `normalize_answer` (used by UnifiedQA). */
export function normalizeAnswer(text: string): string {
  const lowered = text.toLowerCase();
  const noPunct = lowered.replace(PUNCTUATION, '');
  const noArticles = noPunct.replace(ARTICLES, ' ');
  return answerTokens(noArticles).join(' ');
}

/** Whitespace tokens of an already-normalized string (Python's `str.split()`); '' → []. */
export function answerTokens(normalized: string): string[] {
  const trimmed = normalized.trim();
  return trimmed === '' ? [] : trimmed.split(/\s+/u);
}

/** Normalizes, then splits into whitespace tokens: the token list every token metric uses. */
export function normalizedTokens(text: string): string[] {
  return answerTokens(normalizeAnswer(text));
}
