/**
 * The paired comparisons of a report: within one model, every run against the zero-shot baseline
 * and every pair of runs against each other, on the items both answered. Exact match goes through
 * McNemar's exact test, graded scores (Jaccard, token F1) through a paired bootstrap; each metric's
 * p-values are one family for Holm's correction.
 */
import type { BootstrapOptions } from './bootstrap';
import { holmAdjust, mcnemarExact, pairedBootstrap } from './paired';

/** One run's per-item scores: item id → metric name → score (predictions.jsonl `scores`). */
export interface PairedRun {
  label: string;
  items: ReadonlyMap<string, Readonly<Record<string, number>>>;
}

/** The metrics compared, and the test each one gets. */
export const COMPARED_METRICS = [
  { name: 'exactMatch', test: 'mcnemar-exact' },
  { name: 'jaccardStudy', test: 'paired-bootstrap' },
  { name: 'tokenF1', test: 'paired-bootstrap' },
] as const;

export type ComparedMetric = (typeof COMPARED_METRICS)[number]['name'];

/** One metric of one comparison. */
export interface MetricComparison {
  test: 'mcnemar-exact' | 'paired-bootstrap';
  /** Mean of a − b over the paired items. */
  diff: number;
  /** Paired bootstrap: interval of the difference. */
  lower?: number;
  upper?: number;
  /** McNemar: items only a, only b got right. */
  aOnly?: number;
  bOnly?: number;
  p: number;
  /** Holm-adjusted over all comparisons of this metric in the family. */
  pHolm: number;
  /** pHolm < alpha. */
  significant: boolean;
}

/** `a` against `b` on `n` shared items. */
export interface Comparison {
  a: string;
  b: string;
  /** true when b is the zero-shot baseline. */
  vsBaseline: boolean;
  n: number;
  metrics: Partial<Record<ComparedMetric, MetricComparison>>;
}

/** Above this many compared runs of one model, the report tests comparisons with one reference run only. */
export const MAX_PAIRWISE_RUNS = 12;

/** Options of {@link comparePaired}. */
export interface CompareOptions extends BootstrapOptions {
  /** Label of the zero-shot baseline; its comparisons come first. Omitted: only the pairs. */
  baseline?: string;
  /** Also every pair of the other runs (O(runs²) tests). @default true */
  pairs?: boolean;
}

/**
 * Every run against the baseline (if given) and every other pair, in run order. Metrics that a
 * pair does not both carry on every shared item are left out of that pair; pairs that share no
 * item are left out altogether.
 */
export function comparePaired(runs: readonly PairedRun[], options: CompareOptions = {}): Comparison[] {
  const alpha = options.alpha ?? 0.05;
  const base = runs.find((r) => r.label === options.baseline);
  const others = runs.filter((r) => r !== base);
  const pairs: [PairedRun, PairedRun, boolean][] = [];
  if (base) for (const r of others) pairs.push([r, base, true]);
  if (options.pairs ?? true)
    for (let i = 0; i < others.length; i++)
      for (let j = i + 1; j < others.length; j++) pairs.push([others[i]!, others[j]!, false]);
  const out: Comparison[] = [];
  for (const [a, b, vsBaseline] of pairs) {
    const ids = [...a.items.keys()].filter((id) => b.items.has(id)).sort();
    if (!ids.length) continue;
    const c: Comparison = { a: a.label, b: b.label, vsBaseline, n: ids.length, metrics: {} };
    for (const { name, test } of COMPARED_METRICS) {
      const xs = ids.map((id) => a.items.get(id)![name]);
      const ys = ids.map((id) => b.items.get(id)![name]);
      if (xs.some((v) => v === undefined) || ys.some((v) => v === undefined)) continue;
      const x = xs as number[];
      const y = ys as number[];
      if (test === 'mcnemar-exact') {
        const r = mcnemarExact(x, y);
        c.metrics[name] = {
          test,
          diff: r.diff,
          aOnly: r.aOnly,
          bOnly: r.bOnly,
          p: r.p,
          pHolm: r.p,
          significant: false,
        };
      } else {
        const r = pairedBootstrap(x, y, options);
        c.metrics[name] = {
          test,
          diff: r.diff,
          lower: r.lower,
          upper: r.upper,
          p: r.p,
          pHolm: r.p,
          significant: false,
        };
      }
    }
    out.push(c);
  }
  for (const { name } of COMPARED_METRICS) {
    const family = out.flatMap((c) => (c.metrics[name] ? [c.metrics[name]] : []));
    holmAdjust(family.map((m) => m.p)).forEach((p, i) => {
      family[i]!.pHolm = p;
      family[i]!.significant = p < alpha;
    });
  }
  return out;
}
