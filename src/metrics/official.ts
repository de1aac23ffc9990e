/**
 * UnifiedQA's per-format headline metric ("official" in reports): exact match for yes/no, SQuAD
 * token F1 for extractive, ROUGE-L for abstractive (NarrativeQA), and option-matched accuracy for
 * multiple choice — the generated text is mapped to the option it overlaps most, and that option
 * must be a reference — so a model that answers "(b) sock" or "a sock" for the option "sock" is
 * credited as UnifiedQA credits it.
 */
import { normalizedTokens } from './normalize';
import { exactMatch, tokenF1 } from './qa';
import { rougeL } from './rouge';

/** Index of the option with the highest token F1 against the prediction; -1 when none overlaps. */
export function matchOption(prediction: string, choices: readonly string[]): number {
  let best = -1;
  let bestScore = 0;
  choices.forEach((choice, i) => {
    const score = tokenF1(prediction, [choice]);
    if (score > bestScore) {
      best = i;
      bestScore = score;
    }
  });
  return best;
}

/** 1 when the option the prediction matches is a reference answer, else 0. */
export function optionMatchedAccuracy(
  prediction: string,
  choices: readonly string[],
  references: readonly string[],
): number {
  if (normalizedTokens(prediction).length === 0) return 0;
  const i = matchOption(prediction, choices);
  return i >= 0 ? exactMatch(choices[i]!, references) : 0;
}

export type QaFormatName = 'yes_no' | 'multiple_choice' | 'extractive' | 'abstractive';

export function officialScore(
  format: string,
  prediction: string,
  references: readonly string[],
  choices?: readonly string[],
): number {
  switch (format as QaFormatName) {
    case 'multiple_choice':
      return choices?.length
        ? optionMatchedAccuracy(prediction, choices, references)
        : exactMatch(prediction, references);
    case 'extractive':
      return tokenF1(prediction, references);
    case 'abstractive':
      return rougeL(prediction, references);
    default:
      return exactMatch(prediction, references);
  }
}
