/**
 * Directory artifacts (checkpoints, adapters, ONNX exports) in an object store. Files go up first,
 * `manifest.json` last: the manifest is the commit point, so a directory without one does not
 * exist for any reader, and every file is verified against its sha256 on the way down.
 *
 * Staged commits (checkpoints): the files go under `<prefix>/<stage>/…`, a name unique to the
 * writer, and the manifest at `<prefix>/manifest.json` names that stage. Two writers of the same
 * prefix (an attempt that timed out but still runs, and the attempt that replaced it) then never
 * overwrite each other's files: whichever manifest is there points at one writer's complete set.
 */
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { sha256File } from './file-store';
import { joinKey, type ObjectStore } from './object-store';
import { ProgressAggregate, type TransferOptions } from './progress';

export interface ManifestFile {
  path: string;
  bytes: number;
  sha256: string;
}

export interface DirectoryManifest<M = Record<string, unknown>> {
  version: 1;
  /**
   * Sub-prefix holding the files (`<prefix>/<stage>/<path>`), for staged commits; absent when the
   * files sit directly under the prefix. Readers resolve keys with {@link manifestFileKey} only.
   */
  stage?: string;
  /** Paths relative to the directory (and to `stage`): also where they land locally. */
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

export interface PutDirectoryOptions extends TransferOptions {
  /** Upload the files under `<prefix>/<stage>/` (a name unique to this writer). @default none */
  stage?: string;
  /** Files uploaded at once. @default 4 */
  parallel?: number;
}

/** `onProgress` sees the directory's bytes summed over its files (total: every file's size). */
export interface GetDirectoryOptions extends TransferOptions {
  /** Files downloaded at once. @default 4 */
  parallel?: number;
}

/** The store key of one file of a committed directory: the only way readers should build it. */
export function manifestFileKey(
  prefix: string,
  manifest: Pick<DirectoryManifest<unknown>, 'stage'>,
  path: string,
): string {
  return manifest.stage ? joinKey(prefix, manifest.stage, path) : joinKey(prefix, path);
}

/** Uploads every file of `dir` under `prefix` (or its stage), then the manifest. Returns the manifest. */
export async function putDirectory<M>(
  store: ObjectStore,
  prefix: string,
  dir: string,
  meta: M,
  opts: PutDirectoryOptions = {},
): Promise<DirectoryManifest<M>> {
  const { stage, parallel = 4 } = opts;
  if (stage !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(stage)) {
    throw new TypeError(
      `putDirectory stage: got ${JSON.stringify(stage)}, expected one key segment of letters, digits, '.', '_' or '-'`,
    );
  }
  const files = (await listFiles(dir)).filter((f) => f !== MANIFEST);
  const sizes = await Promise.all(files.map(async (f) => (await stat(join(dir, f))).size));
  const progress = new ProgressAggregate(
    sizes.reduce((s, n) => s + n, 0),
    opts,
  );
  const uploaded = await mapLimit(files, parallel, async (path) => {
    const ref = await store.putFile(manifestFileKey(prefix, { stage }, path), join(dir, path), progress.file());
    return { path, bytes: ref.bytes, sha256: ref.sha256 };
  });
  const manifest: DirectoryManifest<M> = {
    version: 1,
    ...(stage ? { stage } : {}),
    files: uploaded,
    bytes: uploaded.reduce((s, f) => s + f.bytes, 0),
    meta,
  };
  await store.put(joinKey(prefix, MANIFEST), JSON.stringify(manifest, null, 1));
  progress.done();
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
export async function getDirectory<M>(
  store: ObjectStore,
  prefix: string,
  dir: string,
  options: number | GetDirectoryOptions = {},
): Promise<DirectoryManifest<M>> {
  // A bare number is the parallelism (the signature before progress reporting).
  const opts: GetDirectoryOptions = typeof options === 'number' ? { parallel: options } : options;
  const manifest = await readManifest<M>(store, prefix);
  if (!manifest) throw new Error(`no committed directory at ${prefix} (manifest.json missing)`);
  await mkdir(dir, { recursive: true });
  const progress = new ProgressAggregate(
    manifest.files.reduce((s, f) => s + f.bytes, 0),
    opts,
  );
  await mapLimit(manifest.files, opts.parallel ?? 4, async (f) => {
    const local = join(dir, ...f.path.split('/'));
    const st = await stat(local).catch(() => null);
    // A multi-GB file re-verified in place is reported as hashed bytes: it is not a stall.
    if (st && st.size === f.bytes && (await sha256File(local, (n) => progress.hashed(n))) === f.sha256)
      return progress.skipped(f.bytes);
    await store.getFile(manifestFileKey(prefix, manifest, f.path), local, f.sha256, progress.file());
  });
  progress.done();
  return manifest;
}
