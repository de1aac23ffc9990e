// UnifiedQA TSV → question-answering records.
//
// A line is `input<TAB>target`; the input's parts (question, choices, passage) are joined by the two
// literal characters `\n`, not by a newline. NarrativeQA repeats an input once per reference answer
// on adjacent lines, so adjacent lines with the same input become one record with several answers.
// Bad lines are counted and reported with their line number and reason, never dropped silently and
// never thrown: one corrupt line in 100k must not fail a preparation that retries forever.
import { createHash } from 'node:crypto';
import { CATALOG, type DatasetName, type QaFormat } from './catalog';
import { MAX_LINE_BYTES, type SourceLine } from './lines';

export interface QaRecord {
  /** Stable across runs and machines: a hash of the dataset name and the raw input. */
  id: string;
  dataset: string;
  format: QaFormat;
  question: string;
  /** The passage (story, article, paragraph), when the dataset has one. */
  context?: string;
  /** Multiple-choice options without their `(a)` labels, in order. */
  choices?: string[];
  /** Every reference answer, deduplicated, in file order. */
  answers: string[];
}

export type MalformedReason =
  | 'empty-line'
  | 'truncated-line'
  | 'line-too-long'
  | 'invalid-utf8'
  | 'missing-tab'
  | 'too-many-tabs'
  | 'empty-input'
  | 'empty-answer'
  | 'missing-choices'
  | 'duplicate-input-not-adjacent';

export interface MalformedLine<R extends string = MalformedReason> {
  /** 1-based line number in the source file. */
  line: number;
  reason: R;
  detail: string;
}

/** `R`: the reasons of the parser (UnifiedQA TSV here, JSON lines in jsonl.ts). */
export interface ParseStats<R extends string = MalformedReason> {
  /** Lines read, good or bad. */
  total: number;
  /** Records emitted. */
  records: number;
  /** Lines that repeated an input and answer already in the current record (nothing new). */
  duplicates: number;
  /** All malformed lines, including those beyond the detail cap. */
  malformedCount: number;
  malformedByReason: Partial<Record<R, number>>;
  /** Details of the first `maxMalformedDetails` malformed lines. */
  malformed: MalformedLine<R>[];
}

export interface ParseOptions {
  /**
   * Malformed lines kept with details; the rest are only counted, so a garbage file cannot
   * exhaust memory through its error list.
   * @default 1000
   */
  maxMalformedDetails?: number;
}

export interface DatasetRef {
  name: string;
  format: QaFormat;
}

const SEPARATOR = '\\n';

function resolveDataset(dataset: DatasetName | DatasetRef): DatasetRef {
  return typeof dataset === 'string' ? CATALOG[dataset] : dataset;
}

/** Stable record id; the same input in another dataset is another record. */
export function recordId(dataset: string, input: string): string {
  const digest = createHash('sha256').update(`${dataset}\u0000${input}`).digest('hex');
  return `${dataset}-${digest.slice(0, 16)}`;
}

/**
 * `(a) red (b) blue (c) green` → `['red', 'blue', 'green']`. Labels must run a, b, c, … in order,
 * each after a space, so a parenthesised letter inside an option — "vitamin (a)" — cannot split it.
 * Returns undefined unless there are at least two options.
 */
export function parseChoices(part: string): string[] | undefined {
  if (!part.startsWith('(a) ')) return undefined;
  const starts: number[] = [0];
  for (let code = 'b'.charCodeAt(0); code <= 'z'.charCodeAt(0); code++) {
    const at = part.indexOf(` (${String.fromCharCode(code)}) `, starts[starts.length - 1]! + 4);
    if (at === -1) break;
    starts.push(at + 1);
  }
  if (starts.length < 2) return undefined;
  const choices = starts.map((start, i) => part.slice(start + 4, starts[i + 1] ?? part.length).trim());
  return choices.every((c) => c.length > 0) ? choices : undefined;
}

export interface Fields {
  question: string;
  context?: string;
  choices?: string[];
}

function splitInput(input: string, format: QaFormat): Fields | undefined {
  const parts = input
    .split(SEPARATOR)
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  const [question, ...rest] = parts;
  if (question === undefined) return undefined;
  const fields: Fields = { question };
  const contextParts: string[] = [];
  for (const part of rest) {
    const choices = format === 'multiple_choice' && fields.choices === undefined ? parseChoices(part) : undefined;
    if (choices) fields.choices = choices;
    else contextParts.push(part);
  }
  if (contextParts.length > 0) fields.context = contextParts.join('\n');
  return fields;
}

