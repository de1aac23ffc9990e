/**
 * The embedded default backend: a directory. Writes go to a temp file in the same directory and
 * are renamed into place, so a reader never sees a half-written object (same guarantee as S3 PUT).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  ChecksumMismatchError,
  checkKey,
  ObjectNotFoundError,
  type ObjectInfo,
  type ObjectRef,
  type ObjectStore,
} from './object-store';

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return h.digest('hex');
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

  async putFile(key: string, localPath: string): Promise<ObjectRef> {
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    const tmp = this.tmpPath(target);
    await copyFile(localPath, tmp);
    const [sha256, st] = await Promise.all([sha256File(tmp), stat(tmp)]);
    await rename(tmp, target);
    return { key, bytes: st.size, sha256 };
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await readFile(this.path(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ObjectNotFoundError(this.url, key);
      throw err;
    }
  }

  async getFile(key: string, localPath: string, expectedSha256?: string): Promise<void> {
    const src = this.path(key);
    await mkdir(dirname(localPath), { recursive: true });
    const tmp = this.tmpPath(localPath);
    try {
      await copyFile(src, tmp);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ObjectNotFoundError(this.url, key);
      throw err;
    }
    if (expectedSha256) {
      const actual = await sha256File(tmp);
      if (actual !== expectedSha256) {
        await rm(tmp, { force: true });
        throw new ChecksumMismatchError(key, expectedSha256, actual);
      }
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
