/**
 * A small seeded PRNG (mulberry32). Bootstrap intervals must be reproducible: a report
 * regenerated from the same predictions has to print the same interval, so Math.random is out.
 */

/** Returns a generator of uniform floats in [0, 1), fully determined by the 32-bit seed. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
