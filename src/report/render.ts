/**
 * The grid report: per model, a table of method × accuracy, Jaccard, throughput, training
 * perplexity and loss (the study's tables), a per-dataset breakdown with 95% intervals, the paired
 * significance tests, and links to the figures, rendered as markdown and CSV from run results.
 */
import type { ConfidenceInterval } from '../metrics/bootstrap';
import { MAX_PAIRWISE_RUNS, type Comparison, type MetricComparison } from '../metrics/compare';
import { wilsonInterval } from '../metrics/wilson';
import type { RunResult } from '../contracts';

export interface ResultRow {
  model: string;
  method: string;
  label: string;
  runKey: string;
  status: string;
  n: number | null;
  exactMatch: number | null;
  exactMatchLow: number | null;
  exactMatchHigh: number | null;
  jaccard: number | null;
  jaccardLow: number | null;
  jaccardHigh: number | null;
  jaccardSet: number | null;
  tokenF1: number | null;
  /** UnifiedQA's per-format metric (EM / option-matched accuracy / token F1 / ROUGE-L), averaged. */
  official: number | null;
  tokensPerSec: number | null;
  hitLimitFraction: number | null;
  /** Speculative runs: share of draft tokens the target accepted. */
  acceptanceRate: number | null;
  /** Speculative runs: target-only greedy decoding of the same prompts, and tokensPerSec ÷ it. */
  targetOnlyTokensPerSec: number | null;
  speedup: number | null;
  /** Speculative runs (onnx engine): generated tokens per target forward pass. */
  tokensPerTargetPass: number | null;
  /** Test prompts cut to the context, and items not run (eval.longPrompt); null in older results. */
  truncatedPrompts: number | null;
  failedItems: number | null;
  trainLoss: number | null;
  trainPerplexity: number | null;
  /** Peak training memory (bytes) and which measure it is (`cuda.max_memory_allocated` or `ru_maxrss`). */
  peakMemoryBytes: number | null;
  peakMemorySource: string | null;
  /** Model FLOPs utilisation of training; null on CPU (no datasheet peak). */
  mfu: number | null;
  gradientCheckpointing: boolean | null;
  /** Perplexity of the reference answers on the held-out test split, where the run scored them. */
  perplexity: number | null;
  perplexityLow: number | null;
  perplexityHigh: number | null;
  error: string | null;
  /** The engine that produced the predictions (onnx, torch) and the precision it ran in; null: not evaluated. */
  engine: string | null;
  precision: string | null;
  /** int8 runs: the export's greedy-token agreement with fp32, and whether it fell below the threshold. */
  precisionAgreement: number | null;
  precisionBelowThreshold: boolean | null;
}

/** One run's scores on one dataset of the test split. */
export interface DatasetRow {
  model: string;
  method: string;
  label: string;
  runKey: string;
  dataset: string;
  n: number;
  exactMatch: number | null;
  exactMatchLow: number | null;
  exactMatchHigh: number | null;
  jaccard: number | null;
  jaccardLow: number | null;
  jaccardHigh: number | null;
  perplexity: number | null;
  perplexityLow: number | null;
  perplexityHigh: number | null;
}

/** A figure the report links to, relative to the report: `plots/<file>`. */
export interface PlotLink {
  file: string;
  title: string;
  /** The model a figure belongs to; null for figures across models. */
  model: string | null;
  /** `loss`, `lr` and `curves` figures go under the model's training curves; the rest under its figures. */
  metric?: string;
}

const CURVES = new Set(['loss', 'lr', 'curves']);

/** One model's paired comparisons (src/metrics/compare.ts). */
export interface ModelComparisons {
  model: string;
  /** Label of the zero-shot baseline; null when the model has none. */
  baseline: string | null;
  comparisons: readonly Comparison[];
  /** Runs left out of the comparisons, with why (e.g. speculative: the target's own outputs). */
  excluded?: readonly string[];
  /** Set when the model has too many runs for every pair: each run is compared with this one only. */
  reference?: string;
}

