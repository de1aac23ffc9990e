/**
 * The report's figures as vega-lite specs (pure data, rendered to SVG by ./vega-svg.ts): the
 * study's figures 1–3 (average Jaccard, accuracy and throughput by method, per model and across
 * models) and the training curves (loss and learning rate per step, per model and per run).
 */
import type { TopLevelSpec } from 'vega-lite/build/index';
import type { RunResult } from '../contracts';

/** A trained run's per-step record, from its `final/training_log.json`. */
export interface TrainingCurve {
  /** Cross-entropy after step i + 1. */
  losses: readonly number[];
  /** Learning rate of step i + 1; null for steps trained before the trainer kept lrs. Absent: none kept. */
  lrs?: readonly (number | null)[];
}

/** What a figure shows. */
export type PlotMetric = 'jaccard' | 'exactMatch' | 'throughput' | 'loss' | 'lr' | 'curves';

/** One figure, before rendering. */
export interface PlotSpec {
  /** File name within the report's `plots/` folder. */
  file: string;
  title: string;
  /** The model a figure belongs to; null for the across-models comparison. */
  model: string | null;
  metric: PlotMetric;
  /** The run a per-run figure shows. */
  runKey?: string;
  spec: TopLevelSpec;
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const FONT = 'Helvetica, Arial, sans-serif';
const CONFIG = {
  font: FONT,
  background: 'white',
  view: { stroke: null },
  axis: { labelFontSize: 11, titleFontSize: 12, labelLimit: 360 },
  title: { fontSize: 15, anchor: 'start' as const },
  legend: { labelLimit: 360, orient: 'bottom' as const, columns: 1 },
};

interface BarDatum {
  method: string;
  model: string;
  value: number;
  lower?: number;
  upper?: number;
  note: string;
}

interface BarMetric {
  metric: 'jaccard' | 'exactMatch' | 'throughput';
  slug: string;
  name: string;
  axis: string;
  value(r: RunResult): Omit<BarDatum, 'method' | 'model' | 'note'> | null;
}

const finite = (v: number | undefined | null): v is number => typeof v === 'number' && Number.isFinite(v);

function scorePercent(r: RunResult, name: string): Omit<BarDatum, 'method' | 'model' | 'note'> | null {
  const ci = r.metrics?.overall.metrics[name];
  if (!ci || !finite(ci.estimate)) return null;
  return { value: 100 * ci.estimate, lower: 100 * ci.lower, upper: 100 * ci.upper };
}

const BAR_METRICS: readonly BarMetric[] = [
  {
    metric: 'jaccard',
    slug: 'jaccard',
    name: 'average Jaccard',
    axis: 'average Jaccard (%) with 95% CI',
    value: (r) => scorePercent(r, 'jaccardStudy'),
  },
  {
    metric: 'exactMatch',
    slug: 'exact-match',
    name: 'accuracy (exact match)',
    axis: 'exact match (%) with 95% CI',
    value: (r) => scorePercent(r, 'exactMatch'),
  },
  {
    metric: 'throughput',
    slug: 'throughput',
    name: 'throughput',
    axis: 'generated tokens / s',
    value: (r) => (finite(r.throughput?.tokensPerSec) ? { value: r.throughput.tokensPerSec } : null),
  },
];

/** Model names are `[a-z0-9._-]` by the config schema; this keeps a file name safe regardless. */
export const fileSafe = (name: string): string =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[.-]+/, '')
    .replace(/-+$/, '') || 'x';

/** Per model, runs keyed by label; a repeated label gets a ` #2` suffix so no run is hidden. */
function byModel(results: readonly RunResult[]): Map<string, Map<string, RunResult>> {
  const models = new Map<string, Map<string, RunResult>>();
  for (const r of results) {
    let runs = models.get(r.model);
    if (!runs) models.set(r.model, (runs = new Map()));
    let label = r.label;
    for (let k = 2; runs.has(label); k++) label = `${r.label} #${k}`;
    runs.set(label, r);
  }
  return models;
}

