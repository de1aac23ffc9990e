/**
 * Length buckets across a whole evaluation: items sorted by prompt length (stable), cut into
 * chunks, results put back in input order. generate() already sorts inside one call, but the
 * evaluate activity calls it per heartbeat chunk; sorting before chunking makes every chunk a
 * narrow length range, so its batches pad to neighbours, not to the longest of 64 random items.
 */

/** Chunks of item indices, each chunk of at most `size` items of similar length (shortest first). */
export function lengthBuckets(lengths: readonly number[], size: number): number[][] {
  if (!Number.isInteger(size) || size < 1)
    throw new TypeError(`lengthBuckets: size must be a positive integer, got ${size}`);
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  const chunks: number[][] = [];
  for (let i = 0; i < order.length; i += size) chunks.push(order.slice(i, i + size));
  return chunks;
}

/**
 * Puts results computed chunk by chunk back in input order: `results[k][j]` belongs to item
 * `chunks[k][j]`. @throws RangeError when a chunk and its results differ in length or an index repeats.
 */
export function inInputOrder<T>(chunks: readonly (readonly number[])[], results: readonly (readonly T[])[]): T[] {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Array<T>(total);
  const seen = new Uint8Array(total);
  chunks.forEach((chunk, k) => {
    const res = results[k];
    if (!res || res.length !== chunk.length)
      throw new RangeError(`inInputOrder: chunk ${k} has ${chunk.length} items but ${res?.length ?? 0} results`);
    chunk.forEach((index, j) => {
      if (index < 0 || index >= total || seen[index])
        throw new RangeError(`inInputOrder: index ${index} repeats or is out of range`);
      seen[index] = 1;
      out[index] = res[j]!;
    });
  });
  return out;
}
