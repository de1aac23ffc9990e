import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { readLines } from '../../src/data/lines';
import { JsonlParser, MAX_JSONL_LINE_BYTES, parseJsonlStream, type CustomDatasetRef } from '../../src/data/jsonl';
import type { QaRecord } from '../../src/data/unifiedqa';

const qa: CustomDatasetRef = { name: 'mine', format: 'abstractive', layout: 'qa' };

function parseAll(ref: CustomDatasetRef, lines: string[]): { records: QaRecord[]; parser: JsonlParser } {
  const parser = new JsonlParser(ref);
  const records = lines.map((l) => parser.push(l)).filter((r): r is QaRecord => r !== undefined);
  return { records, parser };
}

test('qa layout: question, answer or answers, optional context and choices', () => {
  const { records, parser } = parseAll(qa, [
    JSON.stringify({ question: ' who? ', answer: ' ann ', context: 'ann did it.' }),
    JSON.stringify({ question: 'what?', answers: ['a', 'b', 'a', ' '] }),
  ]);
  assert.equal(parser.stats.malformedCount, 0);
  assert.deepEqual(
    records.map(({ id: _id, ...r }) => r),
    [
      { dataset: 'mine', format: 'abstractive', question: 'who?', context: 'ann did it.', answers: ['ann'] },
      { dataset: 'mine', format: 'abstractive', question: 'what?', answers: ['a', 'b'] },
    ],
  );
  assert.match(records[0]!.id, /^mine-[0-9a-f]{16}$/);
});

test('multiple_choice needs choices; they are kept in order', () => {
  const ref: CustomDatasetRef = { name: 'mc', format: 'multiple_choice', layout: 'qa' };
  const { records, parser } = parseAll(ref, [
    JSON.stringify({ question: 'which is red?', choices: ['sky', 'blood'], answer: 'blood' }),
    JSON.stringify({ question: 'which is blue?', answer: 'sky' }),
    JSON.stringify({ question: 'which is green?', choices: ['grass'], answer: 'grass' }),
  ]);
  assert.deepEqual(records[0]!.choices, ['sky', 'blood']);
  assert.equal(records.length, 1);
  assert.deepEqual(parser.stats.malformedByReason, { 'missing-choices': 2 });
});

test('chat layout: last assistant message answers the last user message; earlier turns are context', () => {
  const ref: CustomDatasetRef = { name: 'chat', format: 'extractive', layout: 'chat' };
  const { records, parser } = parseAll(ref, [
    JSON.stringify({
      messages: [
        { role: 'system', content: 'bo lives in oslo.' },
        { role: 'user', content: 'where does bo live?' },
        { role: 'assistant', content: 'oslo' },
      ],
    }),
    JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    JSON.stringify({ messages: [{ role: 'assistant', content: 'hi' }] }),
    JSON.stringify({
      messages: [
        { role: 'user', content: 3 },
        { role: 'assistant', content: 'x' },
      ],
    }),
    JSON.stringify({ messages: 'hi' }),
    JSON.stringify({ conversation: [] }),
  ]);
  assert.deepEqual(
    records.map(({ question, context, answers }) => ({ question, context, answers })),
    [{ question: 'where does bo live?', context: 'system: bo lives in oslo.', answers: ['oslo'] }],
  );
  assert.deepEqual(parser.stats.malformedByReason, { 'missing-field': 3, 'wrong-type': 2 });
  assert.match(parser.stats.malformed[0]!.detail, /last message must be the assistant/);
});

test('alpaca layout: instruction → question, input → context (when not empty), output → answer', () => {
  const ref: CustomDatasetRef = { name: 'alp', format: 'abstractive', layout: 'alpaca' };
  const { records, parser } = parseAll(ref, [
    JSON.stringify({ instruction: 'summarize', input: 'a long text', output: 'short' }),
    JSON.stringify({ instruction: 'say hi', input: '', output: 'hi' }),
    JSON.stringify({ instruction: 'say hi twice', output: 'hi hi' }),
    JSON.stringify({ instruction: 'no output' }),
    JSON.stringify({ input: 'no instruction', output: 'x' }),
  ]);
  assert.deepEqual(
    records.map(({ question, context, answers }) => ({ question, context, answers })),
    [
      { question: 'summarize', context: 'a long text', answers: ['short'] },
      { question: 'say hi', context: undefined, answers: ['hi'] },
      { question: 'say hi twice', context: undefined, answers: ['hi hi'] },
    ],
  );
  assert.deepEqual(parser.stats.malformedByReason, { 'missing-field': 2 });
});

test('every bad-line reason is counted with its line number, and the good lines are kept', () => {
  const good = (q: string) => JSON.stringify({ question: q, answer: 'a' });
  const { records, parser } = parseAll(qa, [
    good('q1'),
    '', // 2 empty-line
    '{"question": "q", "answer": ', // 3 invalid-json
    '[1, 2]', // 4 not-an-object
    JSON.stringify({ answer: 'a' }), // 5 missing-field
    JSON.stringify({ question: 'q', answer: 7 }), // 6 wrong-type
    JSON.stringify({ question: '  ', answer: 'a' }), // 7 empty-input
    JSON.stringify({ question: 'q2', answer: '  ' }), // 8 empty-answer
    good('q1'), // 9 duplicate-input
    'x'.repeat(MAX_JSONL_LINE_BYTES + 1), // 10 line-too-long
    `{"question": "caf\uFFFD", "answer": "a"}`, // 11 invalid-utf8
    good('q3'),
  ]);
  assert.deepEqual(
    records.map((r) => r.question),
    ['q1', 'q3'],
  );
  assert.deepEqual(
    parser.stats.malformed.map((m) => [m.line, m.reason]),
    [
      [2, 'empty-line'],
      [3, 'invalid-json'],
      [4, 'not-an-object'],
      [5, 'missing-field'],
      [6, 'wrong-type'],
      [7, 'empty-input'],
      [8, 'empty-answer'],
      [9, 'duplicate-input'],
      [10, 'line-too-long'],
      [11, 'invalid-utf8'],
    ],
  );
  assert.equal(parser.stats.total, 12);
  assert.equal(parser.stats.records, 2);
});

test('from bytes: a non-UTF-8 line, a 1 MB line and a cut-off last line are counted; the rest is kept', async () => {
  const line = (q: string) => Buffer.from(JSON.stringify({ question: q, answer: 'yes' }) + '\n');
  const bytes = Buffer.concat([
    line('first'),
    Buffer.from([0x7b, 0x22, 0x71, 0xff, 0xfe, 0x22, 0x7d, 0x0a]), // {"q<invalid>"}
    Buffer.from(JSON.stringify({ question: 'big', answer: 'x'.repeat(1 << 20) }) + '\n'),
    line('second'),
    Buffer.from('{"question": "cut", "ans'), // no newline: the file was cut short
  ]);
  // 64 KiB chunks, as a file stream delivers them: the 1 MB line spans many.
  const chunks = Array.from({ length: Math.ceil(bytes.length / 65536) }, (_, i) =>
    bytes.subarray(i * 65536, (i + 1) * 65536),
  );
  const { records, stats } = parseJsonlStream(
    readLines(Readable.from(chunks), { maxLineBytes: MAX_JSONL_LINE_BYTES }),
    qa,
  );
  const got: string[] = [];
  for await (const r of records) got.push(r.question);
  assert.deepEqual(got, ['first', 'second']);
  assert.deepEqual(stats.malformedByReason, { 'invalid-utf8': 1, 'line-too-long': 1, 'truncated-line': 1 });
  assert.deepEqual(
    stats.malformed.map((m) => m.line),
    [2, 3, 5],
  );
});