function barDatum(m: BarMetric, model: string, method: string, r: RunResult): BarDatum | null {
  const v = m.value(r);
  if (!v) return null;
  const n = r.metrics?.overall.n;
  return { ...v, method, model, note: m.metric === 'throughput' || n === undefined ? '' : `n=${n}` };
}

/**
 * Horizontal bars (method labels such as `adalora initR=12 targetR=8 …` are long), one row per
 * method; across models a bar per model within each row. Methods without a value keep their row.
 */
function barSpec(title: string, m: BarMetric, methods: string[], data: BarDatum[], grouped: boolean): TopLevelSpec {
  const fmt = '.1f';
  const y = {
    field: 'method',
    type: 'nominal' as const,
    title: null,
    sort: methods,
    scale: { domain: methods },
    axis: { labelLimit: 520 },
  };
  const color = grouped ? { field: 'model', type: 'nominal' as const, title: 'model' } : { value: '#4c78a8' };
  const yOffset = grouped ? { yOffset: { field: 'model', type: 'nominal' as const } } : {};
  const hasCi = data.some((d) => d.lower !== undefined);
  return {
    $schema: SCHEMA,
    title,
    config: CONFIG,
    width: 420,
    height: { step: grouped ? 12 * new Set(data.map((d) => d.model)).size + 8 : 22 },
    data: { values: data },
    encoding: { y, ...yOffset },
    layer: [
      {
        mark: { type: 'bar' },
        encoding: {
          x: { field: 'value', type: 'quantitative', title: m.axis },
          color,
          tooltip: [{ field: 'model' }, { field: 'method' }, { field: 'value', format: fmt }, { field: 'note' }],
        },
      },
      ...(hasCi
        ? [
            {
              mark: { type: 'rule' as const, color: '#333' },
              encoding: { x: { field: 'lower', type: 'quantitative' as const }, x2: { field: 'upper' } },
            },
          ]
        : []),
      {
        mark: { type: 'text', align: 'left', dx: 4, fontSize: 10, color: '#333' },
        encoding: {
          x: { field: hasCi ? 'upper' : 'value', type: 'quantitative' },
          text: { field: 'value', type: 'quantitative', format: fmt },
        },
      },
    ],
  } as TopLevelSpec;
}

interface CurvePoint {
  run: string;
  step: number;
  loss: number;
  lr: number | null;
}

function curvePoints(label: string, c: TrainingCurve): CurvePoint[] {
  return c.losses.map((loss, i) => ({ run: label, step: i + 1, loss, lr: c.lrs?.[i] ?? null }));
}

/** A line per run of `field` over the training step (a unit spec, for {@link lineSpec} or a panel). */
function linePanel(field: 'loss' | 'lr', points: CurvePoint[], legend: boolean): Record<string, unknown> {
  return {
    width: 460,
    height: 220,
    data: { values: points.filter((p) => finite(p[field])) },
    mark: { type: 'line', point: points.length <= 60 ? { size: 14 } : false },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'training step', axis: { tickMinStep: 1 } },
      y: {
        field,
        type: 'quantitative',
        title: field === 'loss' ? 'training loss (cross-entropy)' : 'learning rate',
        ...(field === 'lr' ? { axis: { format: '.1e' } } : {}),
      },
      color: legend ? { field: 'run', type: 'nominal', title: 'method' } : { value: '#4c78a8' },
      tooltip: [{ field: 'run' }, { field: 'step' }, { field, format: field === 'lr' ? '.3e' : '.4f' }],
    },
  };
}

function lineSpec(title: string, field: 'loss' | 'lr', points: CurvePoint[]): TopLevelSpec {
  const spec = { $schema: SCHEMA, title, config: CONFIG, ...linePanel(field, points, true) };
  return spec as unknown as TopLevelSpec;
}

/** Words of `text` in lines of at most `width` characters (a long word gets a line of its own). */
export function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const last = lines[lines.length - 1];
    if (last !== undefined && last.length + 1 + word.length <= width) lines[lines.length - 1] = `${last} ${word}`;
    else lines.push(word);
  }
  return lines;
}