/** Optional sections of {@link renderMarkdown}. */
export interface MarkdownExtras {
  /** Per-dataset rows ({@link toDatasetRows}); omitted: no per-dataset tables. */
  datasets?: readonly DatasetRow[];
  /** Figures stored under `plots/` beside the report; omitted: no figure links. */
  plots?: readonly PlotLink[];
  /** Paired significance tests per model; omitted: no significance tables. */
  comparisons?: readonly ModelComparisons[];
}

function metric(r: RunResult, name: string): ConfidenceInterval | undefined {
  return r.metrics?.overall.metrics[name];
}

/** estimate, lower, upper of an interval, or three nulls. */
function triple(ci: ConfidenceInterval | undefined): [number | null, number | null, number | null] {
  return ci ? [ci.estimate, ci.lower, ci.upper] : [null, null, null];
}

/**
 * Exact match as a Wilson interval: results saved before Wilson intervals carry a percentile
 * bootstrap ("0.0 (0.0–0.0)" at 0/48); the count is estimate × n, so the interval is rebuilt.
 */
export function exactMatchInterval(ci: ConfidenceInterval | undefined): ConfidenceInterval | undefined {
  if (!ci || ci.method === 'wilson' || !(ci.n > 0)) return ci;
  const k = Math.round(ci.estimate * ci.n);
  return Math.abs(k - ci.estimate * ci.n) < 1e-6 ? wilsonInterval(k, ci.n) : ci;
}

export function toRows(results: RunResult[]): ResultRow[] {
  return results.map((r) => {
    const em = exactMatchInterval(metric(r, 'exactMatch'));
    const [jaccard, jaccardLow, jaccardHigh] = triple(metric(r, 'jaccardStudy'));
    const [perplexity, perplexityLow, perplexityHigh] = triple(r.metrics?.overall.perplexity);
    return {
      model: r.model,
      method: r.method,
      label: r.label,
      runKey: r.runKey,
      status: r.status,
      n: r.metrics?.overall.n ?? null,
      exactMatch: em?.estimate ?? null,
      exactMatchLow: em?.lower ?? null,
      exactMatchHigh: em?.upper ?? null,
      jaccard,
      jaccardLow,
      jaccardHigh,
      jaccardSet: metric(r, 'jaccardSet')?.estimate ?? null,
      tokenF1: metric(r, 'tokenF1')?.estimate ?? null,
      official: metric(r, 'official')?.estimate ?? null,
      tokensPerSec: r.throughput?.tokensPerSec ?? null,
      hitLimitFraction: r.throughput?.hitLimitFraction ?? null,
      acceptanceRate: r.throughput?.acceptanceRate ?? null,
      targetOnlyTokensPerSec: r.throughput?.targetOnlyTokensPerSec ?? null,
      speedup: r.throughput?.speedup ?? null,
      tokensPerTargetPass: r.throughput?.tokensPerTargetPass ?? null,
      truncatedPrompts: r.throughput?.truncatedPrompts ?? null,
      failedItems: r.throughput?.failedItems ?? null,
      trainLoss: r.training?.trainLoss ?? null,
      trainPerplexity: r.training?.trainPerplexity ?? null,
      peakMemoryBytes: r.training?.peakMemoryBytes ?? null,
      peakMemorySource: r.training?.peakMemorySource ?? null,
      mfu: r.training?.mfu ?? null,
      gradientCheckpointing: r.training?.gradientCheckpointing ?? null,
      perplexity,
      perplexityLow,
      perplexityHigh,
      error: r.error ?? null,
      // Results saved before the torch engine were all evaluated by onnx in fp32.
      engine: r.metrics ? (r.engine ?? 'onnx') : null,
      precision: r.metrics ? (r.precision ?? 'fp32') : null,
      precisionAgreement: r.precisionParity?.agreement ?? null,
      precisionBelowThreshold: r.precisionParity?.belowThreshold ?? null,
    };
  });
}

