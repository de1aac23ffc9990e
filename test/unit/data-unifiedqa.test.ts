import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import {
  MAX_LINE_BYTES,
  parseChoices,
  parseUnifiedQa,
  parseUnifiedQaStream,
  recordId,
  splitLines,
  toUnifiedQaInput,
  type QaRecord,
} from '../../src/data';

const SEP = ' \\n ';

test('splits the input on the literal two characters \\n and keeps real text intact', () => {
  const { records, malformed, total } = parseUnifiedQa(
    `is the sky blue?${SEP}the sky is blue on clear days.\tyes\n`,
    'boolq',
  );
  assert.equal(total, 1);
  assert.deepEqual(malformed, []);
  assert.deepEqual(records, [
    {
      id: recordId('boolq', 'is the sky blue? \\n the sky is blue on clear days.'),
      dataset: 'boolq',
      format: 'yes_no',
      question: 'is the sky blue?',
      context: 'the sky is blue on clear days.',
      answers: ['yes'],
    },
  ]);
});

test('multiple choice: options parsed in order, passage after them, quotes have no meaning', () => {
  const line = `which is a "metal"?${SEP}(a) iron (b) vitamin (a) pills (c) wood${SEP}"metals conduct heat.\t(a) iron`;
  const { records } = parseUnifiedQa(`${line}\n`, 'race_string');
  assert.deepEqual(records[0]?.choices, ['iron', 'vitamin (a) pills', 'wood']);
  assert.equal(records[0]?.context, '"metals conduct heat.');
  assert.equal(records[0]?.question, 'which is a "metal"?');
  assert.deepEqual(parseChoices('(a) x (c) y'), undefined, 'labels must run in order');
  assert.deepEqual(parseChoices('(a) only one'), undefined);
  assert.deepEqual(parseChoices('(a) x (b) y (c) z (d) w (e) v'), ['x', 'y', 'z', 'w', 'v']);
});

test('narrativeqa: adjacent repeats of a question become one record with every reference answer', () => {
  const q = `who finds the key?${SEP}tom finds a key under the bridge.`;
  const text = [
    `${q}\ttom`,
    `${q}\tthe boy tom`,
    `${q}\ttom`,
    `what is under the bridge?${SEP}tom finds a key under the bridge.\ta key`,
  ].join('\n');
  const r = parseUnifiedQa(text, 'narrativeqa');
  assert.equal(r.records.length, 2);
  assert.deepEqual(r.records[0]?.answers, ['tom', 'the boy tom']);
  assert.equal(r.duplicates, 1, 'the identical third line is a duplicate, not a new answer');
  assert.equal(r.total, 4);
});

test('ids are stable hashes of dataset and input', () => {
  const a = parseUnifiedQa(`q?${SEP}c.\tyes`, 'boolq').records[0]!;
  const b = parseUnifiedQa(`q?${SEP}c.\tno`, 'boolq').records[0]!;
  const c = parseUnifiedQa(`q?${SEP}c.\tyes`, 'squad1_1').records[0]!;
  assert.equal(a.id, b.id);
  assert.notEqual(a.id, c.id);
  assert.match(a.id, /^boolq-[0-9a-f]{16}$/);
});

test('malformed lines are reported with line numbers and reasons, never dropped silently', () => {
  const lines = [
    `good?${SEP}passage.\tyes`,
    'no tab here',
    `empty answer?${SEP}p.\t   `,
    `\tno input`,
    `bad bytes \uFFFD?${SEP}p.\tyes`,
    `too many?\tyes\tno`,
    '',
    `x${'y'.repeat(MAX_LINE_BYTES)}\tyes`,
    `trailing tab is fine?${SEP}p.\tno\t`,
    `good?${SEP}passage.\tno`,
  ];
  const r = parseUnifiedQa(`${lines.join('\r\n')}\r\n`, 'boolq');
  assert.equal(r.total, 10);
  assert.deepEqual(
    r.malformed.map((m) => [m.line, m.reason]),
    [
      [2, 'missing-tab'],
      [3, 'empty-answer'],
      [4, 'empty-input'],
      [5, 'invalid-utf8'],
      [6, 'too-many-tabs'],
      [7, 'empty-line'],
      [8, 'line-too-long'],
      [10, 'duplicate-input-not-adjacent'],
    ],
  );
  assert.match(r.malformed.at(-1)!.detail, /line 1/);
  assert.deepEqual(
    r.records.map((x) => x.answers),
    [['yes'], ['no']],
  );
});