/**
 * One run's loss above its lr, sharing the step axis. The run's label is the subtitle, wrapped:
 * vega sizes a figure to its title, and labels such as AdaLoRA's are 80 characters long.
 */
function runCurvesSpec(model: string, label: string, points: CurvePoint[]): TopLevelSpec {
  const hasLr = points.some((p) => p.lr !== null);
  const panels = hasLr
    ? [linePanel('loss', points, false), linePanel('lr', points, false)]
    : [linePanel('loss', points, false)];
  const title = { text: `${model}: loss and learning rate per step`, subtitle: wrapWords(label, 60) };
  return { $schema: SCHEMA, title, config: CONFIG, vconcat: panels } as unknown as TopLevelSpec;
}

/**
 * The report's figures. Per model: `model-<model>.{jaccard,exact-match,throughput}.svg` (figures
 * 1–3) and, where runs trained, `model-<model>.{loss,lr}.svg` (every trained run of the model) and
 * `run-<model>.<label>.curves.svg` (one run's loss and lr); with more than one model,
 * `compare.<metric>.svg`. `curves` maps a runKey to its training log.
 */
export function studyPlotSpecs(
  results: readonly RunResult[],
  curves: ReadonlyMap<string, TrainingCurve> = new Map(),
): PlotSpec[] {
  const models = byModel(results);
  const out: PlotSpec[] = [];
  const used = new Set<string>();
  const unique = (base: string) => {
    let name = base;
    for (let k = 2; used.has(name); k++) name = `${base}-${k}`;
    used.add(name);
    return name;
  };
  for (const [model, runs] of models) {
    const base = unique(`model-${fileSafe(model)}`);
    const methods = [...runs.keys()];
    for (const m of BAR_METRICS) {
      const title = `${model}: ${m.name} by method`;
      const data = methods.flatMap((l) => barDatum(m, model, l, runs.get(l)!) ?? []);
      out.push({
        file: `${base}.${m.slug}.svg`,
        title,
        model,
        metric: m.metric,
        spec: barSpec(title, m, methods, data, false),
      });
    }
    const trained = methods.flatMap((l) => {
      const c = curves.get(runs.get(l)!.runKey);
      return c && c.losses.length ? [{ label: l, run: runs.get(l)!, curve: c }] : [];
    });
    if (!trained.length) continue;
    const points = trained.flatMap((t) => curvePoints(t.label, t.curve));
    out.push({
      file: `${base}.loss.svg`,
      title: `${model}: training loss per step`,
      model,
      metric: 'loss',
      spec: lineSpec(`${model}: training loss per step`, 'loss', points),
    });
    if (points.some((p) => p.lr !== null))
      out.push({
        file: `${base}.lr.svg`,
        title: `${model}: learning rate per step`,
        model,
        metric: 'lr',
        spec: lineSpec(`${model}: learning rate per step`, 'lr', points),
      });
    for (const t of trained) {
      const title = `${model} · ${t.label}: loss and learning rate`;
      out.push({
        file: `${unique(`run-${fileSafe(model)}.${fileSafe(t.label)}`)}.curves.svg`,
        title,
        model,
        metric: 'curves',
        runKey: t.run.runKey,
        spec: runCurvesSpec(model, t.label, curvePoints(t.label, t.curve)),
      });
    }
  }
  if (models.size > 1) {
    const methods = [...new Set([...models.values()].flatMap((runs) => [...runs.keys()]))];
    for (const m of BAR_METRICS) {
      const title = `All models: ${m.name} by method`;
      const data = [...models].flatMap(([model, runs]) =>
        methods.flatMap((l) => (runs.has(l) ? (barDatum(m, model, l, runs.get(l)!) ?? []) : [])),
      );
      out.push({
        file: `compare.${m.slug}.svg`,
        title,
        model: null,
        metric: m.metric,
        spec: barSpec(title, m, methods, data, true),
      });
    }
  }
  return out;
}
