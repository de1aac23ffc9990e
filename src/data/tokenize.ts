// Prompt + answer → token ids for training (with the loss-mask boundary) and prompt → ids for
// evaluation. Both apply the same BOS check and the same left truncation, so a prompt is tokenized
// identically when the model learns from it and when it is asked to answer it.
import type { TestItem } from '../contracts';
import type { FormattedExample } from './formats';
import type { QaRecord } from './unifiedqa';
import type { TokenizerWrapper } from './tokenizer';

export interface TrainingExample {
  ids: number[];
  /** Tokens the loss ignores (the prompt); the rest is the answer plus EOS. */
  promptLength: number;
}

export interface TrainingTokenization extends TrainingExample {
  /** Prompt tokens cut from the left to fit maxLength. */
  truncatedTokens: number;
}

/** Thrown when the answer, its EOS and a minimal prompt cannot fit in maxLength: the answer is never cut. */
export class AnswerTooLongError extends Error {
  override name = 'AnswerTooLongError';
}

/** Thrown when a prompt encodes to two leading BOS tokens: a format wrote BOS and something added another. */
export class DoubleBosError extends Error {
  override name = 'DoubleBosError';
}

type Tok = Pick<TokenizerWrapper, 'encode' | 'bosTokenId' | 'eosTokenId'>;

function checkBos(tok: Tok, ids: readonly number[]): boolean {
  const bos = tok.bosTokenId;
  const starts = bos !== null && ids[0] === bos;
  if (starts && ids[1] === bos) throw new DoubleBosError(`prompt starts with BOS (${bos}) twice`);
  return starts;
}

/** Keeps the last `budget` prompt tokens, but a leading BOS always stays where the model expects it. */
function truncateLeft(ids: number[], budget: number, keepBos: boolean): number[] {
  if (ids.length <= budget) return ids;
  return keepBos ? [ids[0]!, ...ids.slice(ids.length - (budget - 1))] : ids.slice(ids.length - budget);
}

function startsWith(ids: readonly number[], prefix: readonly number[]): boolean {
  if (prefix.length > ids.length) return false;
  for (let i = 0; i < prefix.length; i++) if (ids[i] !== prefix[i]) return false;
  return true;
}

/**
 * ids = encode(prompt) ++ answer ids ++ [EOS], promptLength = prompt tokens kept.
 *
 * The answer ids are those the answer gets *in context*: encode(prompt + answer) minus the prompt's
 * ids when that is a prefix of it (it nearly always is). Encoded alone, an answer can pick up
 * artifacts — SentencePiece-style tokenizers prepend a word-start marker, so " yes" becomes
 * [▁, ▁yes] instead of [▁yes] — which would teach the model a token sequence it never produces after
 * that prompt. When a token merges across the boundary, the prompt must keep its own ids (the
 * model sees exactly those at inference), so the answer is encoded separately instead.
 *
 * Over-long examples lose prompt tokens from the left (after the BOS); the answer is never cut.
 */
export function tokenizeForTraining(tok: Tok, example: FormattedExample, maxLength: number): TrainingTokenization {
  const promptIds = tok.encode(example.prompt);
  const keepBos = checkBos(tok, promptIds);
  const joint = tok.encode(example.prompt + example.answer);
  const answerIds = startsWith(joint, promptIds) ? joint.slice(promptIds.length) : tok.encode(example.answer);

  const budget = maxLength - answerIds.length - 1;
  const minimum = keepBos ? 2 : 1;
  if (budget < minimum) {
    throw new AnswerTooLongError(
      `answer of ${answerIds.length} tokens + EOS leaves ${budget} of maxLength ${maxLength} for the prompt; need ${minimum}`,
    );
  }
  const kept = truncateLeft(promptIds, budget, keepBos);
  return {
    ids: [...kept, ...answerIds, tok.eosTokenId],
    promptLength: kept.length,
    truncatedTokens: promptIds.length - kept.length,
  };
}

/** Prompt ids for generation, cut from the left like training prompts when `maxLength` is given. */
export function encodePrompt(tok: Tok, prompt: string, maxLength?: number): number[] {
  const ids = tok.encode(prompt);
  const keepBos = checkBos(tok, ids);
  if (maxLength === undefined) return ids;
  if (maxLength < (keepBos ? 2 : 1)) throw new RangeError(`maxLength ${maxLength} leaves no room for the prompt`);
  return truncateLeft(ids, maxLength, keepBos);
}

/**
 * A test split's item: the prompt's ids for generation and the reference answer's ids in context
 * (+ EOS) for its held-out perplexity, tokenized as training would tokenize the pair.
 */
export function testItem(tok: Tok, record: QaRecord, formatted: FormattedExample): TestItem {
  const promptIds = encodePrompt(tok, formatted.prompt);
  const full = tokenizeForTraining(tok, formatted, promptIds.length + 4096);
  return {
    id: record.id,
    dataset: record.dataset,
    format: record.format,
    promptIds,
    answers: record.answers,
    ...(record.choices ? { choices: record.choices } : {}),
    answerIds: full.ids.slice(full.promptLength),
  };
}
