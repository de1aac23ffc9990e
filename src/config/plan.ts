/**
 * Grid → runs. Pure and deterministic: the same config always yields the same run keys, which
 * become child workflow ids, so re-starting a grid never redoes a finished run.
 */
import { contentHash } from '../common/hash';
import {
  speculativeSlug,
  type DistillSettings,
  type ExpandedMethod,
  type MethodSpec,
  type SpeculativeMethodSpec,
} from '../contracts/method';
import type {
  DataConfig,
  EvalConfig,
  GridConfig,
  MethodEntry,
  ModelConfig,
  RetentionConfig,
  TrackingConfig,
  TrainingConfig,
} from './schema';
import {
  DEFAULT_DISTILL,
  DEFAULT_MAX_NGRAM,
  methodSchemas,
  type EvalPrecision,
  type SpeculativeConfig,
} from './schema';

/**
 * One run's eval settings: the grid's, with `precision` narrowed to the run's own. fp32 is never
 * written here (absent means fp32), so an fp32 run's keys are those of a config without the option.
 */
export type RunEvalConfig = Omit<EvalConfig, 'precision'> & { precision?: Exclude<EvalPrecision, 'fp32'> };

export type { ExpandedMethod, MethodSpec, MethodSpecOf, SpeculativeMethodSpec } from '../contracts/method';

export interface RunSpec {
  /**
   * Stable id: `<model>__<method label>__<hash of the config>`: the run's name and workflow id.
   * Where its files live is decided at run time by its content keys (identity.ts), which also
   * hash the model's bytes and the data.
   */
  runKey: string;
  grid: string;
  model: ModelConfig;
  method: MethodSpec;
  /** Human label, e.g. `lora r=8 alpha=16 dropout=0.05`. */
  label: string;
  /** false for in-context learning: the base model is evaluated as is. */
  trains: boolean;
  /** ICL examples in each test prompt (0 for fine-tuned runs: they answer zero-shot). */
  shots: number;
  training: TrainingConfig;
  eval: RunEvalConfig;
  data: DataConfig;
  /** Content hash of `data`: runs with the same data share one preparation. */
  dataKey: string;
  /** Speculative-decoding runs: the draft model that proposes tokens for `model` (the target). */
  draft?: ModelConfig;
  /** `drafting: distilled`: how `draft` is fine-tuned on the target's outputs before it drafts. */
  distill?: DistillPlan;
  store: string;
  /** Checkpoint retention (not part of the run key: it does not change the result). */
  retention?: RetentionConfig;
  /** Experiment tracking (not part of the run key: it does not change the result). */
  tracking?: TrackingConfig;
}

/**
 * The distillDraft activity's settings for a distilled pair: the draft's method (the schema's
 * defaults applied) and the grid's training settings with the distill steps and lr in them.
 */
export interface DistillPlan {
  method: MethodSpec;
  training: TrainingConfig;
  maxNewTokens: number;
}

/**
 * Cartesian product over list-valued fields (lists of strings such as targetModules are values).
 * Keys keep the entry's order (`method` first): run keys hash the spec, so the order is part of them.
 */
export function expandMethod<E extends MethodEntry>(entry: E): ExpandedMethod<E>[] {
  // Built key by key, so typed loosely here; the result has exactly E's keys, each list narrowed.
  let out: Record<string, unknown>[] = [{ method: entry.method }];
  for (const [key, value] of Object.entries(entry)) {
    if (key === 'method' || value === undefined) continue;
    const options: unknown[] = Array.isArray(value) && value.every((v) => typeof v === 'number') ? value : [value];
    out = out.flatMap((spec) => options.map((v) => ({ ...spec, [key]: v })));
  }
  return out as ExpandedMethod<E>[];
}

/** Lifts a method's own lr out of its spec (it becomes training.lr); the rest keeps its key order. */
function splitLr(expanded: ExpandedMethod): { lr: number | undefined; method: MethodSpec } {
  const { lr, ...method } = expanded as ExpandedMethod & { lr?: number };
  return { lr, method: method as MethodSpec };
}

