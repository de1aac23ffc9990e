/**
 * Paired significance tests on the same test items, and Holm's correction for testing many pairs
 * at once. Pure functions of the per-item scores (and a seed), so a report rebuilt from the same
 * predictions prints the same p-values.
 */
import { resolveBootstrapOptions, quantileSorted, type BootstrapOptions } from './bootstrap';
import { createRng } from '../common/rng';

/** Result of {@link mcnemarExact}. */
export interface McNemarResult {
  /** Paired items. */
  n: number;
  /** Items only `a` got right (a = 1, b = 0). */
  aOnly: number;
  /** Items only `b` got right (a = 0, b = 1). */
  bOnly: number;
  /** Mean of a − b: the difference in accuracy. */
  diff: number;
  /** Two-sided exact p-value: 2 · P(X ≤ min(aOnly, bOnly)) for X ~ Binomial(aOnly + bOnly, ½), at most 1. */
  p: number;
}

function checkPaired(a: readonly number[], b: readonly number[], what: string): void {
  if (a.length !== b.length)
    throw new RangeError(`${what}: paired samples differ in length (${a.length} vs ${b.length})`);
  if (a.length === 0) throw new RangeError(`${what}: no paired items`);
}

/**
 * P(X ≤ k) for X ~ Binomial(m, ½), summed in log space: 0.5^m underflows a double past m ≈ 1074.
 */
export function binomialHalfCdf(k: number, m: number): number {
  if (k < 0) return 0;
  if (k >= m) return 1;
  let logTerm = -m * Math.LN2; // log C(m, 0) · ½^m
  let sum = Math.exp(logTerm);
  for (let i = 1; i <= k; i++) {
    logTerm += Math.log((m - i + 1) / i);
    sum += Math.exp(logTerm);
  }
  return Math.min(1, sum);
}

/**
 * McNemar's exact test of two 0/1 scorings of the same items: only the discordant pairs carry
 * information, and under "no difference" each is equally likely to favour either side.
 * @throws RangeError on samples of different length, empty samples, or a score other than 0/1.
 */
export function mcnemarExact(a: readonly number[], b: readonly number[]): McNemarResult {
  checkPaired(a, b, 'mcnemar');
  let aOnly = 0;
  let bOnly = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if ((x !== 0 && x !== 1) || (y !== 0 && y !== 1))
      throw new RangeError(`mcnemar: scores must be 0 or 1, got ${x} and ${y} at item ${i}`);
    if (x > y) aOnly++;
    else if (y > x) bOnly++;
  }
  const discordant = aOnly + bOnly;
  const p = discordant === 0 ? 1 : Math.min(1, 2 * binomialHalfCdf(Math.min(aOnly, bOnly), discordant));
  return { n: a.length, aOnly, bOnly, diff: (aOnly - bOnly) / a.length, p };
}

/** Result of {@link pairedBootstrap}. */
export interface PairedBootstrapResult {
  n: number;
  /** Mean of a − b over the paired items. */
  diff: number;
  /** Percentile interval of the mean difference (1 − alpha). */
  lower: number;
  upper: number;
  /**
   * Two-sided p-value: twice the share of resampled mean differences on the far side of 0 from
   * the observed one, (count + 1)/(iterations + 1) so that it is never 0; at most 1.
   */
  p: number;
}

/**
 * Paired bootstrap of graded scores (Jaccard, F1): resample items, keeping each item's two scores
 * together, so the test sees the per-item correlation of the two runs.
 * @throws RangeError on samples of different length or empty samples.
 */
export function pairedBootstrap(
  a: readonly number[],
  b: readonly number[],
  options?: BootstrapOptions,
): PairedBootstrapResult {
  checkPaired(a, b, 'paired bootstrap');
  const { iterations, seed, alpha } = resolveBootstrapOptions(options);
  const n = a.length;
  const d = Float64Array.from(a, (x, i) => x - b[i]!);
  const diff = d.reduce((s, x) => s + x, 0) / n;
  if (d.every((x) => x === 0)) return { n, diff: 0, lower: 0, upper: 0, p: 1 };
  const random = createRng(seed).next;
  const stats = new Float64Array(iterations);
  let atOrBelow = 0;
  let atOrAbove = 0;
  for (let it = 0; it < iterations; it++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += d[Math.floor(random() * n)]!;
    const m = sum / n;
    stats[it] = m;
    if (m <= 0) atOrBelow++;
    if (m >= 0) atOrAbove++;
  }
  stats.sort();
  const far = diff >= 0 ? atOrBelow : atOrAbove;
  return {
    n,
    diff,
    lower: quantileSorted(stats, alpha / 2),
    upper: quantileSorted(stats, 1 - alpha / 2),
    p: Math.min(1, (2 * (far + 1)) / (iterations + 1)),
  };
}

/**
 * Holm's step-down adjustment of a family of p-values (controls the family-wise error rate, with
 * no assumption on how the tests depend on each other — the pairs of one grid share runs).
 * Returns the adjusted p-values in the input order: the i-th smallest is
 * max over j ≤ i of min(1, (m − j + 1) · p₍ⱼ₎).
 */
export function holmAdjust(pValues: readonly number[]): number[] {
  const m = pValues.length;
  const order = pValues.map((p, i) => [p, i] as const).sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  const adjusted = new Array<number>(m);
  let running = 0;
  order.forEach(([p, i], rank) => {
    running = Math.max(running, Math.min(1, (m - rank) * p));
    adjusted[i] = running;
  });
  return adjusted;
}
