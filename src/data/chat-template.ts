// Renders a tokenizer's own chat template (Jinja, from tokenizer_config.json or chat_template.jinja)
// the way transformers' apply_chat_template does, and works out how the template closes an
// assistant turn so training targets end the way the model's chat format does.
import { Template } from '@huggingface/jinja';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface TemplateTokens {
  bosToken: string | null;
  eosToken: string;
}

const compiled = new Map<string, Template>();

export function renderChatTemplate(
  template: string,
  messages: readonly ChatMessage[],
  tokens: TemplateTokens,
  addGenerationPrompt: boolean,
): string {
  let t = compiled.get(template);
  if (t === undefined) {
    t = new Template(template);
    compiled.set(template, t);
  }
  return t.render({
    messages,
    add_generation_prompt: addGenerationPrompt,
    // Templates that want a BOS write {{ bos_token }} themselves; a BOS-less tokenizer renders none.
    bos_token: tokens.bosToken ?? '',
    eos_token: tokens.eosToken,
  });
}

/** Text the template puts around an assistant answer: `infix` after the generation prompt, `suffix` after the answer. */
export interface AnswerFrame {
  infix: string;
  suffix: string;
}

const SENTINEL = 'PGANSWERSENTINEL';
const frames = new Map<string, AnswerFrame>();

/**
 * Renders one exchange with a sentinel answer and reads off what surrounds it. Trailing whitespace
 * of the suffix is the gap before a next turn, not part of the answer. A suffix ending in the EOS
 * token's text drops it: the EOS is appended as a token id after encoding, never as text twice.
 * Templates that render history unlike the generation prompt get an empty infix.
 */
export function answerFrame(template: string, tokens: TemplateTokens): AnswerFrame {
  // Same for every record of a run; rendering it per record would triple the templating work.
  const key = `${template}\u0000${tokens.bosToken ?? ''}\u0000${tokens.eosToken}`;
  const cached = frames.get(key);
  if (cached) return cached;
  const user: ChatMessage = { role: 'user', content: 'q' };
  const open = renderChatTemplate(template, [user], tokens, true);
  const full = renderChatTemplate(template, [user, { role: 'assistant', content: SENTINEL }], tokens, false);
  const at = full.indexOf(SENTINEL);
  if (at === -1) throw new TypeError('chat template drops the assistant message; cannot train on it');
  const infix = full.startsWith(open) && at >= open.length ? full.slice(open.length, at) : '';
  let suffix = full.slice(at + SENTINEL.length).trimEnd();
  if (suffix.endsWith(tokens.eosToken)) suffix = suffix.slice(0, -tokens.eosToken.length).trimEnd();
  const frame = { infix, suffix };
  frames.set(key, frame);
  return frame;
}