const SHORT: Record<string, string> = {
  alpha: 'a',
  dropout: 'd',
  numVirtualTokens: 'vt',
  initR: 'r0',
  targetR: 'r',
  shots: 'shot',
};

export function methodLabel(m: MethodSpec): string {
  const parts = Object.entries(m).filter(
    ([k, v]) => k !== 'method' && v !== undefined && typeof v !== 'object' && k !== 'initText',
  );
  return [m.method, ...parts.map(([k, v]) => `${k}=${v}`)].join(' ');
}

export function methodSlug(m: MethodSpec): string {
  const parts = Object.entries(m)
    .filter(([k, v]) => k !== 'method' && typeof v === 'number')
    .filter(([k]) => ['r', 'shots', 'numVirtualTokens', 'initR', 'targetR'].includes(k))
    .map(([k, v]) => `${SHORT[k] ?? k}${v}`);
  return [m.method.replace('_', '-'), ...parts].join('-');
}

/**
 * The training settings a runKey hashes: all but gradientCheckpointing, which changes memory and
 * time, not the result; without it, a config's run keys are those it had before the option existed.
 */
function keyed(training: TrainingConfig): Omit<TrainingConfig, 'gradientCheckpointing'> {
  const { gradientCheckpointing: _recompute, ...rest } = training;
  return rest;
}

/** The precisions `eval.precision` asks for, in order, each once; absent: fp32 only. */
export function evalPrecisions(evalConfig: Pick<EvalConfig, 'precision'>): EvalPrecision[] {
  const p = evalConfig.precision ?? 'fp32';
  return [...new Set(Array.isArray(p) ? p : [p])];
}

/** The grid's eval settings for a run at `precision` (see {@link RunEvalConfig}). */
function runEval(evalConfig: EvalConfig, precision: EvalPrecision): RunEvalConfig {
  const { precision: _all, ...rest } = evalConfig;
  return precision === 'fp32' ? rest : { ...rest, precision };
}

/** ` · int8` after the label of an int8 run; fp32 labels are what they were. */
const precisionLabel = (label: string, e: RunEvalConfig) => (e.precision ? `${label} · ${e.precision}` : label);

