/**
 * Models named by an `s3://` prefix are materialized once per worker into a local cache (the
 * trainer, the exporter and the TypeScript tokenizer all need files on disk); local directories
 * and hub ids pass through unchanged (the trainer resolves hub ids itself where it is online).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FailureType } from '../src/contracts/failures';
import { failure } from './failure';
import { contentHash } from '../src/common/hash';
import { mapLimit, openStore, ProgressAggregate } from '../src/store';
import type { ActivityHeartbeatDetails } from '../src/contracts';
import { workDir } from './paths';

export interface LocalModelDirOptions {
  /**
   * Called with `{ phase: 'download-model', bytes, totalBytes }` as the model's files come down
   * (throttled by the store): a multi-GB model takes minutes, and the calling activity must keep
   * heartbeating through them. Not called when the model is local or already cached.
   */
  heartbeat?: (details: ActivityHeartbeatDetails) => void;
}

/** A local directory holding the model `modelPath` names. */
export async function localModelDir(modelPath: string, opts: LocalModelDirOptions = {}): Promise<string> {
  if (!modelPath.startsWith('s3://')) return modelPath;
  const url = modelPath.replace(/\/+$/, '');
  const store = openStore(url);
  const objects = (await store.list('')).filter((o) => !o.key.endsWith('/'));
  if (!objects.some((o) => o.key === 'config.json')) {
    throw failure(
      FailureType.ModelNotFound,
      `${modelPath} holds no config.json: expected the prefix of an HF model directory`,
    );
  }
  // The listing (keys and sizes) identifies the version: a re-uploaded model gets a new cache dir.
  const dir = workDir('models', contentHash({ url, objects: objects.map((o) => [o.key, o.bytes]) }));
  if (existsSync(join(dir, '.complete'))) return dir;
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const { heartbeat } = opts;
  const progress = new ProgressAggregate(
    objects.reduce((s, o) => s + o.bytes, 0),
    heartbeat ? { onProgress: (p) => heartbeat({ phase: 'download-model', ...p }) } : {},
  );
  // S3 objects written by peftgrid carry their sha256; getFile verifies it when present.
  await mapLimit(objects, 4, (o) => store.getFile(o.key, join(tmp, ...o.key.split('/')), undefined, progress.file()));
  progress.done();
  await writeFile(join(tmp, '.complete'), JSON.stringify({ url, files: objects.length }));
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return dir;
}

/** For tests and tools: the marker of a materialized model. */
export function materializedFrom(dir: string): string | null {
  try {
    return (JSON.parse(readFileSync(join(dir, '.complete'), 'utf8')) as { url: string }).url;
  } catch {
    return null;
  }
}
