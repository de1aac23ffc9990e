/**
 * Wilson score intervals for proportions (exact match and other 0/1 scores). At n = 48 a
 * percentile bootstrap of 0/48 correct resamples nothing but zeros and prints "0.0 (0.0–0.0)";
 * Wilson's interval stays honest at the ends (0/48 → 0–7.4%) and has close to nominal coverage
 * for small n, where the normal (Wald) interval does not.
 */
import type { ConfidenceInterval } from './bootstrap';

/**
 * Inverse of the standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9),
 * so that `alpha` other than 0.05 needs no table.
 * @throws RangeError outside (0, 1).
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalQuantile: p must be in (0, 1), got ${p}`);
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239,
  ];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  const tail = (q: number) =>
    (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
    ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  if (p < low) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - low) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
  );
}

/**
 * Wilson score interval of `successes` out of `n` at confidence 1 − alpha (two-sided):
 * (p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n).
 * @throws RangeError when n is 0 or successes is not an integer in [0, n].
 */
export function wilsonInterval(successes: number, n: number, alpha = 0.05): ConfidenceInterval {
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`wilson: n must be a positive integer, got ${n}`);
  if (!Number.isInteger(successes) || successes < 0 || successes > n)
    throw new RangeError(`wilson: successes must be an integer in [0, ${n}], got ${successes}`);
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`wilson: alpha must be in (0, 1), got ${alpha}`);
  const z = normalQuantile(1 - alpha / 2);
  const p = successes / n;
  const z2n = (z * z) / n;
  const center = (p + z2n / 2) / (1 + z2n);
  const half = (z / (1 + z2n)) * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
  // The ends are exact at 0 and n; clamping only removes rounding below 0 or above 1.
  return {
    estimate: p,
    lower: successes === 0 ? 0 : Math.max(0, center - half),
    upper: successes === n ? 1 : Math.min(1, center + half),
    n,
    method: 'wilson',
  };
}

/** True when every value is 0 or 1, so the mean is a proportion and {@link wilsonInterval} applies. */
export function isBinary(values: readonly number[]): boolean {
  return values.every((v) => v === 0 || v === 1);
}
