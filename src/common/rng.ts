// The one seeded PRNG of the codebase, for everything that must be reproducible: sample-data
// generation, k-shot example draws, and the bootstrap resamples of the metrics (a report rebuilt
// from the same predictions prints the same interval). Math.random is never used for these, so the
// same seed yields byte-identical files, prompts and intervals on every machine and every retry.
import { createHash } from 'node:crypto';

/** A deterministic pseudo-random source. */
export interface Rng {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
  /** A shuffled copy (Fisher–Yates). */
  shuffle<T>(items: readonly T[]): T[];
  /** `k` distinct elements in random order; all of them when `k >= items.length`. */
  sample<T>(items: readonly T[], k: number): T[];
}

/**
 * mulberry32: tiny, fast and good enough for sampling (not for cryptography). Chosen because its
 * whole state is one uint32, which keeps derived streams (`seedFrom`) trivially reproducible.
 */
export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => {
    if (!Number.isInteger(n) || n <= 0) throw new RangeError(`int(n) needs a positive integer, got ${n}`);
    return Math.floor(next() * n);
  };
  const pick = <T>(items: readonly T[]): T => {
    if (items.length === 0) throw new RangeError('pick() from an empty array');
    return items[int(items.length)] as T;
  };
  const shuffle = <T>(items: readonly T[]): T[] => {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = int(i + 1);
      [out[i], out[j]] = [out[j] as T, out[i] as T];
    }
    return out;
  };
  const sample = <T>(items: readonly T[], k: number): T[] => shuffle(items).slice(0, Math.max(0, k));
  return { next, int, pick, shuffle, sample };
}

/** A uint32 seed derived from any parts, so independent streams (per record, per split) never collide. */
export function seedFrom(...parts: (string | number)[]): number {
  return createHash('sha256').update(parts.join('\u0000')).digest().readUInt32LE(0);
}