/** `onnx · int8`, flagged where the int8 export fell below its token-agreement threshold. */
function engineCell(r: ResultRow): string {
  if (!r.engine) return '–';
  return `${r.engine} · ${r.precision}${r.precisionBelowThreshold ? ' (below parity)' : ''}`;
}

/**
 * int8 runs next to their fp32 twin (the same label without ` · int8`: same run, same test items):
 * exact match of each and the delta int8 − fp32, with the export's token agreement.
 */
function precisionTable(model: string, rows: readonly ResultRow[]): string[] {
  const pairs = rows
    .filter((r) => r.precision === 'int8')
    .map((q) => [rows.find((f) => f.precision === 'fp32' && `${f.label} · int8` === q.label), q] as const)
    .filter((p): p is readonly [ResultRow, ResultRow] => p[0] !== undefined);
  if (!pairs.length) return [];
  const delta = (a: number | null, b: number | null) => (a === null || b === null ? '–' : pp(b - a));
  return [
    `### ${model}: int8 vs fp32`,
    '',
    '| run | n | exact match % fp32 | exact match % int8 | Δ exact match pp (int8 − fp32) | tokens/s fp32 | tokens/s int8 | token agreement at export |',
    '| --- | --: | --: | --: | --: | --: | --: | --- |',
    ...pairs.map(
      ([f, q]) =>
        `| ${cell(f.label)} | ${q.n ?? '–'} | ${pct(f.exactMatch)} | ${pct(q.exactMatch)} | ${delta(f.exactMatch, q.exactMatch)} | ${num(f.tokensPerSec, 1)} | ${num(q.tokensPerSec, 1)} | ${q.precisionAgreement === null ? '–' : `${pct(q.precisionAgreement)}%${q.precisionBelowThreshold ? ' **below threshold**' : ''}`} |`,
    ),
    '',
    "Both rows evaluate the same test items. Token agreement: the share of fp32 greedy tokens the int8 export also predicts on fixed prompts, measured when it was quantized; below the threshold (0.9 unless set) its numbers are not fp32's.",
    '',
  ];
}

/** One row per run and dataset, in run order and then dataset order; runs without metrics add none. */
export function toDatasetRows(results: readonly RunResult[]): DatasetRow[] {
  return results.flatMap((r) =>
    Object.entries(r.metrics?.byDataset ?? {}).map(([dataset, g]) => {
      const [exactMatch, exactMatchLow, exactMatchHigh] = triple(exactMatchInterval(g.metrics['exactMatch']));
      const [jaccard, jaccardLow, jaccardHigh] = triple(g.metrics['jaccardStudy']);
      const [perplexity, perplexityLow, perplexityHigh] = triple(g.perplexity);
      return {
        model: r.model,
        method: r.method,
        label: r.label,
        runKey: r.runKey,
        dataset,
        n: g.n,
        exactMatch,
        exactMatchLow,
        exactMatchHigh,
        jaccard,
        jaccardLow,
        jaccardHigh,
        perplexity,
        perplexityLow,
        perplexityHigh,
      };
    }),
  );
}

const pct = (v: number | null) => (v === null || !Number.isFinite(v) ? '–' : (100 * v).toFixed(1));
const num = (v: number | null, d = 2) => (v === null || !Number.isFinite(v) ? '–' : v.toFixed(d));
/** `45.0 (40.1–50.2)`; the interval only where both ends exist. */
const withCi = (fmt: (v: number | null) => string, v: number | null, lo: number | null, hi: number | null) =>
  v !== null && lo !== null && hi !== null ? `${fmt(v)} (${fmt(lo)}–${fmt(hi)})` : fmt(v);
