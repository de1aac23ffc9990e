/** Latency percentiles and throughput totals of a generation run. */

/**
 * Percentile with linear interpolation between order statistics (NumPy's default); null for an
 * empty sample so that JSON reports say "no data" rather than NaN.
 */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const h = (sorted.length - 1) * (p / 100);
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}
