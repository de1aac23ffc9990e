// Model-family prompt formats of the study, plus the tokenizer's own chat template.
//
// BOS policy: the prompt TEXT carries the BOS token exactly once, at the start, written by the
// format (gemma/llama/mistral) or by the chat template itself ({{ bos_token }}), and text is always
// encoded with addSpecialTokens=false. That is what transformers' apply_chat_template does, and it
// is the only policy that works for both formats that need a BOS and templates that already emit
// one; encoding with special tokens on top would double it (tokenize.ts rejects a doubled BOS).
// EOS policy: `answer` never contains the EOS; tokenizeForTraining appends the EOS *id*, so it
// cannot be split into pieces or merged with neighbouring text.
import type { QaRecord } from './unifiedqa';
import { answerFrame, renderChatTemplate, type ChatMessage } from './chat-template';
import { drawShots, type ShotPool } from './shots';

export const MODEL_FAMILIES = ['gemma', 'llama', 'mistral', 'template'] as const;
export type ModelFamily = (typeof MODEL_FAMILIES)[number];

/** What a format needs from the tokenizer; a TokenizerWrapper satisfies it. */
export interface TokenizerInfo {
  bosToken: string | null;
  eosToken: string;
  chatTemplate: string | null;
}

export interface ShotOptions {
  pool: ShotPool;
  /** Number of examples; 0 is zero-shot. */
  k: number;
  /** Seeds the per-record draw. */
  seed: number;
}

export interface FormatOptions {
  tokenizerInfo: TokenizerInfo;
  /** k-shot examples, drawn from a train pool; omitted means zero-shot. */
  shots?: ShotOptions;
}

export interface FormattedExample {
  /** Everything the model is given, BOS included. */
  prompt: string;
  /** The training target without EOS (tokenization appends the EOS id). */
  answer: string;
}

export const ZERO_SHOT_INSTRUCTION = 'Answer the following question.';
export const K_SHOT_INSTRUCTION = 'Answer the following question. Follow these examples:';

/** Question, then the options on one line as `(a) x (b) y`, then the passage; real newlines between. */
export function questionText(record: QaRecord): string {
  const lines = [record.question];
  if (record.choices?.length)
    lines.push(record.choices.map((c, i) => `(${String.fromCharCode(97 + i)}) ${c}`).join(' '));
  if (record.context !== undefined) lines.push(record.context);
  return lines.join('\n');
}

/** The study's fixed formats: a user turn, the answer that follows it, and what closes a finished exchange. */
interface TurnFormat {
  user(text: string): string;
  answer(text: string): string;
  /** Between an answered example and the next user turn. */
  separator: string;
}

function turnFormat(family: Exclude<ModelFamily, 'template'>, info: TokenizerInfo): TurnFormat {
  switch (family) {
    case 'gemma':
      return {
        user: (t) => `<start_of_turn>user\n${t}<end_of_turn>\n<start_of_turn>model\n`,
        answer: (a) => `${a}<end_of_turn>`,
        separator: '\n',
      };
    case 'llama':
      return { user: (t) => `Input: ${t}\nOutput:`, answer: (a) => ` ${a}`, separator: '\n' };
    case 'mistral':
      // Mistral's chat format closes every answered turn with </s> before the next [INST].
      return { user: (t) => `[INST] ${t} [/INST]`, answer: (a) => ` ${a}`, separator: info.eosToken };
  }
}

/** The user texts of a (k-shot) conversation: the instruction leads the first user turn. */
function userTexts(record: QaRecord, shots: readonly QaRecord[]): string[] {
  if (shots.length === 0) return [`${ZERO_SHOT_INSTRUCTION}\n${questionText(record)}`];
  const texts = [...shots, record].map(questionText);
  texts[0] = `${K_SHOT_INSTRUCTION}\n${texts[0]}`;
  return texts;
}

function firstAnswer(record: QaRecord): string {
  const answer = record.answers[0];
  if (answer === undefined) throw new TypeError(`record ${record.id} has no answer`);
  return answer;
}

/**
 * Prompt and training target for one record. k-shot examples are rendered as earlier exchanges in
 * the model's own format (the instruction heads the first one), answered with their first answer.
 */
export function formatExample(record: QaRecord, family: ModelFamily, options: FormatOptions): FormattedExample {
  const info = options.tokenizerInfo;
  const shots = options.shots ? drawShots(options.shots.pool, record, options.shots.k, options.shots.seed) : [];
  const texts = userTexts(record, shots);
  const answer = firstAnswer(record);

  if (family === 'template') {
    if (info.chatTemplate === null) {
      throw new TypeError('family "template" needs a chat template, and this tokenizer has none');
    }
    const tokens = { bosToken: info.bosToken, eosToken: info.eosToken };
    const messages: ChatMessage[] = shots.flatMap((shot, i): ChatMessage[] => [
      { role: 'user', content: texts[i]! },
      { role: 'assistant', content: firstAnswer(shot) },
    ]);
    messages.push({ role: 'user', content: texts[texts.length - 1]! });
    const frame = answerFrame(info.chatTemplate, tokens);
    return {
      prompt: renderChatTemplate(info.chatTemplate, messages, tokens, true),
      answer: `${frame.infix}${answer}${frame.suffix}`,
    };
  }

  const fmt = turnFormat(family, info);
  const examples = shots.map((shot, i) => fmt.user(texts[i]!) + fmt.answer(firstAnswer(shot)) + fmt.separator);
  return {
    prompt: `${info.bosToken ?? ''}${examples.join('')}${fmt.user(texts[texts.length - 1]!)}`,
    answer: fmt.answer(answer),
  };
}
