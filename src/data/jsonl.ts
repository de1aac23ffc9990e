// Custom datasets as JSON lines → the same question-answering records as UnifiedQA's TSV.
//
// Three record layouts, as the tools researchers come from write them:
//   qa      {"question", "answer" | "answers", "context"?, "choices"?}
//   chat    {"messages": [{"role", "content"}, …], "choices"?}  the last message is the assistant's answer
//   alpaca  {"instruction", "input"?, "output", "choices"?}
// The same rules as the TSV parser: a bad line is counted by reason with its line number, never
// thrown, and the rest of the file is kept; a whole split without one usable line is the caller's
// error (unusableSplit). Rows of an HF dataset (exported as JSON lines by the trainer) go through here too.
import type { QaFormat } from './catalog';
import type { SourceLine } from './lines';
import { countMalformed, recordId, type ParseStats, type QaRecord } from './unifiedqa';

export const RECORD_LAYOUTS = ['qa', 'chat', 'alpaca'] as const;
export type RecordLayout = (typeof RECORD_LAYOUTS)[number];

/**
 * JSON lines may carry a passage or a conversation: 8× the TSV cap (lines.ts), still far below
 * what could exhaust a worker. A line over it (a 1 MB line) is counted as `line-too-long`.
 */
export const MAX_JSONL_LINE_BYTES = 512 * 1024;

export type JsonlMalformedReason =
  | 'empty-line'
  | 'truncated-line'
  | 'line-too-long'
  | 'invalid-utf8'
  | 'invalid-json'
  | 'not-an-object'
  | 'missing-field'
  | 'wrong-type'
  | 'empty-input'
  | 'empty-answer'
  | 'missing-choices'
  | 'duplicate-input';

export interface CustomDatasetRef {
  name: string;
  format: QaFormat;
  layout: RecordLayout;
}

export type JsonlParseStats = ParseStats<JsonlMalformedReason>;

interface Fields {
  question: string;
  context?: string;
  choices?: string[];
  answers: string[];
}

/** Why a line is unusable. */
interface Bad {
  reason: JsonlMalformedReason;
  detail: string;
}
/** The record's fields, or why there are none. */
type Mapped = Fields | Bad;

const isString = (v: unknown): v is string => typeof v === 'string';
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);

function field(obj: Record<string, unknown>, key: string, what: string): string | Bad | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (!isString(v)) return { reason: 'wrong-type', detail: `"${key}" is ${typeof v}, expected ${what}` };
  return v;
}

/** `choices` is optional in every layout; a multiple-choice dataset requires it (checked later). */
function choicesOf(obj: Record<string, unknown>): string[] | Bad | undefined {
  const v = obj.choices;
  if (v === undefined || v === null) return undefined;
  if (!isStringArray(v)) return { reason: 'wrong-type', detail: '"choices" is not a list of strings' };
  return v.map((c) => c.trim());
}

const bad = (v: unknown): v is Bad => typeof v === 'object' && v !== null && 'reason' in v;

function fromQa(obj: Record<string, unknown>): Mapped {
  const question = field(obj, 'question', 'a string');
  if (question === undefined) return { reason: 'missing-field', detail: 'no "question"' };
  if (bad(question)) return question;
  const context = field(obj, 'context', 'a string');
  if (bad(context)) return context;
  let answers: string[];
  if (obj.answers !== undefined && obj.answers !== null) {
    if (!isStringArray(obj.answers)) return { reason: 'wrong-type', detail: '"answers" is not a list of strings' };
    answers = obj.answers;
  } else {
    const answer = field(obj, 'answer', 'a string');
    if (answer === undefined) return { reason: 'missing-field', detail: 'no "answer" (or "answers")' };
    if (bad(answer)) return answer;
    answers = [answer];
  }
  const choices = choicesOf(obj);
  if (bad(choices)) return choices;
  return { question, answers, ...(context !== undefined ? { context } : {}), ...(choices ? { choices } : {}) };
}

function fromAlpaca(obj: Record<string, unknown>): Mapped {
  const instruction = field(obj, 'instruction', 'a string');
  if (instruction === undefined) return { reason: 'missing-field', detail: 'no "instruction"' };
  if (bad(instruction)) return instruction;
  const output = field(obj, 'output', 'a string');
  if (output === undefined) return { reason: 'missing-field', detail: 'no "output"' };
  if (bad(output)) return output;
  const input = field(obj, 'input', 'a string');
  if (bad(input)) return input;
  const choices = choicesOf(obj);
  if (bad(choices)) return choices;
  // Alpaca's `input` is the material the instruction works on: the passage of a QA record.
  return {
    question: instruction,
    answers: [output],
    ...(input?.trim() ? { context: input } : {}),
    ...(choices ? { choices } : {}),
  };
}

/**
 * The final assistant message is the answer and the user message before it the question. Earlier
 * turns (a system prompt, a previous exchange) become the context as `role: content` lines, so a
 * model still sees them; the project's own prompt formats then wrap the question as one user turn.
 */
