/**
 * Retention of committed checkpoints: keep the newest `keepLast` and, optionally, the one with the
 * lowest loss; delete the rest. A checkpoint is deleted manifest first, then its files, so a reader
 * listing the store at any moment sees either a complete committed checkpoint or none at all —
 * never a manifest whose files are (partly) gone. "Its files" is everything under `step-<N>/`:
 * the stage the manifest names, stages of attempts whose manifest was superseded, and the
 * `rejected.json` marker (activities/checkpoints.ts), so nothing of a deleted step is left over.
 */
import { joinKey, type ObjectStore } from './object-store';
import { MANIFEST, readManifest } from './directory';

export interface RetentionPolicy {
  /** Newest committed checkpoints to keep; at least 1 (the newest is never deleted). @default 3 */
  keepLast: number;
  /** Also keep the committed checkpoint with the lowest `meta.loss`. @default true */
  keepBest: boolean;
}

export const DEFAULT_RETENTION: RetentionPolicy = { keepLast: 3, keepBest: true };

export interface PruneResult {
  /** Steps of the committed checkpoints that remain, newest first. */
  kept: number[];
  /** Steps whose checkpoints were deleted by this call, oldest first. */
  deleted: number[];
  /** Step of the kept lowest-loss checkpoint, when `keepBest` and some checkpoint has a finite loss. */
  best: number | null;
}

const STEP_DIR = /^step-(\d+)$/;

/**
 * Applies `policy` to the `step-<N>/` directories under `prefix`. Only committed directories
 * (manifest present) are candidates: an uncommitted one may be an upload still in flight (another
 * attempt's), and deleting its files under it could let a late manifest commit a hole.
 */
export async function pruneCheckpoints(
  store: ObjectStore,
  prefix: string,
  policy: RetentionPolicy,
): Promise<PruneResult> {
  if (!Number.isInteger(policy.keepLast) || policy.keepLast < 1) {
    throw new TypeError(
      `retention.keepLast: got ${String(policy.keepLast)}, expected an integer >= 1 (the newest checkpoint is never deleted)`,
    );
  }
  const objects = await store.list(prefix + '/');
  const byStep = new Map<number, string[]>();
  for (const o of objects) {
    const [dirName] = o.key.slice(prefix.length + 1).split('/');
    const m = STEP_DIR.exec(dirName ?? '');
    if (!m) continue;
    const step = Number(m[1]);
    byStep.set(step, [...(byStep.get(step) ?? []), o.key]);
  }
  const committed = [...byStep.entries()]
    .filter(([step, keys]) => keys.includes(joinKey(prefix, `step-${step}`, MANIFEST)))
    .map(([step]) => step)
    .sort((a, b) => b - a);

  const keep = new Set(committed.slice(0, policy.keepLast));
  let best: number | null = null;
  if (policy.keepBest) {
    let bestLoss = Infinity;
    for (const step of committed) {
      const manifest = await readManifest<{ loss?: number | null }>(store, joinKey(prefix, `step-${step}`));
      const loss = manifest?.meta.loss;
      // Ties go to the newer checkpoint (iteration is newest first and the comparison is strict).
      if (typeof loss === 'number' && Number.isFinite(loss) && loss < bestLoss) {
        bestLoss = loss;
        best = step;
      }
    }
    if (best !== null) keep.add(best);
  }

  const doomed = committed.filter((s) => !keep.has(s)).sort((a, b) => a - b);
  for (const step of doomed) {
    const manifestKey = joinKey(prefix, `step-${step}`, MANIFEST);
    // Manifest first: from this point the checkpoint does not exist for any reader, so removing its
    // files in any order (or being interrupted half-way, which leaves only uncommitted files that
    // no reader considers) never exposes a broken committed one.
    await store.delete(manifestKey);
    for (const key of byStep.get(step) ?? []) if (key !== manifestKey) await store.delete(key);
  }
  return { kept: committed.filter((s) => keep.has(s)), deleted: doomed, best };
}