export function planRuns(grid: GridConfig): RunSpec[] {
  const runs: RunSpec[] = [];
  const dataKey = contentHash(grid.data);
  const evals = evalPrecisions(grid.eval).map((p) => runEval(grid.eval, p));
  for (const model of grid.models) {
    for (const entry of grid.methods) {
      for (const [{ lr, method }, evalConfig] of expandMethod(entry)
        .map(splitLr)
        .flatMap((m) => evals.map((e) => [m, e] as const))) {
        const trains = method.method !== 'icl';
        const shots = method.method === 'icl' ? method.shots : 0;
        // A method's own lr replaces training.lr; the trainer sees it as training.lr, not a method field.
        const training = lr === undefined ? grid.training : { ...grid.training, lr };
        // Everything that changes a run's result goes into its key; the store and the grid name do
        // not, so the same run in two grids (or stores) is recognisably the same experiment.
        const identity = {
          model,
          method,
          data: grid.data,
          training: trains ? keyed(training) : null,
          eval: planEvalIdentity(evalConfig),
        };
        const runKey = `${model.name}__${methodSlug(method)}__${contentHash(identity).slice(0, 8)}`;
        const label = precisionLabel(
          lr === undefined ? methodLabel(method) : `${methodLabel(method)} lr=${lr}`,
          evalConfig,
        );
        runs.push({
          runKey,
          grid: grid.name,
          model,
          method,
          label,
          trains,
          shots,
          training,
          eval: evalConfig,
          data: grid.data,
          dataKey,
          store: grid.store,
          retention: grid.retention,
          ...(grid.tracking ? { tracking: grid.tracking } : {}),
        });
      }
    }
  }
  for (const [pair, evalConfig] of grid.speculative.flatMap((p) => evals.map((e) => [p, e] as const))) {
    const model = grid.models.find((m) => m.name === pair.target);
    const lookup = pair.drafting === 'prompt-lookup';
    const draft = lookup ? undefined : grid.models.find((m) => m.name === pair.draft);
    if (!model || (!lookup && !draft))
      throw new TypeError(`speculative pair ${pair.target}/${pair.draft ?? '-'} names an unknown model`);
    const settings = pair.drafting === 'distilled' ? distillSettings(pair, grid.eval) : undefined;
    const distill = settings ? distillPlan(settings, grid.training) : undefined;
    const method: SpeculativeMethodSpec = draft
      ? { method: 'speculative', draft: draft.name, gamma: pair.gamma, ...(settings ? { distill: settings } : {}) }
      : { method: 'speculative', gamma: pair.gamma, promptLookup: { maxNgram: pair.maxNgram ?? DEFAULT_MAX_NGRAM } };
    // Model drafts hash what they always hashed (`draft` is their model config), so keys stay;
    // a distilled draft also hashes the training settings it is distilled with.
    const identity = {
      model,
      ...(draft ? { draft } : {}),
      method,
      data: grid.data,
      eval: planEvalIdentity(evalConfig),
      ...(distill ? { training: keyed(distill.training) } : {}),
    };
    runs.push({
      runKey: `${model.name}__${speculativeSlug(method)}__${contentHash(identity).slice(0, 8)}`,
      grid: grid.name,
      model,
      method,
      label: precisionLabel(
        settings
          ? `speculative distilled draft=${draft!.name} ${settings.method} steps=${settings.steps} gamma=${pair.gamma}`
          : draft
            ? `speculative draft=${draft.name} gamma=${pair.gamma}`
            : `speculative prompt-lookup n=${method.promptLookup!.maxNgram} gamma=${pair.gamma}`,
        evalConfig,
      ),
      trains: false,
      shots: 0,
      training: grid.training,
      eval: evalConfig,
      data: grid.data,
      dataKey,
      store: grid.store,
      ...(draft ? { draft } : {}),
      ...(distill ? { distill, retention: grid.retention } : {}),
      ...(grid.tracking ? { tracking: grid.tracking } : {}),
    });
  }
  const keys = new Set(runs.map((r) => r.runKey));
  if (keys.size !== runs.length)
    throw new TypeError('duplicate runs in grid: two method entries expand to the same configuration');
  return runs;
}

/** A pair's `distill` object with the defaults applied (DEFAULT_DISTILL; maxNewTokens: the evaluation's). */
export function distillSettings(pair: SpeculativeConfig, evalConfig: EvalConfig): DistillSettings {
  const d = pair.distill ?? {};
  const method = d.method ?? DEFAULT_DISTILL.method;
  return {
    steps: d.steps ?? DEFAULT_DISTILL.steps,
    lr: d.lr ?? DEFAULT_DISTILL.lr[method],
    maxNewTokens: d.maxNewTokens ?? evalConfig.maxNewTokens,
    method,
  };
}

/**
 * What the distillDraft activity trains with. Warm-up and the checkpoint cadence are capped at the
 * distill steps: the grid's are sized for its own runs, and a cadence above maxSteps never checkpoints.
 */
function distillPlan(settings: DistillSettings, training: TrainingConfig): DistillPlan {
  const method: MethodSpec =
    settings.method === 'lora' ? (methodSchemas.lora.parse({ method: 'lora' }) as MethodSpec) : { method: 'full' };
  return {
    method,
    training: {
      ...training,
      maxSteps: settings.steps,
      lr: settings.lr,
      warmupSteps: Math.min(training.warmupSteps, settings.steps),
      checkpointEverySteps: Math.min(training.checkpointEverySteps, settings.steps),
    },
    maxNewTokens: settings.maxNewTokens,
  };
}

/**
 * The eval settings in a plan-time run key. `engine: 'auto'` (the default) is left out so that the
 * run keys (workflow ids) of configs written before the setting existed stay what they were; an
 * explicit engine is in. The evaluation key holds the engine that `auto` resolved to (identity.ts).
 */
export function planEvalIdentity(
  evalConfig: RunEvalConfig,
): Omit<RunEvalConfig, 'engine'> & { engine?: EvalConfig['engine'] } {
  const { engine, ...rest } = evalConfig;
  return engine === 'auto' || engine === undefined ? rest : { ...rest, engine };
}
