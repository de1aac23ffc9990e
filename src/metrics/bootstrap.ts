/**
 * Percentile bootstrap confidence intervals with a seeded PRNG, so that an interval is a pure
 * function of (values, options).
 */
import { createRng } from '../common/rng';

/** Options of {@link bootstrapCI} and {@link bootstrapStatistic}. */
export interface BootstrapOptions {
  /**
   * Number of resamples. 1000 keeps the Monte-Carlo error of a 95% bound well under the
   * sampling error of a few hundred evaluation items.
   * @default 1000
   */
  iterations?: number;
  /** Seed of the resampling PRNG (a 32-bit integer); equal seeds give equal intervals. @default 0 */
  seed?: number;
  /** One minus the confidence level: 0.05 gives a 95% interval. @default 0.05 */
  alpha?: number;
}

/** A point estimate with its bootstrap interval. */
export interface ConfidenceInterval {
  /** The statistic on the original sample (not the mean of the resamples). */
  estimate: number;
  /** The alpha/2 percentile of the resampled statistic. */
  lower: number;
  /** The 1 − alpha/2 percentile of the resampled statistic. */
  upper: number;
  /** Sample size. */
  n: number;
  /**
   * `wilson`: a Wilson score interval (0/1 scores, src/metrics/wilson.ts); absent: the percentile
   * bootstrap of this module (and every interval saved before Wilson intervals).
   */
  method?: 'wilson';
}

interface ResolvedOptions {
  iterations: number;
  seed: number;
  alpha: number;
}

/** Applies defaults and rejects invalid options early with a TypeError naming the field. */
export function resolveBootstrapOptions(options: BootstrapOptions = {}): ResolvedOptions {
  const { iterations = 1000, seed = 0, alpha = 0.05 } = options;
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new TypeError(`bootstrap: iterations must be a positive integer, got ${iterations}`);
  }
  if (!Number.isInteger(seed)) throw new TypeError(`bootstrap: seed must be an integer, got ${seed}`);
  if (!(alpha > 0 && alpha < 1)) throw new TypeError(`bootstrap: alpha must be in (0, 1), got ${alpha}`);
  return { iterations, seed, alpha };
}

/** Quantile with linear interpolation between order statistics (NumPy's default method). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

/**
 * Bootstrap interval of an arbitrary statistic of n items. `statistic` receives the item indices
 * of one resample (with repetition; the identity sample for the point estimate) — indices rather
 * than values, so that ratio statistics such as corpus perplexity resample items as units.
 * @throws RangeError when n is 0 (there is nothing to resample).
 */
export function bootstrapStatistic(
  n: number,
  statistic: (indices: Uint32Array) => number,
  options?: BootstrapOptions,
): ConfidenceInterval {
  const { iterations, seed, alpha } = resolveBootstrapOptions(options);
  if (n === 0) throw new RangeError('bootstrap: cannot resample an empty sample');
  const identity = Uint32Array.from({ length: n }, (_, i) => i);
  const estimate = statistic(identity);
  const random = createRng(seed).next;
  const indices = new Uint32Array(n);
  const stats = new Float64Array(iterations);
  for (let it = 0; it < iterations; it++) {
    for (let i = 0; i < n; i++) indices[i] = Math.floor(random() * n);
    stats[it] = statistic(indices);
  }
  stats.sort();
  return { estimate, lower: quantileSorted(stats, alpha / 2), upper: quantileSorted(stats, 1 - alpha / 2), n };
}

/**
 * Bootstrap interval of the mean of `values`.
 * @throws RangeError when `values` is empty.
 */
export function bootstrapCI(values: readonly number[], options?: BootstrapOptions): ConfidenceInterval {
  return bootstrapStatistic(
    values.length,
    (indices) => {
      let sum = 0;
      for (const i of indices) sum += values[i]!;
      return sum / indices.length;
    },
    options,
  );
}
