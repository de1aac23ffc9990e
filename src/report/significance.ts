/**
 * Which runs of a grid are compared with which: per model, every completed run with per-item
 * scores, against that model's zero-shot run (`icl shots=0`) and each other. Speculative runs are
 * left out: greedy speculative decoding returns the target's own tokens, so they would only repeat
 * the zero-shot run's predictions. Every pair is tested up to {@link MAX_PAIRWISE_RUNS} runs per
 * model; beyond that the pairs grow as runs² (4,950 at 100 runs: a report of megabytes, carried in
 * workflow history, and minutes of bootstrap), so each run is compared with one reference only:
 * the zero-shot baseline, or, without one, the run with the highest exact match.
 */
import { comparePaired, MAX_PAIRWISE_RUNS, type PairedRun } from '../metrics/compare';
import type { RunResult } from '../contracts';
import type { ModelComparisons } from './render';

/** item id → metric name → score, per runKey (from each run's predictions.jsonl). */
export type ScoresByRun = ReadonlyMap<string, ReadonlyMap<string, Readonly<Record<string, number>>>>;

/** The zero-shot baseline of a model: in-context learning with no examples. */
export const isZeroShot = (r: Pick<RunResult, 'method' | 'label'>): boolean =>
  r.method === 'icl' && /(^|\s)shots=0(\s|$)/.test(r.label);

/** Per model (in result order), the paired comparisons; models with fewer than two comparable runs get none. */
export function modelComparisons(results: readonly RunResult[], scores: ScoresByRun): ModelComparisons[] {
  const out: ModelComparisons[] = [];
  for (const model of [...new Set(results.map((r) => r.model))]) {
    const runs = results.filter((r) => r.model === model && r.status === 'completed' && scores.has(r.runKey));
    const excluded = runs
      .filter((r) => r.method === 'speculative')
      .map((r) => `${r.label} (the target's own greedy outputs)`);
    const compared = runs.filter((r) => r.method !== 'speculative');
    if (compared.length < 2) continue;
    const used = new Set<string>();
    const paired: PairedRun[] = compared.map((r) => {
      let label = r.label;
      for (let k = 2; used.has(label); k++) label = `${r.label} #${k}`;
      used.add(label);
      return { label, items: scores.get(r.runKey)! };
    });
    const base = compared.findIndex(isZeroShot);
    const baseline = base >= 0 ? paired[base]!.label : null;
    const pairs = compared.length <= MAX_PAIRWISE_RUNS;
    const reference = baseline ?? (pairs ? null : bestExactMatch(paired));
    out.push({
      model,
      baseline,
      comparisons: comparePaired(paired, { seed: 42, pairs, ...(reference ? { baseline: reference } : {}) }),
      ...(pairs ? {} : { reference: reference! }),
      ...(excluded.length ? { excluded } : {}),
    });
  }
  return out;
}

/** The label of the run with the highest mean exact match over its items (the first on a tie). */
function bestExactMatch(runs: readonly PairedRun[]): string {
  const mean = (r: PairedRun) => {
    const xs = [...r.items.values()].map((m) => m.exactMatch ?? 0);
    return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
  };
  return runs.reduce((best, r) => (mean(r) > mean(best) ? r : best)).label;
}