test('a multiple-choice line without options is reported, not guessed', () => {
  const r = parseUnifiedQa('which is a metal?\tiron\n', 'arc_easy');
  assert.deepEqual(r.malformed, [
    { line: 1, reason: 'missing-choices', detail: 'no "(a) … (b) …" options in a multiple-choice dataset' },
  ]);
});

test('a UTF-8 BOM on the first line is not part of the question', () => {
  const r = parseUnifiedQa(`\uFEFFq?${SEP}p.\tyes`, 'boolq');
  assert.equal(r.records[0]?.question, 'q?');
});

async function collect(records: AsyncIterable<QaRecord>): Promise<QaRecord[]> {
  const out: QaRecord[] = [];
  for await (const r of records) out.push(r);
  return out;
}

test('streaming from bytes equals the whole-text parse, whatever the chunk boundaries', async () => {
  const q = `wer ist über die brücke gegangen? 🌉${SEP}anna ging über die brücke.`;
  const text = [`${q}\tanna`, `${q}\tdie frau anna`, 'broken', `wo?${SEP}in köln.\tköln`].join('\n');
  const whole = parseUnifiedQa(text, 'narrativeqa');
  const bytes = Buffer.from(text, 'utf8');
  for (const size of [1, 2, 3, 7, 64, bytes.length]) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
    const { records, stats } = parseUnifiedQaStream(splitLines(Readable.from(chunks)), 'narrativeqa');
    assert.deepEqual(await collect(records), whole.records, `chunk size ${size}`);
    assert.deepEqual(stats.malformed, whole.malformed);
    assert.equal(stats.total, whole.total);
    assert.equal(stats.records, whole.records.length);
  }
});

test('invalid UTF-8 bytes are reported for their line only', async () => {
  const bytes = Buffer.concat([
    Buffer.from(`ok?${SEP}p.\tyes\nbad `),
    Buffer.from([0xc3, 0x28]),
    Buffer.from(`?${SEP}p.\tno\nfine?${SEP}p.\tno\n`),
  ]);
  const { records, stats } = parseUnifiedQaStream(splitLines(Readable.from([bytes])), 'boolq');
  assert.equal((await collect(records)).length, 2);
  assert.deepEqual(
    stats.malformed.map((m) => [m.line, m.reason]),
    [[2, 'invalid-utf8']],
  );
});

test('a runaway line is cut to its limit while reading, so memory stays bounded', async () => {
  async function* huge(): AsyncGenerator<Buffer> {
    yield Buffer.from(`first?${SEP}p.\tyes\n`);
    for (let i = 0; i < 256; i++) yield Buffer.alloc(64 * 1024, 0x61); // 16 MiB without a newline
    yield Buffer.from(`\nlast?${SEP}p.\tno`);
  }
  const lines: string[] = [];
  for await (const line of splitLines(huge())) lines.push(line);
  assert.equal(lines.length, 3);
  assert.equal(Buffer.byteLength(lines[1]!), MAX_LINE_BYTES + 1);
  const { records, stats } = parseUnifiedQaStream(splitLines(huge()), 'boolq');
  assert.equal((await collect(records)).length, 2);
  assert.deepEqual(
    stats.malformed.map((m) => [m.line, m.reason]),
    [[2, 'line-too-long']],
  );
});

test('the malformed detail list is capped but the count is not', async () => {
  const text = Array.from({ length: 50 }, () => 'junk').join('\n');
  const { records, stats } = parseUnifiedQaStream(splitLines(Readable.from([text])), 'boolq', {
    maxMalformedDetails: 5,
  });
  assert.equal((await collect(records)).length, 0);
  assert.equal(stats.malformedCount, 50);
  assert.equal(stats.malformed.length, 5);
  assert.deepEqual(stats.malformedByReason, { 'missing-tab': 50 });
});

test('toUnifiedQaInput is the inverse of parsing', () => {
  const fields = { question: 'which?', choices: ['a b', 'c'], context: 'first part\nsecond part' };
  const input = toUnifiedQaInput(fields);
  assert.equal(input, 'which? \\n (a) a b (b) c \\n first part \\n second part');
  const r = parseUnifiedQa(`${input}\tc`, 'race_string').records[0]!;
  assert.deepEqual({ question: r.question, choices: r.choices, context: r.context }, fields);
});
