/**
 * Aggregates per-item scores into the numbers a report prints: per metric the mean with a 95%
 * interval (Wilson for exact-match-type proportions, a percentile bootstrap for graded scores),
 * and corpus perplexity, overall and per dataset.
 */
import { bootstrapCI, bootstrapStatistic, type BootstrapOptions, type ConfidenceInterval } from './bootstrap';
import { perplexity } from './perplexity';
import { isBinary, wilsonInterval } from './wilson';

/** One evaluated example. */
export interface EvalItem {
  /** Dataset the example belongs to (e.g. `squad1_1`); groups the per-dataset summary. */
  dataset: string;
  /** Metric name → score of this example (e.g. `exactMatch: 1`). Missing metrics are skipped. */
  scores: Readonly<Record<string, number>>;
  /** Σ natural-log probability of the reference answer's tokens, for perplexity (optional). */
  sumLogProb?: number;
  /** Number of answer tokens scored in `sumLogProb`; items without tokens are left out of perplexity. */
  tokenCount?: number;
}

/** Summary of one group of items (all of them, or one dataset). */
export interface GroupSummary {
  /** Number of items in the group. */
  n: number;
  /** Metric name → mean score with its interval (`estimate` is the mean). */
  metrics: Record<string, ConfidenceInterval>;
  /**
   * Corpus perplexity exp(−Σ log p / Σ tokens) with an interval from resampling items; absent when
   * no item carries log-probabilities.
   */
  perplexity?: ConfidenceInterval;
}

/** Result of {@link summarize}. */
export interface Summary {
  /** All items pooled: a micro average, so large datasets weigh more. */
  overall: GroupSummary;
  /** Dataset name → summary of its items, keys in sorted order. */
  byDataset: Record<string, GroupSummary>;
}

/** Options of {@link summarize}: the bootstrap settings (alpha applies to Wilson intervals too). */
export interface SummarizeOptions extends BootstrapOptions {
  /**
   * Metrics whose scores are 0/1 (a proportion): they get a Wilson interval instead of a bootstrap
   * one, as long as every score of the group is 0 or 1.
   * @default ['exactMatch']
   */
  proportions?: readonly string[];
}

/** The one metric every evaluation scores 0/1 (src/metrics/qa.ts exactMatch). */
export const PROPORTION_METRICS: readonly string[] = ['exactMatch'];

function summarizeGroup(items: readonly EvalItem[], options: SummarizeOptions): GroupSummary {
  const names = [...new Set(items.flatMap((item) => Object.keys(item.scores)))].sort();
  const metrics: Record<string, ConfidenceInterval> = {};
  for (const name of names) {
    const values = items.map((item) => item.scores[name]).filter((v): v is number => v !== undefined);
    const proportion = (options.proportions ?? PROPORTION_METRICS).includes(name) && isBinary(values);
    metrics[name] = proportion
      ? wilsonInterval(
          values.reduce((a, v) => a + v, 0),
          values.length,
          options.alpha,
        )
      : bootstrapCI(values, options);
  }
  const summary: GroupSummary = { n: items.length, metrics };
  const scored = items.filter(
    (item): item is EvalItem & { sumLogProb: number; tokenCount: number } =>
      item.sumLogProb !== undefined && item.tokenCount !== undefined && item.tokenCount > 0,
  );
  if (scored.length > 0) {
    // Resample items, not tokens: tokens of one answer are not independent draws.
    summary.perplexity = bootstrapStatistic(
      scored.length,
      (indices) => {
        let logProb = 0;
        let tokens = 0;
        for (const i of indices) {
          logProb += scored[i]!.sumLogProb;
          tokens += scored[i]!.tokenCount;
        }
        return perplexity(logProb, tokens);
      },
      options,
    );
  }
  return summary;
}

/**
 * Per-metric means with bootstrap intervals (95% by default), overall and per dataset.
 * Deterministic for a given seed. An empty item list gives `{ overall: { n: 0, metrics: {} }, byDataset: {} }`.
 */
export function summarize(items: readonly EvalItem[], options: SummarizeOptions = {}): Summary {
  const groups = new Map<string, EvalItem[]>();
  for (const item of items) {
    const group = groups.get(item.dataset);
    if (group) group.push(item);
    else groups.set(item.dataset, [item]);
  }
  const byDataset: Record<string, GroupSummary> = {};
  for (const name of [...groups.keys()].sort()) byDataset[name] = summarizeGroup(groups.get(name)!, options);
  return { overall: summarizeGroup(items, options), byDataset };
}