/**
 * Push-based parser: feed lines in file order, collect completed records. Memory is bounded by the
 * current record plus one short id per distinct input (to catch non-adjacent repeats).
 */
export class UnifiedQaParser {
  readonly stats: ParseStats = {
    total: 0,
    records: 0,
    duplicates: 0,
    malformedCount: 0,
    malformedByReason: {},
    malformed: [],
  };
  private readonly dataset: DatasetRef;
  private readonly maxDetails: number;
  private current: { record: QaRecord; line: number } | undefined;
  private readonly firstLineOf = new Map<string, number>();

  constructor(dataset: DatasetName | DatasetRef, options: ParseOptions = {}) {
    this.dataset = resolveDataset(dataset);
    this.maxDetails = options.maxMalformedDetails ?? 1000;
  }

  /**
   * Parses the next line; returns the previous record when this line starts a new one.
   * `terminated: false` marks a final line that no newline ended: the file was likely cut inside
   * it (a truncated answer still parses), so it is reported instead of trusted.
   */
  push(rawLine: string, terminated = true): QaRecord | undefined {
    const line = ++this.stats.total;
    if (!terminated)
      return this.malformed(line, 'truncated-line', 'last line has no newline: the file looks cut short');
    const text = line === 1 && rawLine.startsWith('\uFEFF') ? rawLine.slice(1) : rawLine;
    const parsed = this.parseLine(text, line);
    if (parsed === undefined) return undefined;
    const { id, fields, answer } = parsed;

    if (this.current?.record.id === id) {
      const answers = this.current.record.answers;
      if (answers.includes(answer)) this.stats.duplicates++;
      else answers.push(answer);
      return undefined;
    }
    const first = this.firstLineOf.get(id);
    if (first !== undefined) {
      this.malformed(
        line,
        'duplicate-input-not-adjacent',
        `same input as line ${first}; answers of adjacent lines only are merged`,
      );
      return undefined;
    }
    this.firstLineOf.set(id, line);
    const done = this.end();
    this.current = {
      line,
      record: { id, dataset: this.dataset.name, format: this.dataset.format, ...fields, answers: [answer] },
    };
    return done;
  }

  /** Flushes the last record; call once after the last line. */
  end(): QaRecord | undefined {
    const done = this.current?.record;
    this.current = undefined;
    if (done) this.stats.records++;
    return done;
  }

  private parseLine(text: string, line: number): { id: string; fields: Fields; answer: string } | undefined {
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > MAX_LINE_BYTES) return this.malformed(line, 'line-too-long', `longer than ${MAX_LINE_BYTES} bytes`);
    if (text.trim().length === 0) return this.malformed(line, 'empty-line', 'blank line');
    const bad = text.indexOf('\uFFFD');
    if (bad !== -1) return this.malformed(line, 'invalid-utf8', `invalid UTF-8 or U+FFFD at character ${bad + 1}`);
    const tab = text.indexOf('\t');
    if (tab === -1) return this.malformed(line, 'missing-tab', 'no tab between input and answer');
    const input = text.slice(0, tab).trim();
    const targetFields = text.slice(tab + 1).split('\t');
    // A trailing empty field (`input<TAB>answer<TAB>`) is harmless; a second non-empty one is ambiguous.
    if (targetFields.slice(1).some((f) => f.trim().length > 0)) {
      return this.malformed(line, 'too-many-tabs', `${targetFields.length + 1} tab-separated fields, expected 2`);
    }
    const answer = (targetFields[0] ?? '').trim();
    if (input.length === 0) return this.malformed(line, 'empty-input', 'nothing before the tab');
    if (answer.length === 0) return this.malformed(line, 'empty-answer', 'nothing after the tab');
    const fields = splitInput(input, this.dataset.format);
    if (fields === undefined) return this.malformed(line, 'empty-input', 'input has only separators');
    if (this.dataset.format === 'multiple_choice' && fields.choices === undefined) {
      return this.malformed(line, 'missing-choices', 'no "(a) … (b) …" options in a multiple-choice dataset');
    }
    return { id: recordId(this.dataset.name, input), fields, answer };
  }

  private malformed(line: number, reason: MalformedReason, detail: string): undefined {
    return countMalformed(this.stats, this.maxDetails, line, reason, detail);
  }
}

