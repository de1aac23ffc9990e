/**
 * Which runs of a grid are compared with which: per model, every completed run with per-item
 * scores, against that model's zero-shot run (`icl shots=0`) and each other. Speculative runs are
 * left out: greedy speculative decoding returns the target's own tokens, so they would only repeat
 * the zero-shot run's predictions.
 */
import { comparePaired, type PairedRun } from '../metrics/compare';
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
    out.push({
      model,
      baseline,
      comparisons: comparePaired(paired, { seed: 42, ...(baseline ? { baseline } : {}) }),
      ...(excluded.length ? { excluded } : {}),
    });
  }
  return out;
}