/** A table cell: a `|` would end the cell and a newline the row. */
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\r?\n|\r/g, ' ');
/** Link targets: file names are ours, but spaces or parentheses would still break `![..](..)`. */
const href = (file: string) =>
  `plots/${encodeURI(file).replace(/[()]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
const alt = (s: string) => s.replace(/[[\]\\]/g, '\\$&');

function figureLines(plots: readonly PlotLink[]): string[] {
  return plots.flatMap((p) => [`![${alt(p.title)}](${href(p.file)})`, '']);
}

const memory = (bytes: number | null, source: string | null) =>
  bytes === null ? '–' : `${(bytes / 1024 ** 3).toFixed(2)} GiB${source === 'ru_maxrss' ? ' (RSS)' : ''}`;

/** Per model: what each trained run cost (peak memory, MFU, whether activations were recomputed). */
function resourceTable(model: string, rows: readonly ResultRow[]): string[] {
  const trained = rows.filter((r) => r.peakMemoryBytes !== null);
  if (!trained.length) return [];
  return [
    `### ${model}: training resources`,
    '',
    '| method | peak memory | MFU % | gradient checkpointing |',
    '| --- | --: | --: | --- |',
    ...trained.map(
      (r) =>
        `| ${cell(r.label)} | ${memory(r.peakMemoryBytes, r.peakMemorySource)} | ${pct(r.mfu)} | ${r.gradientCheckpointing === null ? '–' : r.gradientCheckpointing ? 'on' : 'off'} |`,
    ),
    '',
    "Peak memory is the CUDA allocator's peak (`torch.cuda.max_memory_allocated`), or the trainer's peak RSS on CPU (RSS). " +
      "MFU = (4·N + 2·N_trainable) FLOPs per trained token × tokens/s ÷ the GPU's dense bf16 peak (6·N for full fine-tuning); none on CPU.",
    '',
  ];
}

function datasetTable(rows: readonly DatasetRow[]): string[] {
  const ppl = rows.some((r) => r.perplexity !== null);
  const lines = [
    `| dataset | method | n | exact match % (95% CI) | Jaccard % (95% CI) |${ppl ? ' held-out ppl (95% CI) |' : ''}`,
    `| --- | --- | --: | --: | --: |${ppl ? ' --: |' : ''}`,
  ];
  // Dataset-major, so the methods on one dataset sit together (a stable sort keeps run order);
  // code-unit order, not locale order, so the bytes do not depend on the machine's locale.
  for (const r of [...rows].sort((a, b) => (a.dataset < b.dataset ? -1 : a.dataset > b.dataset ? 1 : 0))) {
    const pplCell = ppl ? ` ${withCi((v) => num(v), r.perplexity, r.perplexityLow, r.perplexityHigh)} |` : '';
    lines.push(
      `| ${cell(r.dataset)} | ${cell(r.label)} | ${r.n} | ${withCi(pct, r.exactMatch, r.exactMatchLow, r.exactMatchHigh)} | ${withCi(pct, r.jaccard, r.jaccardLow, r.jaccardHigh)} |${pplCell}`,
    );
  }
  return lines;
}

/** A p-value: three decimals, `<0.001` below. */
const pValue = (p: number) => (p < 0.001 ? '<0.001' : p.toFixed(3));
/** Signed percentage points. */
const pp = (v: number) => `${v >= 0 ? '+' : '−'}${Math.abs(100 * v).toFixed(1)}`;

function diffCell(m: MetricComparison | undefined): string {
  if (!m) return '–';
  if (m.test === 'mcnemar-exact') return `${pp(m.diff)} (${m.aOnly}/${m.bOnly})`;
  return `${pp(m.diff)} (${pp(m.lower!)} to ${pp(m.upper!)})`;
}

/** `raw (Holm)`, bold with a `*` where the Holm-adjusted p is below alpha. */
function pCell(m: MetricComparison | undefined): string {
  if (!m) return '–';
  const text = `${pValue(m.p)} (${pValue(m.pHolm)})`;
  return m.significant ? `**${text}** *` : text;
}

