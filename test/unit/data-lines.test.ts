// readLines: the end-of-file flag that lets the parser tell a file cut inside its last line from a
// complete one, whatever the chunk boundaries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { parseUnifiedQaStream, readLines, splitLines, type QaRecord, type SourceLine } from '../../src/data';

const SEP = '\\n';

async function lines(text: string, size: number): Promise<SourceLine[]> {
  const bytes = Buffer.from(text);
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
  const out: SourceLine[] = [];
  for await (const l of readLines(Readable.from(chunks))) out.push(l);
  return out;
}

test('only a final line without a newline is unterminated, at any chunk size', async () => {
  for (const size of [1, 2, 5, 1000]) {
    assert.deepEqual(
      await lines('a\r\nb\n\nc', size),
      [
        { text: 'a', terminated: true },
        { text: 'b', terminated: true },
        { text: '', terminated: true },
        { text: 'c', terminated: false },
      ],
      `chunk size ${size}`,
    );
    assert.deepEqual(await lines('a\nb\n', size), [
      { text: 'a', terminated: true },
      { text: 'b', terminated: true },
    ]);
  }
  assert.deepEqual(await lines('', 1), []);
});

test('splitLines keeps its old behaviour: the unterminated last line is plain text', async () => {
  const out: string[] = [];
  for await (const l of splitLines(Readable.from([Buffer.from('x\ny')]))) out.push(l);
  assert.deepEqual(out, ['x', 'y']);
});

test('parsing readLines reports a cut last line as truncated-line and keeps it out of the records', async () => {
  const text = `is it? ${SEP} it is.\tyes\nwas it cut? ${SEP} yes.\tye`;
  const { records, stats } = parseUnifiedQaStream(readLines(Readable.from([Buffer.from(text)])), 'boolq');
  const got: QaRecord[] = [];
  for await (const r of records) got.push(r);
  assert.deepEqual(
    got.map((r) => r.answers),
    [['yes']],
  );
  assert.deepEqual(
    stats.malformed.map((m) => [m.line, m.reason]),
    [[2, 'truncated-line']],
  );
  // The same bytes through splitLines trust the last line (what the whole-text parser also does).
  const lenient = parseUnifiedQaStream(splitLines(Readable.from([Buffer.from(text)])), 'boolq');
  const all: QaRecord[] = [];
  for await (const r of lenient.records) all.push(r);
  assert.deepEqual(
    all.map((r) => r.answers),
    [['yes'], ['ye']],
  );
});
