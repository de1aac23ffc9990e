/**
 * The embedded default backend: a directory. Writes go to a temp file in the same directory and
 * are renamed into place, so a reader never sees a half-written object (same guarantee as S3 PUT).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  ChecksumMismatchError,
  checkKey,
  ObjectNotFoundError,
  type ObjectInfo,
  type ObjectRef,
  type ObjectStore,
} from './object-store';
import { ProgressCounter, type TransferOptions } from './progress';

/** Hex sha256 of a file; `onBytes` sees each chunk's size as it is hashed (progress of a long hash). */
export async function sha256File(path: string, onBytes?: (n: number) => void): Promise<string> {
  const h = createHash('sha256');
  if (!onBytes) {
    await pipeline(createReadStream(path), h);
    return h.digest('hex');
  }
  for await (const chunk of createReadStream(path)) {
    h.update(chunk as Buffer);
    onBytes((chunk as Buffer).length);
  }
  return h.digest('hex');
}

/**
 * Copies `src` to `dst` in one streamed pass that also hashes the bytes and counts them: a copy
 * of a multi-GB file reports progress as it goes, and needs no second read to checksum it.
 */
async function copyHashed(src: string, dst: string, opts: TransferOptions): Promise<{ sha256: string; bytes: number }> {
  const { size } = await stat(src);
  const progress = new ProgressCounter(size, opts);
  const h = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      bytes += chunk.length;
      progress.add(chunk.length);
      cb(null, chunk);
    },
  });
  await pipeline(createReadStream(src), tap, createWriteStream(dst));
  progress.done();
  return { sha256: h.digest('hex'), bytes };
}

export class FileObjectStore implements ObjectStore {
  readonly url: string;
  constructor(readonly root: string) {
    this.url = 'file://' + root;
  }

  private path(key: string): string {
    return join(this.root, ...checkKey(key).split('/'));
  }

  private tmpPath(target: string): string {
    return `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  }

  async put(key: string, data: Uint8Array | string): Promise<ObjectRef> {
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    const tmp = this.tmpPath(target);
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    await writeFile(tmp, bytes);
    await rename(tmp, target);
    return { key, bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') };
  }

  async putFile(key: string, localPath: string, opts: TransferOptions = {}): Promise<ObjectRef> {
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    const tmp = this.tmpPath(target);
    try {
      const { sha256, bytes } = await copyHashed(localPath, tmp, opts);
      await rename(tmp, target);
      return { key, bytes, sha256 };
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await readFile(this.path(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ObjectNotFoundError(this.url, key);
      throw err;
    }
  }

  async getFile(key: string, localPath: string, expectedSha256?: string, opts: TransferOptions = {}): Promise<void> {
    const src = this.path(key);
    await mkdir(dirname(localPath), { recursive: true });
    const tmp = this.tmpPath(localPath);
    let actual: string;
    try {
      // Hashed in the same pass as the copy: verification costs no second read.
      actual = (await copyHashed(src, tmp, opts)).sha256;
    } catch (err) {
      await rm(tmp, { force: true });
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ObjectNotFoundError(this.url, key);
      throw err;
    }
    if (expectedSha256 && actual !== expectedSha256) {
      await rm(tmp, { force: true });
      throw new ChecksumMismatchError(key, expectedSha256, actual);
    }
    await rename(tmp, localPath);
  }

  async head(key: string): Promise<ObjectInfo | null> {
    try {
      const st = await stat(this.path(key));
      return st.isFile() ? { key, bytes: st.size } : null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    // Walk only the deepest directory the prefix names, then filter by the full prefix.
    const dirPart = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    const start = dirPart ? this.path(dirPart) : this.root;
    const out: ObjectInfo[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const e of entries) {
        const full = join(dir, e.name);
        if (e.isDirectory()) await walk(full);
        else if (e.isFile() && !e.name.includes('.tmp-')) {
          const key = relative(this.root, full).split(sep).join('/');
          if (key.startsWith(prefix)) out.push({ key, bytes: (await stat(full)).size });
        }
      }
    };
    await walk(start);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }
}