function fromChat(obj: Record<string, unknown>): Mapped {
  const messages = obj.messages;
  if (messages === undefined || messages === null) return { reason: 'missing-field', detail: 'no "messages"' };
  if (!Array.isArray(messages)) return { reason: 'wrong-type', detail: '"messages" is not a list' };
  const turns: { role: string; content: string }[] = [];
  for (const [i, m] of messages.entries()) {
    const { role, content } = (m ?? {}) as Record<string, unknown>;
    if (!isString(role) || !isString(content))
      return { reason: 'wrong-type', detail: `messages[${i}] needs string "role" and "content"` };
    turns.push({ role, content });
  }
  const last = turns[turns.length - 1];
  if (!last || last.role !== 'assistant')
    return { reason: 'missing-field', detail: 'the last message must be the assistant\'s answer (role "assistant")' };
  const userAt = turns.map((t) => t.role).lastIndexOf('user', turns.length - 2);
  if (userAt === -1) return { reason: 'missing-field', detail: "no user message before the assistant's answer" };
  const earlier = [...turns.slice(0, userAt), ...turns.slice(userAt + 1, -1)];
  const choices = choicesOf(obj);
  if (bad(choices)) return choices;
  return {
    question: turns[userAt]!.content,
    answers: [last.content],
    ...(earlier.length ? { context: earlier.map((t) => `${t.role}: ${t.content.trim()}`).join('\n') } : {}),
    ...(choices ? { choices } : {}),
  };
}

const LAYOUTS: Record<RecordLayout, (obj: Record<string, unknown>) => Mapped> = {
  qa: fromQa,
  chat: fromChat,
  alpaca: fromAlpaca,
};

/** Push-based, like UnifiedQaParser: one line in, at most one record out. */
export class JsonlParser {
  readonly stats: JsonlParseStats = {
    total: 0,
    records: 0,
    duplicates: 0,
    malformedCount: 0,
    malformedByReason: {},
    malformed: [],
  };
  private readonly seen = new Map<string, number>();
  private readonly maxDetails: number;
  private readonly maxLineBytes: number;

  constructor(
    private readonly dataset: CustomDatasetRef,
    options: { maxMalformedDetails?: number; maxLineBytes?: number } = {},
  ) {
    this.maxDetails = options.maxMalformedDetails ?? 1000;
    this.maxLineBytes = options.maxLineBytes ?? MAX_JSONL_LINE_BYTES;
  }

  push(rawLine: string, terminated = true): QaRecord | undefined {
    const line = ++this.stats.total;
    if (!terminated)
      return this.malformed(line, 'truncated-line', 'last line has no newline: the file looks cut short');
    const text = line === 1 && rawLine.startsWith('\uFEFF') ? rawLine.slice(1) : rawLine;
    if (Buffer.byteLength(text, 'utf8') > this.maxLineBytes)
      return this.malformed(line, 'line-too-long', `longer than ${this.maxLineBytes} bytes`);
    if (text.trim().length === 0) return this.malformed(line, 'empty-line', 'blank line');
    const at = text.indexOf('\uFFFD');
    if (at !== -1) return this.malformed(line, 'invalid-utf8', `invalid UTF-8 or U+FFFD at character ${at + 1}`);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return this.malformed(line, 'invalid-json', (err as Error).message.slice(0, 200));
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      return this.malformed(line, 'not-an-object', `a JSON ${Array.isArray(value) ? 'array' : typeof value}`);
    const mapped = LAYOUTS[this.dataset.layout](value as Record<string, unknown>);
    if (bad(mapped)) return this.malformed(line, mapped.reason, `${this.dataset.layout} layout: ${mapped.detail}`);
    return this.record(line, mapped);
  }

  private record(line: number, f: Fields): QaRecord | undefined {
    const question = f.question.trim();
    const context = f.context?.trim();
    const answers = [...new Set(f.answers.map((a) => a.trim()).filter((a) => a.length > 0))];
    if (question.length === 0) return this.malformed(line, 'empty-input', 'the question is empty');
    if (answers.length === 0) return this.malformed(line, 'empty-answer', 'no non-empty answer');
    const choices = f.choices?.filter((c) => c.length > 0);
    if (this.dataset.format === 'multiple_choice' && (!choices || choices.length < 2))
      return this.malformed(line, 'missing-choices', 'a multiple-choice dataset needs "choices" (two or more)');
    const input = JSON.stringify([question, choices ?? null, context || null]);
    const id = recordId(this.dataset.name, input);
    const first = this.seen.get(id);
    // Unlike UnifiedQA's adjacent repeats, a JSONL record lists all its references in "answers".
    if (first !== undefined) return this.malformed(line, 'duplicate-input', `same input as line ${first}`);
    this.seen.set(id, line);
    this.stats.records++;
    return {
      id,
      dataset: this.dataset.name,
      format: this.dataset.format,
      question,
      ...(context ? { context } : {}),
      ...(choices?.length ? { choices } : {}),
      answers,
    };
  }

  private malformed(line: number, reason: JsonlMalformedReason, detail: string): undefined {
    return countMalformed(this.stats, this.maxDetails, line, reason, detail);
  }
}

/** Streaming parse over `readLines` output (or plain strings, all taken as complete). */
export function parseJsonlStream(
  lines: AsyncIterable<string | SourceLine>,
  dataset: CustomDatasetRef,
  options: { maxMalformedDetails?: number } = {},
): { records: AsyncGenerator<QaRecord>; stats: JsonlParseStats } {
  const parser = new JsonlParser(dataset, options);
  async function* records(): AsyncGenerator<QaRecord> {
    for await (const line of lines) {
      const done = typeof line === 'string' ? parser.push(line) : parser.push(line.text, line.terminated);
      if (done) yield done;
    }
  }
  return { records: records(), stats: parser.stats };
}
