/**
 * The long-context prompt set of bench/eval-qa.ts: extractive QA items like the shipped SQuAD
 * samples (datasets/synth), whose passage is padded with filler sentences on both sides of the
 * profile that holds the answer until the formatted prompt is 400–800 tokens (real SQuAD and
 * NarrativeQA passages are that long; the shipped ones are 60–142). Tokenized exactly as the
 * tokenize activity tokenizes test items (formatExample + encodePrompt + the answer in context).
 */
import { createRng, seedFrom } from '../src/common/rng';
import { encodePrompt, tokenizeForTraining } from '../src/data/tokenize';
import { formatExample, type ModelFamily } from '../src/data/formats';
import type { TokenizerWrapper } from '../src/data/tokenizer';
import type { QaRecord } from '../src/data/unifiedqa';
import type { TestItem } from '../src/contracts';
import { extractiveItem, fillerSentence } from '../datasets/synth/items';

/** `count` items, prompt lengths drawn uniformly from [minTokens, maxTokens] (reached to within one sentence). */
export function longContextItems(
  tok: TokenizerWrapper,
  family: ModelFamily,
  count: number,
  { minTokens = 400, maxTokens = 800, seed = 42 } = {},
): TestItem[] {
  const rng = createRng(seedFrom('bench-long-context', seed));
  return Array.from({ length: count }, (_, n) => {
    const item = extractiveItem(rng);
    const target = minTokens + rng.int(maxTokens - minTokens + 1);
    const before: string[] = [];
    const after: string[] = [];
    const record = (): QaRecord => ({
      id: `long-${n}`,
      dataset: 'squad1_1',
      format: 'extractive',
      question: item.fields.question,
      context: [...before, item.fields.context, ...after].join(' '),
      answers: item.answers,
    });
    let formatted = formatExample(record(), family, { tokenizerInfo: tok });
    let promptIds = encodePrompt(tok, formatted.prompt);
    while (promptIds.length < target) {
      // Sentences are ~10 tokens: add a few per encode, then stop at the first length past the target.
      const more = Math.max(1, Math.floor((target - promptIds.length) / 20));
      for (let i = 0; i < more; i++) (rng.int(2) === 0 ? before : after).push(fillerSentence(rng));
      formatted = formatExample(record(), family, { tokenizerInfo: tok });
      promptIds = encodePrompt(tok, formatted.prompt);
    }
    const full = tokenizeForTraining(tok, formatted, promptIds.length + 4096);
    return {
      id: `long-${n}`,
      dataset: 'squad1_1',
      format: 'extractive',
      promptIds,
      answers: item.answers,
      answerIds: full.ids.slice(full.promptLength),
    };
  });
}
