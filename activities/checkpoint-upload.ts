/**
 * The I/O behind trainModel's `commitCheckpoint` and `applyRetention` effects: upload one local
 * checkpoint into this attempt's stage (retrying while the store is down), then prune old ones.
 */
import type { Logger } from 'pino';
import { checkpointRetryMsEnv } from '../src/common/env';
import { pruneCheckpoints, type ObjectStore, type RetentionPolicy, type TransferOptions } from '../src/store';
import { checkpointKey, checkpointsPrefix, commitCheckpoint } from './checkpoints';

/**
 * How long one checkpoint upload keeps retrying while the store is unreachable before the attempt
 * gives up (and Temporal retries it on a fresh start from the last committed checkpoint). The S3
 * client already retries each request a few times within seconds; this covers outages of minutes
 * (a restarting object store, a network partition) without throwing away the running trainer.
 * Overridable for tests and operators: PEFTGRID_CHECKPOINT_RETRY_MS.
 */
const CHECKPOINT_RETRY_MS = 5 * 60_000;
/** Backoff between upload tries: short enough to notice a returning store within seconds. */
const CHECKPOINT_BACKOFF_MS = [1000, 2000, 4000, 5000];

export function checkpointRetryMs(): number {
  return checkpointRetryMsEnv() ?? CHECKPOINT_RETRY_MS;
}

export interface CheckpointUploadInput {
  store: ObjectStore;
  runKey: string;
  /** This attempt's stage (activities/checkpoints.ts `attemptStage`). */
  stage: string;
  step: number;
  dir: string;
  loss: number | undefined;
  log: Logger;
  /**
   * Events are handled in order, so while an upload waits no step event heartbeats: the uploader
   * heartbeats itself between tries, or Temporal would declare the worker dead during a store outage.
   */
  heartbeat: () => void;
  /** Progress of the upload: its reports heartbeat the bytes (a 7B checkpoint takes minutes). */
  transfer?: TransferOptions;
  /** Stop retrying when this is aborted (activity cancellation). */
  signal: AbortSignal;
}

/** Commits the checkpoint; returns its key, or null when it gave up. */
export async function uploadCheckpoint(input: CheckpointUploadInput): Promise<string | null> {
  const { store, step, stage, log } = input;
  const prefix = checkpointKey(input.runKey, step);
  const deadline = Date.now() + checkpointRetryMs();
  for (let attempt = 1; ; attempt++) {
    const t0 = Date.now();
    try {
      // Re-uploading after a failure is safe: the files go to this attempt's stage again and the
      // manifest, the commit point, is only written once every file is up.
      const outcome = await commitCheckpoint(
        store,
        prefix,
        input.dir,
        { step, loss: input.loss, runKey: input.runKey },
        stage,
        input.transfer,
      );
      if (outcome.status === 'skipped') {
        log.info(
          { step, checkpoint: prefix, committedStage: outcome.manifest.stage },
          'checkpoint already committed; not rewritten',
        );
      } else {
        log.info(
          {
            uploadMs: Date.now() - t0,
            bytes: outcome.manifest.bytes,
            tries: attempt,
            stage,
            replacedRejected: outcome.replaced,
            step,
            checkpoint: prefix,
          },
          'checkpoint committed',
        );
      }
      return prefix;
    } catch (err) {
      const wait = CHECKPOINT_BACKOFF_MS[Math.min(attempt, CHECKPOINT_BACKOFF_MS.length) - 1] as number;
      if (Date.now() + wait > deadline || input.signal.aborted) {
        log.error(
          { step, checkpoint: prefix, tries: attempt, err: (err as Error).message },
          'checkpoint upload failed; giving up on this attempt',
        );
        return null;
      }
      log.warn(
        { step, checkpoint: prefix, tries: attempt, retryInMs: wait, err: (err as Error).message },
        'checkpoint upload failed; retrying',
      );
      input.heartbeat();
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

export async function applyRetention(
  store: ObjectStore,
  runKey: string,
  retention: RetentionPolicy,
  log: Logger,
): Promise<void> {
  try {
    const pruned = await pruneCheckpoints(store, checkpointsPrefix(runKey), retention);
    if (pruned.deleted.length)
      log.info({ deleted: pruned.deleted, kept: pruned.kept, best: pruned.best }, 'old checkpoints deleted');
  } catch (err) {
    // Retention is housekeeping: a failure only leaves extra checkpoints until the next commit.
    log.warn({ err: (err as Error).message }, 'checkpoint retention failed; will retry after the next commit');
  }
}
