/**
 * Hub models (`owner/name`) staged into this worker's cache through `python -m trainer stage`
 * (huggingface_hub's snapshot_download: HF_TOKEN, HF_ENDPOINT). One cache directory per repo and
 * endpoint, one lock per cache directory (activities/cache-lock.ts): two slots staging the same model
 * take turns, so each file is fetched once, and the second finds the first's completed stage. A stage
 * is `<cache>/<sha>` with a `.complete` marker; a pinned sha that is already staged is reused without
 * asking the hub, so a worker that lost its network still runs what it has.
 */
import { existsSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FAILURES, FailureType, TRAINER_EXIT } from '../src/contracts/failures';
import { contentHash, sha256Hex } from '../src/common/hash';
import { isCommitSha } from '../src/common/hub-id';
import { logger } from '../src/common/logger';
import { withCacheLock } from './cache-lock';
import { failure } from './failure';
import { workDir } from './paths';
import { runTrainer } from './trainer-process';

/** What a tokenizer needs (config, tokenizer, special tokens, sentencepiece models); never weights. */
export const TOKENIZER_PATTERNS = ['*.json', 'tokenizer*', '*.model', '*.txt'];

export interface StageProgress {
  phase: 'download-model';
  model: string;
  bytes: number;
  totalBytes: number;
}

export interface StageHubOptions {
  /** Branch, tag or commit sha. @default the hub's `main` */
  revision?: string;
  /** Only TOKENIZER_PATTERNS (a full stage already on disk serves as well). */
  tokenizerOnly?: boolean;
  heartbeat?: (p: StageProgress) => void;
  signal?: AbortSignal;
  /** A dataset repo (custom `hub` datasets) instead of a model: another API path and cache. @default 'model' */
  repoType?: 'model' | 'dataset';
}

export interface StagedModel {
  dir: string;
  /** The commit sha the files come from. */
  revision: string;
  bytes: number;
  files: number;
}

export function hubEndpoint(): string {
  return (process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
}

/**
 * Where this worker caches `repoId`. Not keyed by endpoint: a commit sha names the same files on the
 * hub and on any mirror, and a worker that lost HF_ENDPOINT still finds what it staged.
 */
export function hubCacheDir(repoId: string, repoType: 'model' | 'dataset' = 'model'): string {
  // A dataset repo may share its owner/name with a model repo: separate caches.
  return workDir(repoType === 'dataset' ? 'datasets' : 'models', 'hub', repoId.replace('/', '--'));
}

/** trainer/stage.py's `staged_dir`: the same name on both sides. */
function stagedDir(cache: string, sha: string, patterns: string[] | null): string {
  if (!patterns) return join(cache, sha);
  return join(cache, `${sha}-${sha256Hex(JSON.stringify([...patterns].sort()).replace(/","/g, '", "')).slice(0, 12)}`);
}

function completed(dir: string): StagedModel | null {
  try {
    const m = JSON.parse(readFileSync(join(dir, '.complete'), 'utf8')) as {
      revision: string;
      bytes: number;
      files: number;
    };
    return { dir, revision: m.revision, bytes: m.bytes, files: m.files };
  } catch {
    return null;
  }
}

/** A pinned sha already staged here (full, or tokenizer files when that is all that is asked). */
function cached(cache: string, revision: string | undefined, tokenizerOnly: boolean): StagedModel | null {
  if (!isCommitSha(revision)) return null;
  return (
    completed(stagedDir(cache, revision, null)) ??
    (tokenizerOnly ? completed(stagedDir(cache, revision, TOKENIZER_PATTERNS)) : null)
  );
}

export async function stageHubModel(repoId: string, opts: StageHubOptions = {}): Promise<StagedModel> {
  const cache = hubCacheDir(repoId, opts.repoType);
  const tokenizerOnly = !!opts.tokenizerOnly;
  const hit = cached(cache, opts.revision, tokenizerOnly);
  if (hit) return hit;
  const log = logger.child({ model: repoId, revision: opts.revision ?? 'main' });
  let total = 0;
  const beat = (bytes: number) =>
    opts.heartbeat?.({ phase: 'download-model', model: repoId, bytes, totalBytes: total });
  return withCacheLock(
    join(cache, '.lock'),
    async () => {
      const again = cached(cache, opts.revision, tokenizerOnly); // staged while we waited
      if (again) return again;
      const specPath = join(cache, `stage-${process.pid}-${contentHash([opts.revision, tokenizerOnly])}.json`);
      const patterns = tokenizerOnly ? TOKENIZER_PATTERNS : null;
      await writeFile(
        specPath,
        JSON.stringify({
          repoId,
          revision: opts.revision ?? null,
          cacheDir: cache,
          allowPatterns: patterns,
          ...(opts.repoType === 'dataset' ? { repoType: 'dataset' } : {}),
        }),
      );
      let staged: StagedModel | undefined;
      let done = 0;
      const res = await runTrainer({
        args: ['stage', '--spec', specPath],
        log,
        signal: opts.signal,
        heartbeat: () => beat(done),
        heartbeatEveryMs: 5000,
        onEvent: (ev) => {
          if (ev.event === 'staging') {
            total = ev.totalBytes;
            done = ev.bytes;
            beat(done);
          } else if (ev.event === 'staged')
            staged = { dir: ev.dir, revision: ev.revision, bytes: ev.bytes, files: ev.files };
        },
      }).finally(() => rm(specPath, { force: true }));
      if (res.code === TRAINER_EXIT.done && staged) {
        log.info({ dir: staged.dir, sha: staged.revision, bytes: staged.bytes }, 'hub model staged');
        return staged;
      }
      const type = res.error?.type;
      if (res.code === TRAINER_EXIT.invalid && type && Object.hasOwn(FAILURES, type))
        throw failure(type as FailureType, res.error?.message ?? type);
      // Exit 1: a connection error, a full disk, a killed child: retryable, and the partial files stay
      // for the next attempt to resume (huggingface_hub resumes its own .incomplete files).
      throw failure(
        FailureType.TrainerCrashed,
        `staging ${repoId} failed (exit ${res.code ?? res.signal}): ${res.error?.message ?? res.stderrTail.slice(-800)}`,
      );
    },
    { onWait: () => beat(0) },
  );
}

/** For tests: whether `dir` is a completed stage. */
export function isStaged(dir: string): boolean {
  return existsSync(join(dir, '.complete'));
}
