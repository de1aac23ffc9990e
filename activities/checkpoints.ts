/**
 * Committed training checkpoints in the store (docs/contracts.md §3): which exist, which one a
 * resume uses, how one is committed, and how a checkpoint the trainer refused is marked.
 *
 * Layout of one checkpoint, `runs/<runKey>/checkpoints/step-<N>/`:
 *   manifest.json        the commit point; names the stage holding the files, lists them with sha256
 *   <stage>/…            the files, uploaded by one attempt (stage = `a<attempt>-<random>`)
 *   rejected.json        optional: the trainer of some code version refused to resume from it
 * A reader trusts the manifest only. An attempt that timed out but still runs writes into its own
 * stage, so it can never clobber the files a newer attempt's manifest points at.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  getDirectory,
  joinKey,
  MANIFEST,
  putDirectory,
  readManifest,
  type DirectoryManifest,
  type ObjectStore,
  type TransferOptions,
} from '../src/store';

export interface CheckpointMeta {
  step: number;
  loss?: number;
  runKey: string;
}

/** Marker file of a checkpoint the trainer refused (`CheckpointRejected`, exit 3). */
export const REJECTED = 'rejected.json';

export interface CheckpointRejection {
  /** Worker code version whose trainer refused it (activities/results.ts codeVersion()). */
  codeVersion: string;
  /** The trainer's error type and message. */
  type: string;
  reason: string;
  /** ms since the epoch. */
  at: number;
}

export interface RejectedMarker {
  rejections: CheckpointRejection[];
}

export interface RestoredCheckpoint {
  step: number;
  /** Store prefix `runs/<runKey>/checkpoints/step-<N>`. */
  prefix: string;
  /** Local directory the checkpoint was downloaded to (the trainer's `--resume-from`). */
  dir: string;
}

export function checkpointsPrefix(runKey: string): string {
  return joinKey('runs', runKey, 'checkpoints');
}

export function checkpointKey(runKey: string, step: number): string {
  return joinKey(checkpointsPrefix(runKey), `step-${step}`);
}

/** The per-attempt stage name: the activity attempt plus randomness, so two workers never share one. */
export function attemptStage(attempt: number): string {
  return `a${attempt}-${randomBytes(4).toString('hex')}`;
}

interface IndexEntry {
  step: number;
  committed: boolean;
  markedRejected: boolean;
}

/** One listing of the run's checkpoints: per step, whether it is committed and carries a marker. */
async function checkpointIndex(store: ObjectStore, runKey: string): Promise<Map<number, IndexEntry>> {
  const index = new Map<number, IndexEntry>();
  for (const o of await store.list(checkpointsPrefix(runKey) + '/')) {
    const m = /\/step-(\d+)\/([^/]+)$/.exec(o.key);
    if (!m) continue;
    const step = Number(m[1]);
    const e = index.get(step) ?? { step, committed: false, markedRejected: false };
    if (m[2] === MANIFEST) e.committed = true;
    if (m[2] === REJECTED) e.markedRejected = true;
    index.set(step, e);
  }
  return index;
}

/** Steps of every committed checkpoint (manifest present), newest first. */
export async function committedCheckpoints(store: ObjectStore, runKey: string): Promise<number[]> {
  return [...(await checkpointIndex(store, runKey)).values()]
    .filter((e) => e.committed)
    .map((e) => e.step)
    .sort((a, b) => b - a);
}

export async function readRejections(store: ObjectStore, prefix: string): Promise<CheckpointRejection[]> {
  const key = joinKey(prefix, REJECTED);
  if (!(await store.head(key))) return [];
  try {
    return (JSON.parse((await store.get(key)).toString('utf8')) as RejectedMarker).rejections ?? [];
  } catch {
    return []; // an unreadable marker only costs one more trainer start, which re-marks it
  }
}

/**
 * Records that the trainer of `rejection.codeVersion` refused this checkpoint. The weights stay:
 * a worker of another version (an older torch, the previous state version) may still load them.
 */
export async function markRejected(store: ObjectStore, prefix: string, rejection: CheckpointRejection): Promise<void> {
  const rejections = (await readRejections(store, prefix)).filter((r) => r.codeVersion !== rejection.codeVersion);
  const marker: RejectedMarker = { rejections: [...rejections, rejection] };
  await store.put(joinKey(prefix, REJECTED), JSON.stringify(marker, null, 1));
}

