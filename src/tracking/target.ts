/**
 * A run's tracking config → the `TrackingTarget` its activities log to. Pure (no I/O, no Node
 * builtins): the workflow calls it, so every attempt of every activity gets the same target.
 */
import type { RunSpec } from '../config/plan';
import type { TrackingTarget } from '../contracts/tracking';

/** MLflow rejects param values longer than this (MLflow ≥ 2); longer ones are cut with a marker. */
const MAX_PARAM_LENGTH = 6000;

/**
 * `{a: {b: 1, c: [2, 3]}}` → `{'a.b': '1', 'a.c': '[2,3]'}`: objects are walked, arrays and scalars
 * become strings (lists are values here: targetModules, datasets). Undefined and null are left out.
 */
export function flattenParams(value: unknown, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  if (value === undefined || value === null) return out;
  if (typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      flattenParams(v, prefix ? `${prefix}.${k}` : k, out);
    }
    return out;
  }
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  out[prefix] = text.length > MAX_PARAM_LENGTH ? `${text.slice(0, MAX_PARAM_LENGTH - 3)}...` : text;
  return out;
}

export interface TrackingKeys {
  trainingKey: string;
  evalKey: string;
}

/**
 * The run's target, or undefined when tracking is off. The MLflow run is keyed by the training key
 * for runs that train (a resumed attempt continues it) and by the evaluation key for the rest.
 * Params are the resolved run config; the store URL is left out (it may carry a host name that is
 * nobody's business in a shared tracker) and so is the tracking config itself.
 */
export function trackingTarget(run: RunSpec, keys: TrackingKeys): TrackingTarget | undefined {
  const mlflow = run.tracking?.mlflow;
  if (!mlflow) return undefined;
  const { store: _store, tracking: _tracking, runKey, grid, label, ...config } = run;
  return {
    uri: mlflow.uri,
    experiment: mlflow.experiment ?? grid,
    key: run.trains ? keys.trainingKey : keys.evalKey,
    runName: runKey,
    tags: {
      'peftgrid.grid': grid,
      'peftgrid.runKey': runKey,
      'peftgrid.trainingKey': keys.trainingKey,
      'peftgrid.evalKey': keys.evalKey,
      'peftgrid.model': run.model.name,
      'peftgrid.method': run.method.method,
      'peftgrid.label': label,
    },
    params: flattenParams(config),
  };
}
