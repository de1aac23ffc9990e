import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  PgtokFormatError,
  describePgtok,
  pgtokManifest,
  readPgtok,
  writePgtok,
  writePgtokFile,
  type PgtokExample,
} from '../../src/data';

const examples: PgtokExample[] = [
  { ids: [1, 10, 11, 12, 2], promptLength: 3 },
  { ids: [1, 20, 2], promptLength: 2 },
  { ids: Int32Array.from([1, 30, 31, 49151, 2]), promptLength: 1 },
];

test('byte layout is exactly docs/contracts.md §1', () => {
  const buf = writePgtok(examples);
  assert.equal(buf.toString('ascii', 0, 8), 'PGTOK001');
  assert.equal(buf.readUInt32LE(8), 3);
  assert.equal(buf.readUInt32LE(12), 0);
  const index = [0, 1, 2].map((i) => [0, 4, 8].map((o) => buf.readUInt32LE(16 + 12 * i + o)));
  assert.deepEqual(index, [
    [0, 5, 3],
    [5, 3, 2],
    [8, 5, 1],
  ]);
  assert.equal(buf.length, 16 + 12 * 3 + 4 * 13);
  assert.equal(buf.readInt32LE(16 + 36 + 4 * 11), 49151);
});

test('round trip, including an empty shard', () => {
  const back = readPgtok(writePgtok(examples));
  assert.deepEqual(
    back.map((e) => ({ ids: Array.from(e.ids), promptLength: e.promptLength })),
    examples.map((e) => ({ ids: Array.from(e.ids), promptLength: e.promptLength })),
  );
  assert.deepEqual(readPgtok(writePgtok([])), []);
  // A Buffer at an odd offset inside a larger allocation still reads (no alignment assumptions).
  const shard = writePgtok(examples);
  const padded = Buffer.concat([Buffer.alloc(3), shard]).subarray(3);
  assert.deepEqual(Array.from(readPgtok(padded)[2]!.ids), [1, 30, 31, 49151, 2]);
});

test('writing rejects what the trainer could not use', () => {
  assert.throws(() => writePgtok([{ ids: [1, 2], promptLength: 3 }]), /promptLength 3 outside 0..1/);
  assert.throws(() => writePgtok([{ ids: [1, 2], promptLength: 2 }]), /no token left to learn/);
  assert.throws(() => writePgtok([{ ids: [1, -5], promptLength: 1 }]), /token id -5/);
  assert.throws(() => writePgtok([{ ids: [1, 2.5], promptLength: 1 }]), RangeError);
});

test('reading rejects corrupt shards with a PgtokFormatError', () => {
  const good = writePgtok(examples);
  const bad = (mutate: (b: Buffer) => Buffer): Buffer => mutate(Buffer.from(good));
  assert.throws(
    () =>
      readPgtok(
        bad((b) => {
          b.write('PGTOK002', 0, 'ascii');
          return b;
        }),
      ),
    PgtokFormatError,
  );
  assert.throws(
    () =>
      readPgtok(
        bad((b) => {
          b.writeUInt32LE(1, 12);
          return b;
        }),
      ),
    /reserved/,
  );
  assert.throws(() => readPgtok(bad((b) => b.subarray(0, b.length - 2))), PgtokFormatError);
  assert.throws(() => readPgtok(bad((b) => b.subarray(0, b.length - 4))), PgtokFormatError);
  assert.throws(
    () =>
      readPgtok(
        bad((b) => {
          b.writeUInt32LE(5, 16 + 8);
          return b;
        }),
      ),
    /promptLength 5/,
  );
  assert.throws(() => readPgtok(Buffer.from('nope')), PgtokFormatError);
});

test('the streaming file writer produces the same bytes and reports them for the manifest', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-pgtok-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  async function* stream(): AsyncGenerator<PgtokExample> {
    for (let i = 0; i < 2000; i++) {
      const length = 1 + (i % 37);
      yield { ids: Array.from({ length }, (_, j) => (i * 31 + j) % 49152), promptLength: Math.min(i % 2, length - 1) };
    }
  }
  const collected: PgtokExample[] = [];
  for await (const e of stream()) collected.push(e);
  const path = join(dir, 'train.pgtok');
  const info = await writePgtokFile(path, stream());
  const bytes = readFileSync(path);
  assert.ok(bytes.equals(writePgtok(collected)));
  assert.deepEqual(info, {
    examples: 2000,
    tokens: collected.reduce((n, e) => n + e.ids.length, 0),
    bytes: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
  });
  assert.deepEqual(describePgtok('train.pgtok', bytes), { file: 'train.pgtok', ...info });
  assert.deepEqual(readdirSync(dir), ['train.pgtok'], 'no temporary files left behind');

  async function* failing(): AsyncGenerator<PgtokExample> {
    yield { ids: [1, 2], promptLength: 1 };
    throw new Error('source died');
  }
  const broken = join(dir, 'broken.pgtok');
  await assert.rejects(writePgtokFile(broken, failing()), /source died/);
  assert.ok(!existsSync(broken), 'a failed write leaves no shard that looks valid');
  assert.deepEqual(readdirSync(dir), ['train.pgtok']);
});

test('manifest fields follow the contract', () => {
  const shard = writePgtok(examples);
  const m = pgtokManifest({ sha256: 'ab'.repeat(32), bosTokenId: 1, eosTokenId: 2, padTokenId: 2 }, 512, {
    train: describePgtok('train.pgtok', shard),
  });
  assert.deepEqual(Object.keys(m), [
    'format',
    'version',
    'tokenizerSha256',
    'maxLength',
    'bosTokenId',
    'eosTokenId',
    'padTokenId',
    'splits',
  ]);
  assert.deepEqual(m.splits.train, {
    file: 'train.pgtok',
    examples: 3,
    tokens: 13,
    bytes: shard.length,
    sha256: createHash('sha256').update(shard).digest('hex'),
  });
});
