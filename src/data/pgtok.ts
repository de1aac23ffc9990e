// pgtok v1 tokenized shards (docs/contracts.md §1), the hand-off from TypeScript data preparation
// to the Python trainer: "PGTOK001", uint32 n, uint32 0, n × [start, length, promptLength] uint32,
// then all token ids as int32, little-endian throughout.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';

export const PGTOK_MAGIC = 'PGTOK001';
export const PGTOK_VERSION = 1;
const HEADER_BYTES = 16;
const INDEX_ENTRY_BYTES = 12;
const MAX_TOKEN_ID = 0x7fffffff;
const MAX_UINT32 = 0xffffffff;

export interface PgtokExample {
  ids: ArrayLike<number>;
  promptLength: number;
}

/** Thrown by readPgtok for a buffer that is not a well-formed pgtok v1 shard. */
export class PgtokFormatError extends Error {
  override name = 'PgtokFormatError';
}

/** The learned part is never empty: it always holds at least the EOS (the trainer rejects it too). */
function checkExample(e: PgtokExample, i: number): void {
  if (!Number.isInteger(e.promptLength) || e.promptLength < 0 || e.promptLength >= e.ids.length) {
    throw new RangeError(
      `example ${i}: promptLength ${e.promptLength} outside 0..${e.ids.length - 1} (no token left to learn)`,
    );
  }
}

function writeHeader(buf: Buffer, n: number): void {
  buf.write(PGTOK_MAGIC, 0, 'ascii');
  buf.writeUInt32LE(n, 8);
  buf.writeUInt32LE(0, 12);
}

function writeTokens(buf: Buffer, offset: number, ids: ArrayLike<number>, example: number): void {
  for (let j = 0; j < ids.length; j++) {
    const id = ids[j]!;
    if (!Number.isInteger(id) || id < 0 || id > MAX_TOKEN_ID)
      throw new RangeError(`example ${example}: token id ${id} is not a valid int32 id`);
    buf.writeInt32LE(id, offset + 4 * j);
  }
}

export function writePgtok(examples: readonly PgtokExample[]): Buffer {
  let total = 0;
  examples.forEach((e, i) => {
    checkExample(e, i);
    total += e.ids.length;
  });
  if (total > MAX_UINT32) throw new RangeError(`${total} tokens exceed the uint32 index of pgtok v1`);
  const tokensAt = HEADER_BYTES + INDEX_ENTRY_BYTES * examples.length;
  const buf = Buffer.alloc(tokensAt + 4 * total);
  writeHeader(buf, examples.length);
  let start = 0;
  examples.forEach((e, i) => {
    const at = HEADER_BYTES + INDEX_ENTRY_BYTES * i;
    buf.writeUInt32LE(start, at);
    buf.writeUInt32LE(e.ids.length, at + 4);
    buf.writeUInt32LE(e.promptLength, at + 8);
    writeTokens(buf, tokensAt + 4 * start, e.ids, i);
    start += e.ids.length;
  });
  return buf;
}

export interface DecodedPgtokExample {
  ids: Int32Array;
  promptLength: number;
}

/** Parses and validates a shard; ids are views into one copy of the token section. */
export function readPgtok(buf: Uint8Array): DecodedPgtokExample[] {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < HEADER_BYTES || b.toString('ascii', 0, 8) !== PGTOK_MAGIC) {
    throw new PgtokFormatError(
      `not a pgtok v1 shard (magic ${JSON.stringify(b.toString('ascii', 0, Math.min(8, b.length)))})`,
    );
  }
  const n = b.readUInt32LE(8);
  if (b.readUInt32LE(12) !== 0) throw new PgtokFormatError('reserved header field is not 0');
  const tokensAt = HEADER_BYTES + INDEX_ENTRY_BYTES * n;
  if (b.length < tokensAt || (b.length - tokensAt) % 4 !== 0) {
    throw new PgtokFormatError(`size ${b.length} does not fit ${n} index entries plus whole int32 tokens`);
  }
  const total = (b.length - tokensAt) / 4;
  // Copy the token section once: Int32Array views need 4-byte alignment, file buffers lack it.
  const tokens = new Int32Array(total);
  for (let i = 0; i < total; i++) tokens[i] = b.readInt32LE(tokensAt + 4 * i);
  const out: DecodedPgtokExample[] = [];
  let expectedStart = 0;
  for (let i = 0; i < n; i++) {
    const at = HEADER_BYTES + INDEX_ENTRY_BYTES * i;
    const start = b.readUInt32LE(at);
    const length = b.readUInt32LE(at + 4);
    const promptLength = b.readUInt32LE(at + 8);
    if (start !== expectedStart || start + length > total || promptLength >= length) {
      throw new PgtokFormatError(
        `example ${i}: start ${start}, length ${length}, promptLength ${promptLength} inconsistent with ${total} tokens`,
      );
    }
    expectedStart += length;
    out.push({ ids: tokens.subarray(start, start + length), promptLength });
  }
  if (expectedStart !== total) throw new PgtokFormatError(`${total - expectedStart} tokens belong to no example`);
  return out;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface PgtokFileInfo {
  examples: number;
  tokens: number;
  bytes: number;
  sha256: string;
}

