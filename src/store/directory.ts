/**
 * Directory artifacts (checkpoints, adapters, ONNX exports) in an object store. Files go up first,
 * `manifest.json` last: the manifest is the commit point, so a directory without one does not
 * exist for any reader, and every file is verified against its sha256 on the way down.
 */
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { sha256File } from './file-store';
import { joinKey, type ObjectStore } from './object-store';

export interface ManifestFile {
  path: string;
  bytes: number;
  sha256: string;
}

export interface DirectoryManifest<M = Record<string, unknown>> {
  version: 1;
  files: ManifestFile[];
  /** Total bytes, for progress and retention decisions. */
  bytes: number;
  meta: M;
}

export const MANIFEST = 'manifest.json';

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(relative(dir, join(e.parentPath, e.name)).split(sep).join('/'));
  }
  return out.sort();
}

/** Bounded parallelism without a dependency. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  });
  await Promise.all(workers);
  return results;
}

/** Uploads every file of `dir` under `prefix`, then the manifest. Returns the manifest. */
export async function putDirectory<M>(store: ObjectStore, prefix: string, dir: string, meta: M, parallel = 4): Promise<DirectoryManifest<M>> {
  const files = (await listFiles(dir)).filter((f) => f !== MANIFEST);
  const uploaded = await mapLimit(files, parallel, async (path) => {
    const ref = await store.putFile(joinKey(prefix, path), join(dir, path));
    return { path, bytes: ref.bytes, sha256: ref.sha256 };
  });
  const manifest: DirectoryManifest<M> = { version: 1, files: uploaded, bytes: uploaded.reduce((s, f) => s + f.bytes, 0), meta };
  await store.put(joinKey(prefix, MANIFEST), JSON.stringify(manifest, null, 1));
  return manifest;
}

/** The manifest of a committed directory, or null when it has none (absent or never committed). */
export async function readManifest<M>(store: ObjectStore, prefix: string): Promise<DirectoryManifest<M> | null> {
  if (!(await store.head(joinKey(prefix, MANIFEST)))) return null;
  try {
    return JSON.parse((await store.get(joinKey(prefix, MANIFEST))).toString('utf8')) as DirectoryManifest<M>;
  } catch {
    return null; // an unreadable manifest means the directory was never committed properly
  }
}

/**
 * Downloads a committed directory into `dir`, verifying each file. Files already present locally
 * with the right size are re-verified, not re-fetched. Throws ChecksumMismatchError on corruption.
 */
export async function getDirectory<M>(store: ObjectStore, prefix: string, dir: string, parallel = 4): Promise<DirectoryManifest<M>> {
  const manifest = await readManifest<M>(store, prefix);
  if (!manifest) throw new Error(`no committed directory at ${prefix} (manifest.json missing)`);
  await mkdir(dir, { recursive: true });
  await mapLimit(manifest.files, parallel, async (f) => {
    const local = join(dir, ...f.path.split('/'));
    const st = await stat(local).catch(() => null);
    if (st && st.size === f.bytes && (await sha256File(local)) === f.sha256) return;
    await store.getFile(joinKey(prefix, f.path), local, f.sha256);
  });
  return manifest;
}
