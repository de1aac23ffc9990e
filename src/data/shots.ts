// k-shot example draws. The pool can only be built from a train split, so test answers can never
// leak into a prompt; draws are seeded per target record, so a prompt does not depend on the order
// in which records are formatted or on how work is split across activities.
import type { Split } from './catalog';
import { createRng, seedFrom } from '../common/rng';
import type { QaRecord } from './unifiedqa';

declare const trainOnly: unique symbol;

/** Records that k-shot examples may be drawn from; create with `createShotPool`. */
export interface ShotPool {
  readonly records: readonly QaRecord[];
  readonly ids: ReadonlySet<string>;
  /** Type brand: only `createShotPool` makes one, and only from a train split. */
  readonly [trainOnly]: true;
}

/** Throws a TypeError for any split but `train`: dev and test are for evaluation only. */
export function createShotPool(records: readonly QaRecord[], split: Split): ShotPool {
  if (split !== 'train') {
    throw new TypeError(`k-shot examples must come from the train split, got "${split}"`);
  }
  const frozen = Object.freeze(records.slice());
  return { records: frozen, ids: new Set(frozen.map((r) => r.id)) } as unknown as ShotPool;
}

/**
 * `k` distinct pool records other than `target` itself, the same for the same (seed, target id).
 * Rejection sampling keeps a draw O(k), not O(pool): formatting 10k test records against a 100k
 * train pool stays cheap.
 */
export function drawShots(pool: ShotPool, target: QaRecord, k: number, seed: number): QaRecord[] {
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`shots must be a non-negative integer, got ${k}`);
  if (k === 0) return [];
  const { records } = pool;
  const available = records.length - (pool.ids.has(target.id) ? 1 : 0);
  if (available < k) {
    throw new RangeError(`${k}-shot needs ${k} train records besides the target; the pool has ${available}`);
  }
  const rng = createRng(seedFrom(seed, 'shots', target.id));
  const chosen = new Set<number>();
  const shots: QaRecord[] = [];
  while (shots.length < k) {
    const i = rng.int(records.length);
    const record = records[i]!;
    if (chosen.has(i) || record.id === target.id) continue;
    chosen.add(i);
    shots.push(record);
  }
  return shots;
}