/** One model's paired tests: the runs against the zero-shot baseline first, then every other pair. */
export function significanceTable(mc: ModelComparisons): string[] {
  if (!mc.comparisons.length) return [];
  const lines = [
    `### ${mc.model}: paired significance`,
    '',
    '| comparison | n | Δ exact match pp (only A / only B right) | McNemar exact p (Holm) | Δ Jaccard pp (95% CI) | paired bootstrap p (Holm) | Δ token F1 pp (95% CI) | paired bootstrap p (Holm) |',
    '| --- | --: | --: | --: | --: | --: | --: | --: |',
  ];
  for (const c of mc.comparisons) {
    const m = c.metrics;
    lines.push(
      `| ${cell(c.a)} vs ${c.vsBaseline ? `**${cell(c.b)}** (${mc.baseline ? 'baseline' : 'best exact match'})` : cell(c.b)} | ${c.n} | ${diffCell(m.exactMatch)} | ${pCell(m.exactMatch)} | ${diffCell(m.jaccardStudy)} | ${pCell(m.jaccardStudy)} | ${diffCell(m.tokenF1)} | ${pCell(m.tokenF1)} |`,
    );
  }
  const family = mc.comparisons.length;
  lines.push(
    '',
    `Δ = A − B on the same test items, in percentage points. * : significant at 5% after Holm's correction over the ${family} comparisons of this model, separately per metric; ` +
      `the p-value in parentheses is the adjusted one. Exact match: McNemar's exact test on the items only one of the two got right; Jaccard and token F1: paired bootstrap of the per-item differences (1000 resamples, seed 42).` +
      (mc.reference
        ? ` Over ${MAX_PAIRWISE_RUNS} runs of this model: each run is compared with ${mc.baseline ? 'the zero-shot baseline' : `the run of the highest exact match (${cell(mc.reference)}; no zero-shot run)`} only, not every pair.`
        : mc.baseline
          ? ''
          : ' No zero-shot run (icl shots=0) for this model: pairs only.') +
      (mc.excluded?.length ? ` Not compared: ${mc.excluded.map(cell).join('; ')}.` : ''),
    '',
  );
  return lines;
}

/**
 * The report as markdown: per model the run table, the per-dataset breakdown and the model's
 * figures (when `extras` carries them), then figures across models and the runs that failed.
 */
