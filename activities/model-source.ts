/**
 * Every activity that needs model files on disk (the trainer, the exporter, the TypeScript tokenizer)
 * calls `localModelDir`: local directories pass through; `s3://` prefixes are materialized once per
 * worker; hub ids (`owner/name`) are staged with huggingface_hub (activities/hub-stage.ts). Both
 * caches are locked (activities/cache-lock.ts), so two slots never fetch one model twice nor delete
 * each other's partial files, and both can fetch only the tokenizer's files (`tokenizerOnly`), so a
 * tokenize step never copies the weights.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FailureType } from '../src/contracts/failures';
import { contentHash } from '../src/common/hash';
import { looksLikeHubId } from '../src/common/hub-id';
import { mapLimit, openStore, ProgressAggregate } from '../src/store';
import type { ActivityHeartbeatDetails } from '../src/contracts';
import { withCacheLock } from './cache-lock';
import { failure } from './failure';
import { stageHubModel } from './hub-stage';
import { workDir } from './paths';

export type { StageProgress } from './hub-stage';

export interface ModelDirOptions {
  /** Hub models: the branch, tag or commit sha (activities after stageModel get the pinned sha). */
  revision?: string;
  /** Only config and tokenizer files (tokenizeData); a complete model already here serves as well. */
  tokenizerOnly?: boolean;
  /**
   * Called with `{ phase: 'download-model', model, bytes, totalBytes }` as the model's files come
   * down (throttled): a multi-GB model takes minutes, and the calling activity must keep
   * heartbeating through them. Not called when the model is local or already cached.
   */
  heartbeat?: (details: ActivityHeartbeatDetails) => void;
  signal?: AbortSignal;
}

export interface StagedModelFiles {
  dir: string;
  /** Hub models: the resolved commit sha. */
  revision?: string;
  bytes: number;
  files: number;
}

const TOKENIZER_FILE =
  /(^|\/)(config\.json|generation_config\.json|tokenizer[^/]*|special_tokens_map\.json|[^/]*\.model|[^/]*\.txt)$/;

/** `{ revision }` when there is one (exactOptionalPropertyTypes: no `revision: undefined`). */
export function revisionOpt(revision: string | undefined): { revision?: string } {
  return revision ? { revision } : {};
}

/** A local directory holding the model `modelPath` names. */
export async function localModelDir(modelPath: string, opts: ModelDirOptions = {}): Promise<string> {
  return (await stageModelFiles(modelPath, opts)).dir;
}

/** `localModelDir` with what it staged: the resolved sha of a hub model, bytes and files. */
export async function stageModelFiles(modelPath: string, opts: ModelDirOptions = {}): Promise<StagedModelFiles> {
  if (modelPath.startsWith('s3://')) return materializeS3(modelPath, opts);
  if (!existsSync(modelPath) && looksLikeHubId(modelPath)) return stageHubModel(modelPath, opts);
  return { dir: modelPath, bytes: 0, files: 0 };
}

async function materializeS3(modelPath: string, opts: ModelDirOptions): Promise<StagedModelFiles> {
  const url = modelPath.replace(/\/+$/, '');
  const store = openStore(url);
  const listed = (await store.list('')).filter((o) => !o.key.endsWith('/'));
  if (!listed.some((o) => o.key === 'config.json')) {
    throw failure(
      FailureType.ModelNotFound,
      `${modelPath} holds no config.json: expected the prefix of an HF model directory`,
    );
  }
  // The listing (keys and sizes) identifies the version: a re-uploaded model gets a new cache dir.
  const version = { url, objects: listed.map((o) => [o.key, o.bytes]) };
  const full = workDir('models', contentHash(version));
  const tokDir = workDir('models', `${contentHash(version)}-tokenizer`);
  const done = (dir: string) => existsSync(join(dir, '.complete'));
  const hit = () => (done(full) ? full : opts.tokenizerOnly && done(tokDir) ? tokDir : null);
  const objects = opts.tokenizerOnly ? listed.filter((o) => TOKENIZER_FILE.test(o.key)) : listed;
  const result = (dir: string) => ({ dir, bytes: objects.reduce((n, o) => n + o.bytes, 0), files: objects.length });
  const cachedDir = hit();
  if (cachedDir) return result(cachedDir);
  const dir = opts.tokenizerOnly ? tokDir : full;
  return withCacheLock(
    `${dir}.lock`,
    async () => {
      const now = hit(); // materialized while we waited
      if (now) return result(now);
      const { heartbeat } = opts;
      const progress = new ProgressAggregate(
        objects.reduce((n, o) => n + o.bytes, 0),
        heartbeat ? { onProgress: (p) => heartbeat({ phase: 'download-model', model: modelPath, ...p }) } : {},
      );
      // Under the lock no one else writes `tmp`: a leftover is a dead holder's and is redone whole.
      const tmp = `${dir}.partial`;
      await rm(tmp, { recursive: true, force: true });
      await mkdir(tmp, { recursive: true });
      // S3 objects written by peftgrid carry their sha256; getFile verifies it when present.
      await mapLimit(objects, 4, (o) =>
        store.getFile(o.key, join(tmp, ...o.key.split('/')), undefined, progress.file()),
      );
      progress.done();
      await writeFile(join(tmp, '.complete'), JSON.stringify({ url, files: objects.length }));
      await rm(dir, { recursive: true, force: true });
      await rename(tmp, dir);
      return result(dir);
    },
    { onWait: () => opts.heartbeat?.({ phase: 'download-model', model: modelPath, bytes: 0, totalBytes: 0 }) },
  );
}

/** For tests and tools: the marker of a materialized model. */
export function materializedFrom(dir: string): string | null {
  try {
    return (JSON.parse(readFileSync(join(dir, '.complete'), 'utf8')) as { url: string }).url;
  } catch {
    return null;
  }
}