/**
 * Streams examples into a shard file without holding the token section in memory: tokens go to a
 * side file while the (12 bytes per example) index grows, then header, index and tokens are
 * concatenated. The shard appears under `path` only when complete (rename), so a crash mid-write
 * never leaves a truncated shard that looks valid.
 */
export async function writePgtokFile(
  path: string,
  examples: AsyncIterable<PgtokExample> | Iterable<PgtokExample>,
): Promise<PgtokFileInfo> {
  const tokensPath = `${path}.tokens.tmp`;
  const partPath = `${path}.part`;
  const index: number[] = [];
  let total = 0;
  const side = createWriteStream(tokensPath);
  try {
    let i = 0;
    for await (const e of examples) {
      checkExample(e, i);
      if (total + e.ids.length > MAX_UINT32)
        throw new RangeError(`more than ${MAX_UINT32} tokens exceed the uint32 index of pgtok v1`);
      const chunk = Buffer.alloc(4 * e.ids.length);
      writeTokens(chunk, 0, e.ids, i);
      index.push(total, e.ids.length, e.promptLength);
      total += e.ids.length;
      i++;
      if (!side.write(chunk)) await once(side, 'drain');
    }
    side.end();
    await once(side, 'finish');

    const head = Buffer.alloc(HEADER_BYTES + 4 * index.length);
    writeHeader(head, index.length / 3);
    index.forEach((v, j) => head.writeUInt32LE(v, HEADER_BYTES + 4 * j));
    const out = createWriteStream(partPath);
    out.write(head);
    await pipeline(createReadStream(tokensPath), out);
    const sha256 = await sha256File(partPath);
    await rename(partPath, path);
    return { examples: index.length / 3, tokens: total, bytes: head.length + 4 * total, sha256 };
  } finally {
    // Wait for the close: a source that fails at once can beat the stream's async open, and an rm
    // before that open would leave the file it then creates behind.
    const closed = side.closed ? Promise.resolve() : once(side, 'close');
    side.destroy();
    await closed;
    await rm(tokensPath, { force: true });
    await rm(partPath, { force: true });
  }
}

export interface PgtokSplitManifest extends PgtokFileInfo {
  file: string;
}

export interface PgtokManifest {
  format: 'pgtok';
  version: typeof PGTOK_VERSION;
  tokenizerSha256: string;
  maxLength: number;
  bosTokenId: number | null;
  eosTokenId: number;
  padTokenId: number;
  splits: Record<string, PgtokSplitManifest>;
}

/** Describes an in-memory shard for manifest.json. */
export function describePgtok(file: string, shard: Buffer): PgtokSplitManifest {
  return {
    file,
    examples: shard.readUInt32LE(8),
    tokens: (shard.length - HEADER_BYTES - INDEX_ENTRY_BYTES * shard.readUInt32LE(8)) / 4,
    bytes: shard.length,
    sha256: createHash('sha256').update(shard).digest('hex'),
  };
}

export function pgtokManifest(
  tok: { sha256: string; bosTokenId: number | null; eosTokenId: number; padTokenId: number },
  maxLength: number,
  splits: Record<string, PgtokSplitManifest>,
): PgtokManifest {
  return {
    format: 'pgtok',
    version: PGTOK_VERSION,
    tokenizerSha256: tok.sha256,
    maxLength,
    bosTokenId: tok.bosTokenId,
    eosTokenId: tok.eosTokenId,
    padTokenId: tok.padTokenId,
    splits,
  };
}