export function renderMarkdown(gridName: string, rows: ResultRow[], extras: MarkdownExtras = {}): string {
  const lines = [`# ${gridName}`, ''];
  for (const model of [...new Set(rows.map((r) => r.model))]) {
    const modelRows = rows.filter((x) => x.model === model);
    const ppl = modelRows.some((r) => r.perplexity !== null);
    lines.push(`## ${model}`, '');
    lines.push(
      `| method | status | engine | n | exact match % (95% CI) | Jaccard % (95% CI) | Jaccard (set) % | token F1 % | UnifiedQA official % | tokens/s | hit limit % | train loss | train ppl |${ppl ? ' held-out ppl (95% CI) |' : ''}`,
    );
    lines.push(`| --- | --- | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |${ppl ? ' --: |' : ''}`);
    for (const r of modelRows) {
      const pplCell = ppl ? ` ${withCi((v) => num(v), r.perplexity, r.perplexityLow, r.perplexityHigh)} |` : '';
      lines.push(
        `| ${cell(r.label)} | ${r.status} | ${engineCell(r)} | ${r.n ?? '–'} | ${withCi(pct, r.exactMatch, r.exactMatchLow, r.exactMatchHigh)} | ${withCi(pct, r.jaccard, r.jaccardLow, r.jaccardHigh)} | ${pct(r.jaccardSet)} | ${pct(r.tokenF1)} | ${pct(r.official)} | ${num(r.tokensPerSec, 1)} | ${pct(r.hitLimitFraction)} | ${num(r.trainLoss, 3)} | ${num(r.trainPerplexity)} |${pplCell}`,
      );
    }
    lines.push('');
    for (const r of modelRows.filter((row) => (row.truncatedPrompts ?? 0) + (row.failedItems ?? 0) > 0))
      lines.push(
        `prompts · ${cell(r.label)}: ${r.truncatedPrompts ?? 0} test prompts cut from the left to fit the context, ` +
          `${r.failedItems ?? 0} items not run (ids and reasons in predictions.jsonl; eval.longPrompt).`,
        '',
      );
    if (modelRows.some((r) => r.precision === 'nf4-base')) {
      lines.push(
        'engine · nf4-base: QLoRA evaluated with its adapter unmerged on the 4-bit NF4 base it trained on, not on an fp32 merge.',
        '',
      );
    }
    lines.push(...precisionTable(model, modelRows));
    const speculative = modelRows.filter((r) => r.speedup !== null);
    if (speculative.length) {
      lines.push(
        `### ${model}: speculative decoding`,
        '',
        '| drafting | acceptance % | tokens / target pass | tokens/s | target-only tokens/s | speedup |',
        '| --- | --: | --: | --: | --: | --: |',
      );
      for (const r of speculative)
        lines.push(
          `| ${cell(r.label)} | ${pct(r.acceptanceRate)} | ${num(r.tokensPerTargetPass)} | ${num(r.tokensPerSec, 1)} | ${num(r.targetOnlyTokensPerSec, 1)} | ${num(r.speedup)}× |`,
        );
      lines.push(
        '',
        "Greedy speculative decoding returns exactly the target's tokens; the speedup is over the target alone on the same prompts.",
        '',
      );
    }
    lines.push(...resourceTable(model, modelRows));
    const significance = (extras.comparisons ?? []).find((c) => c.model === model);
    if (significance) lines.push(...significanceTable(significance));
    const datasets = (extras.datasets ?? []).filter((d) => d.model === model);
    if (datasets.length) lines.push(`### ${model}: per dataset`, '', ...datasetTable(datasets), '');
    const figures = (extras.plots ?? []).filter((p) => p.model === model && !CURVES.has(p.metric ?? ''));
    if (figures.length) lines.push(`### ${model}: figures`, '', ...figureLines(figures));
    const curves = (extras.plots ?? []).filter((p) => p.model === model && CURVES.has(p.metric ?? ''));
    if (curves.length) lines.push(`### ${model}: training curves`, '', ...figureLines(curves));
  }
  const across = (extras.plots ?? []).filter((p) => p.model === null);
  if (across.length) lines.push('## All models', '', ...figureLines(across));
  const failed = rows.filter((r) => r.error);
  if (failed.length) {
    lines.push('## Runs that did not complete', '');
    for (const r of failed) lines.push(`- \`${r.runKey}\` (${r.status}): ${r.error}`);
    lines.push('');
  }
  lines.push(
    "Jaccard = common tokens / tokens of the longer string (the study's definition); Jaccard (set) = |A∩B|/|A∪B|.",
  );
  lines.push(
    'tokens/s counts generated tokens up to each sequence\'s EOS; "hit limit" is the share of outputs cut at maxNewTokens.',
  );
  lines.push(
    'Exact-match intervals are 95% Wilson score intervals; the other intervals are 95% percentile bootstrap intervals over test items; held-out ppl is the perplexity of the reference answers on the test split.',
  );
  return lines.join('\n') + '\n';
}

function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** CSV with a header from the first row's keys; works for {@link ResultRow} and {@link DatasetRow}. */
export function renderCsv<T extends object>(rows: readonly T[]): string {
  if (rows.length === 0) return '';
  const cols = Object.keys(rows[0]!) as (keyof T)[];
  return [cols.join(','), ...rows.map((r) => cols.map((c) => csvCell(r[c])).join(','))].join('\n') + '\n';
}