export interface RestoreOptions {
  /** The heartbeat's checkpoint key: a candidate even if the listing does not show it (yet). */
  hinted?: string;
  /** Steps not to use (rejected earlier in this attempt, even if marking them failed). */
  skip?: ReadonlySet<number>;
  /** This worker's code version: checkpoints it rejected before are skipped. */
  codeVersion: string;
  /** Progress of each candidate's download (a 7B checkpoint with optimizer state is GBs). */
  transfer?: TransferOptions;
}

/**
 * Downloads the newest checkpoint that verifies. Candidates: the heartbeat's checkpoint and every
 * committed one, highest step first (the heartbeat can be seconds older than the newest commit).
 * Corrupt ones are logged and skipped; so are ones this code version's trainer refused before.
 */
export async function restoreCheckpoint(
  store: ObjectStore,
  runKey: string,
  localRoot: string,
  opts: RestoreOptions,
  log: Logger,
): Promise<RestoredCheckpoint | null> {
  const index = await checkpointIndex(store, runKey);
  const steps = new Set([...index.values()].filter((e) => e.committed).map((e) => e.step));
  const hintedStep = Number(/\/step-(\d+)$/.exec(opts.hinted ?? '')?.[1] ?? NaN);
  if (opts.hinted === checkpointKey(runKey, hintedStep)) steps.add(hintedStep);
  for (const step of [...steps].sort((a, b) => b - a)) {
    const prefix = checkpointKey(runKey, step);
    if (opts.skip?.has(step)) continue;
    // The listing says whether a marker exists; only then is it read (one GET per marked checkpoint).
    const marked = index.get(step)?.markedRejected ?? true;
    const mine = marked
      ? (await readRejections(store, prefix)).find((r) => r.codeVersion === opts.codeVersion)
      : undefined;
    if (mine) {
      log.info(
        { checkpoint: prefix, step, rejectedAt: mine.at, reason: mine.reason },
        'skipping a checkpoint this code version rejected before',
      );
      continue;
    }
    const dir = join(localRoot, `step-${step}`);
    const t0 = Date.now();
    try {
      const manifest = await getDirectory<CheckpointMeta>(store, prefix, dir, opts.transfer);
      // downloadMs/bytes feed the recovery benchmark (bench/recovery.ts) and operators' dashboards.
      // (Field order matters to log parsers: `"step":N,"msg":…` stays last, as before.)
      log.info(
        {
          checkpoint: prefix,
          stage: manifest.stage,
          downloadMs: Date.now() - t0,
          bytes: manifest.bytes,
          step: manifest.meta.step,
        },
        'resuming from checkpoint',
      );
      return { step: manifest.meta.step, prefix, dir };
    } catch (err) {
      log.warn(
        { checkpoint: prefix, err: (err as Error).message },
        'checkpoint failed verification; falling back to the previous one',
      );
      await rm(dir, { recursive: true, force: true });
    }
  }
  return null;
}

export type CommitOutcome =
  | { status: 'committed'; manifest: DirectoryManifest<CheckpointMeta>; replaced: boolean }
  | { status: 'skipped'; manifest: DirectoryManifest<CheckpointMeta> };

/**
 * Commits one local checkpoint directory under `stage`. A step that is already committed is never
 * rewritten in place: it is skipped (a zombie attempt, or a resumed trainer re-announcing a step),
 * unless some trainer rejected it, in which case the manifest goes first (from then on the old
 * checkpoint does not exist for any reader), then the marker, and this attempt commits its own.
 */
export async function commitCheckpoint(
  store: ObjectStore,
  prefix: string,
  dir: string,
  meta: CheckpointMeta,
  stage: string,
  transfer: TransferOptions = {},
): Promise<CommitOutcome> {
  const existing = await readManifest<CheckpointMeta>(store, prefix);
  let replaced = false;
  if (existing) {
    if ((await readRejections(store, prefix)).length === 0) return { status: 'skipped', manifest: existing };
    await store.delete(joinKey(prefix, MANIFEST));
    await store.delete(joinKey(prefix, REJECTED));
    replaced = true;
  }
  const manifest = await putDirectory<CheckpointMeta>(store, prefix, dir, meta, { ...transfer, stage });
  return { status: 'committed', manifest, replaced };
}