/**
 * Streaming parse: an async iterable of lines → an async iterable of records. Lines from
 * `readLines` carry whether a newline ended them, and an unterminated last line is reported as
 * `truncated-line`; plain strings (e.g. from `splitLines`) are all taken as complete.
 * `stats` fills in as records are consumed and is final when iteration ends.
 */
export function parseUnifiedQaStream(
  lines: AsyncIterable<string | SourceLine>,
  dataset: DatasetName | DatasetRef,
  options: ParseOptions = {},
): { records: AsyncGenerator<QaRecord>; stats: ParseStats } {
  const parser = new UnifiedQaParser(dataset, options);
  async function* records(): AsyncGenerator<QaRecord> {
    for await (const line of lines) {
      const done = typeof line === 'string' ? parser.push(line) : parser.push(line.text, line.terminated);
      if (done) yield done;
    }
    const last = parser.end();
    if (last) yield last;
  }
  return { records: records(), stats: parser.stats };
}

/**
 * Why a whole split is unusable, or undefined when it yielded at least one record. A file in which
 * no line parses is not a dataset with 0 records: it is the wrong file (an HTML error page, another
 * format or encoding, an empty download), and a grid that went on with the other datasets would
 * quietly be another experiment. The reasons come ranked by count, with the first lines as examples.
 */
/** Counts a bad line by reason, keeping the first `maxDetails` of them in full; returns no record. */
export function countMalformed<R extends string>(
  stats: ParseStats<R>,
  maxDetails: number,
  line: number,
  reason: R,
  detail: string,
): undefined {
  stats.malformedCount++;
  stats.malformedByReason[reason] = (stats.malformedByReason[reason] ?? 0) + 1;
  if (stats.malformed.length < maxDetails) stats.malformed.push({ line, reason, detail });
  return undefined;
}

export function unusableSplit<R extends string>(stats: ParseStats<R>): string | undefined {
  if (stats.records > 0) return undefined;
  if (stats.total === 0) return 'the file is empty (0 lines)';
  const reasons = (Object.entries(stats.malformedByReason) as [string, number][])
    .sort(([, a], [, b]) => b - a)
    .map(([r, n]) => `${r} ×${n}`);
  const first = stats.malformed.slice(0, 3).map((m) => `line ${m.line} ${m.reason}: ${m.detail}`);
  return `none of its ${stats.total} lines is a usable record (${reasons.join(', ')}); first: ${first.join('; ')}`;
}

export interface ParseResult {
  records: QaRecord[];
  malformed: MalformedLine[];
  /** Lines read. */
  total: number;
  duplicates: number;
}

/**
 * Whole-text convenience for small files and tests; same rules as the streaming parser over
 * `splitLines` (a final line without a newline is taken as complete).
 */
export function parseUnifiedQa(text: string, dataset: DatasetName | DatasetRef): ParseResult {
  const parser = new UnifiedQaParser(dataset, { maxMalformedDetails: Number.POSITIVE_INFINITY });
  const records: QaRecord[] = [];
  const lines = text.split('\n');
  // A final newline ends the last line; it does not start an empty one.
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  for (const raw of lines) {
    const done = parser.push(raw.endsWith('\r') ? raw.slice(0, -1) : raw);
    if (done) records.push(done);
  }
  const last = parser.end();
  if (last) records.push(last);
  return { records, malformed: parser.stats.malformed, total: parser.stats.total, duplicates: parser.stats.duplicates };
}

/** The UnifiedQA input for a record: the inverse of parsing, used by generators and tests. */
export function toUnifiedQaInput(fields: Fields): string {
  const parts = [fields.question];
  if (fields.choices) parts.push(fields.choices.map((c, i) => `(${String.fromCharCode(97 + i)}) ${c}`).join(' '));
  // Several passage parts were joined with real newlines by the parser; in the TSV they are parts again.
  if (fields.context !== undefined) parts.push(...fields.context.split('\n'));
  return parts.join(` ${SEPARATOR} `);
}
