/**
 * Run-by-run comparison of two passes of the same grid (the soak's fault-free and chaos passes).
 * Compared: every evaluation number (`metrics`: exact match, Jaccard/F1, perplexity, with their
 * intervals, overall and per dataset) and the training outcome (steps, final loss and perplexity).
 * Not compared, because they measure time or the machine, not the result: `throughput` (tokens/s,
 * latencies), `training.tokensPerSec`, `training.peakMemoryBytes` / `peakMemorySource` / `mfu`,
 * and `provenance` apart from its content keys (checked equal: same data, model and config).
 */
import type { RunResult } from '../src/contracts';

/** The fields of a result that must be equal between passes, flattened to `path → value`. */
export function comparable(r: RunResult): Record<string, unknown> {
  const out: Record<string, unknown> = { status: r.status };
  const walk = (prefix: string, v: unknown) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) walk(`${prefix}.${k}`, x);
    } else {
      out[prefix] = v;
    }
  };
  walk('metrics', r.metrics ?? null);
  if (r.training) {
    out['training.steps'] = r.training.steps;
    out['training.trainLoss'] = r.training.trainLoss;
    out['training.trainPerplexity'] = r.training.trainPerplexity;
  }
  out['provenance.trainingKey'] = r.provenance?.trainingKey ?? null;
  out['provenance.evalKey'] = r.provenance?.evalKey ?? null;
  out['provenance.dataHash'] = r.provenance?.dataHash ?? null;
  return out;
}

export interface FieldDifference {
  runKey: string;
  field: string;
  a: unknown;
  b: unknown;
}

export interface PassComparison {
  /** Runs present in both passes. */
  compared: number;
  /** Fields compared, summed over runs. */
  fields: number;
  /** Runs whose every compared field is equal. */
  identical: number;
  missing: string[];
  differences: FieldDifference[];
}

/** Compares pass `b` against pass `a` run by run (by run key), field by field, with `Object.is`. */
export function comparePasses(a: readonly RunResult[], b: readonly RunResult[]): PassComparison {
  const byKey = new Map(b.map((r) => [r.runKey, r]));
  const out: PassComparison = { compared: 0, fields: 0, identical: 0, missing: [], differences: [] };
  for (const ra of a) {
    const rb = byKey.get(ra.runKey);
    if (!rb) {
      out.missing.push(ra.runKey);
      continue;
    }
    out.compared++;
    const fa = comparable(ra);
    const fb = comparable(rb);
    let same = true;
    for (const field of new Set([...Object.keys(fa), ...Object.keys(fb)])) {
      out.fields++;
      if (!Object.is(fa[field], fb[field])) {
        same = false;
        out.differences.push({ runKey: ra.runKey, field, a: fa[field], b: fb[field] });
      }
    }
    if (same) out.identical++;
  }
  for (const rb of b) if (!a.some((ra) => ra.runKey === rb.runKey)) out.missing.push(rb.runKey);
  return out;
}
