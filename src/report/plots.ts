/**
 * The study's figures as dependency-free SVG: per model, bars across methods of average Jaccard,
 * exact-match accuracy and generation throughput; and per metric all models side by side.
 *
 * Output is a pure function of the input (no clocks, no randomness, fixed number formatting), so a
 * retried report activity rewrites identical bytes. Text widths are estimated from character
 * counts (no font metrics without a browser); the estimate is deliberately generous.
 */
import type { RunResult } from '../contracts';

/** One bar; `lower`/`upper` draw a 95% interval when both are finite. */
export interface BarValue {
  /** A non-finite value is drawn as "n/a" (with `note` as its tooltip). */
  value: number;
  lower?: number;
  upper?: number;
  /** Tooltip text (an SVG `<title>`), e.g. the run's status and n. */
  note?: string;
}

/** One bar per category; `null` is a missing value (a failed run, a method not run), drawn as "n/a". */
export interface BarSeries {
  name: string;
  values: readonly (BarValue | null)[];
}

/** A grouped bar chart: one group per category along x, one bar per series within each group. */
export interface BarChart {
  title: string;
  xLabel: string;
  yLabel: string;
  categories: readonly string[];
  series: readonly BarSeries[];
  /** Decimals of value labels; default: 0 from 100 up, 1 from 10 up, else 2. */
  decimals?: number;
}

const FONT = "'Helvetica Neue', Helvetica, Arial, 'DejaVu Sans', sans-serif";
/** Okabe–Ito colours (colour-blind safe), without yellow, which is unreadable on white. */
const COLORS = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#999999', '#000000'];
const TEXT = '#222222';
const MUTED = '#666666';
/** Average advance width of a glyph as a fraction of the font size; DejaVu Sans is about 0.6. */
const CHAR_EM = 0.62;

const PLOT_HEIGHT = 300;
const MARGIN = { left: 78, right: 24 };
const BAR_WIDTH = 30;
/** Bars widen to fill sparse groups up to this width (a single-series chart), no further. */
const MAX_BAR_WIDTH = 44;
const BAR_GAP = 6;
const GROUP_PAD = 28;
const MIN_GROUP_WIDTH = 104;
const MIN_WIDTH = 520;
const X_LINE = 15;

/** Text content and attribute values: the five XML specials, and characters XML 1.0 forbids. */
export function escapeXml(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** Coordinates with at most two decimals and never `-0`, so output bytes do not depend on float noise. */
const f = (n: number): string => String(Number(n.toFixed(2)) + 0);

const textWidth = (s: string, size: number): number => s.length * size * CHAR_EM;

/** Greedy word wrap to `maxChars`; words longer than a line are split. */
export function wrapText(text: string, maxChars: number): string[] {
  const width = Math.max(4, Math.floor(maxChars));
  const lines: string[] = [];
  let line = '';
  for (let word of text.split(/\s+/).filter(Boolean)) {
    while (word.length > width) {
      if (line) {
        lines.push(line);
        line = '';
      }
      // Prefer breaking after a separator (`numVirtualTokens=` / `20`), else mid-word.
      const cut = Math.max(...['=', '_', '-', ',', '/'].map((c) => word.lastIndexOf(c, width - 1) + 1));
      const at = cut > 1 ? cut : width;
      lines.push(word.slice(0, at));
      word = word.slice(at);
    }
    if (!line) line = word;
    else if (line.length + 1 + word.length <= width) line += ' ' + word;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line || lines.length === 0) lines.push(line);
  return lines;
}

const finite = (v: number | undefined): v is number => typeof v === 'number' && Number.isFinite(v);

function formatValue(v: number, decimals?: number): string {
  const d = decimals ?? (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2);
  return (Number(v.toFixed(d)) + 0).toFixed(d);
}

/** Ticks at 1, 2 or 5 × 10^k covering [lo, hi], about `count` of them. */
function niceTicks(lo: number, hi: number, count = 5): { ticks: number[]; decimals: number } {
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const ticks: number[] = [];
  // The epsilons keep float noise (0.1 * 3 = 0.30000000000000004) from adding or dropping a tick.
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  for (let i = first; i <= last; i++) ticks.push(Number((i * step).toFixed(decimals)));
  return { ticks, decimals };
}

/** y-axis range: includes 0, every value and interval end, rounded out to whole ticks. */
function yDomain(chart: BarChart): { lo: number; hi: number; ticks: number[]; decimals: number } {
  const points = chart.series.flatMap((s) =>
    s.values.flatMap((b) => (b && finite(b.value) ? [b.value, b.lower, b.upper].filter(finite) : [])),
  );
  const lo = Math.min(0, ...points);
  let hi = Math.max(0, ...points);
  if (hi === lo) hi = 1;
  const { ticks, decimals } = niceTicks(lo, hi);
  return { lo: ticks[0]!, hi: ticks[ticks.length - 1]!, ticks, decimals };
}

/** Renders a grouped bar chart with axis labels, legend, value labels, interval whiskers and "n/a" marks. */
export function renderBarChart(chart: BarChart): string {
  const nSeries = Math.max(1, chart.series.length);
  const labels = chart.series.map((s) =>
    chart.categories.map((_, i) => {
      const b = s.values[i];
      return b && finite(b.value) ? formatValue(b.value, chart.decimals) : 'n/a';
    }),
  );
  const longest = Math.max(3, ...labels.flat().map((l) => l.length));
  const slot = Math.max(BAR_WIDTH + BAR_GAP, Math.ceil(textWidth('0'.repeat(longest), 11)) + 6);
  let groupWidth = Math.max(nSeries * slot, MIN_GROUP_WIDTH) + GROUP_PAD;
  const nGroups = Math.max(1, chart.categories.length);
  // Bold glyphs run about 10% wider than regular ones.
  const titleWidth = 1.1 * textWidth(chart.title, 17) + MARGIN.left + MARGIN.right;
  const width = Math.ceil(Math.max(MIN_WIDTH, titleWidth, MARGIN.left + MARGIN.right + nGroups * groupWidth));
  groupWidth = (width - MARGIN.left - MARGIN.right) / nGroups;
  const slotWidth = Math.max(slot, Math.min(MAX_BAR_WIDTH + BAR_GAP, (groupWidth - GROUP_PAD) / nSeries));
  const barWidth = Math.min(MAX_BAR_WIDTH, slotWidth - BAR_GAP);

  // Legend rows, laid out left to right, wrapping at the right margin.
  const legend: { name: string; color: string; x: number; row: number }[] = [];
  let lx = MARGIN.left;
  let row = 0;
  chart.series.forEach((s, i) => {
    const w = 18 + textWidth(s.name, 12) + 18;
    if (lx + w > width - MARGIN.right && lx > MARGIN.left) {
      row++;
      lx = MARGIN.left;
    }
    legend.push({ name: s.name, color: COLORS[i % COLORS.length]!, x: lx, row });
    lx += w;
  });
  const legendTop = 48;
  const plotTop = legendTop + (legend.length ? (row + 1) * 18 : 0) + 26;
  const plotBottom = plotTop + PLOT_HEIGHT;
  const wrapChars = (groupWidth - 8) / (12 * CHAR_EM);
  const xLabels = chart.categories.map((c) => wrapText(c, wrapChars));
  const xLines = Math.max(1, ...xLabels.map((l) => l.length));
  const xTitleY = plotBottom + 18 + xLines * X_LINE + 12;
  const height = Math.ceil(xTitleY + 40);

  const dom = yDomain(chart);
  const y = (v: number) => plotBottom - ((v - dom.lo) / (dom.hi - dom.lo)) * PLOT_HEIGHT;
  const clampY = (v: number) => y(Math.min(dom.hi, Math.max(dom.lo, v)));
  const y0 = y(0);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${escapeXml(FONT)}" role="img">`,
  );
  out.push(`<title>${escapeXml(chart.title)}</title>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(
    `<text x="${MARGIN.left}" y="28" font-size="17" font-weight="bold" fill="${TEXT}">${escapeXml(chart.title)}</text>`,
  );
  for (const item of legend) {
    const ly = legendTop + item.row * 18;
    out.push(
      `<g class="legend"><rect x="${f(item.x)}" y="${ly - 10}" width="12" height="12" fill="${item.color}"/><text x="${f(item.x + 18)}" y="${ly}" font-size="12" fill="${TEXT}">${escapeXml(item.name)}</text></g>`,
    );
  }

  // Grid lines and y ticks.
  for (const t of dom.ticks) {
    const ty = f(y(t));
    out.push(
      `<line x1="${MARGIN.left}" y1="${ty}" x2="${width - MARGIN.right}" y2="${ty}" stroke="#e3e3e3" stroke-width="1"/>`,
    );
    out.push(
      `<text x="${MARGIN.left - 8}" y="${f(y(t) + 4)}" font-size="12" text-anchor="end" fill="${TEXT}">${t.toFixed(dom.decimals)}</text>`,
    );
  }
  const yMid = f((plotTop + plotBottom) / 2);
  out.push(
    `<text x="18" y="${yMid}" font-size="13" text-anchor="middle" fill="${TEXT}" transform="rotate(-90 18 ${yMid})">${escapeXml(chart.yLabel)}</text>`,
  );

  let anyInterval = false;
  let anyMissing = false;
  chart.categories.forEach((category, gi) => {
    const gx = MARGIN.left + gi * groupWidth;
    const barsX = gx + (groupWidth - nSeries * slotWidth) / 2;
    chart.series.forEach((s, si) => {
      const b = s.values[gi];
      const cx = barsX + si * slotWidth + slotWidth / 2;
      const tip = `${s.name} · ${category}`;
      if (!b || !finite(b.value)) {
        anyMissing = true;
        const why = b?.note ? `: ${b.note}` : ': no value';
        out.push(
          `<text class="na" x="${f(cx)}" y="${f(y0 - 6)}" font-size="12" font-style="italic" text-anchor="middle" fill="${MUTED}"><title>${escapeXml(tip + why)}</title>n/a</text>`,
        );
        return;
      }
      const top = y(Math.max(0, b.value));
      const h = Math.abs(y(b.value) - y0);
      const label = formatValue(b.value, chart.decimals);
      const hasCi = finite(b.lower) && finite(b.upper) && b.upper > b.lower;
      const ciText = hasCi
        ? ` (95% CI ${formatValue(b.lower!, chart.decimals)}–${formatValue(b.upper!, chart.decimals)})`
        : '';
      const tipText = `${tip}: ${label}${ciText}${b.note ? `; ${b.note}` : ''}`;
      out.push(
        `<rect class="bar" x="${f(cx - barWidth / 2)}" y="${f(top)}" width="${f(barWidth)}" height="${f(h)}" fill="${COLORS[si % COLORS.length]}"><title>${escapeXml(tipText)}</title></rect>`,
      );
      let labelAbove = Math.min(top, y0);
      if (hasCi) {
        anyInterval = true;
        const [hi, lo] = [clampY(b.upper!), clampY(b.lower!)];
        out.push(
          `<path class="ci" d="M${f(cx)} ${f(lo)}V${f(hi)}M${f(cx - 5)} ${f(hi)}H${f(cx + 5)}M${f(cx - 5)} ${f(lo)}H${f(cx + 5)}" stroke="${TEXT}" stroke-width="1.3" fill="none"/>`,
        );
        labelAbove = Math.min(labelAbove, hi);
      }
      out.push(
        `<text class="value" x="${f(cx)}" y="${f(labelAbove - 5)}" font-size="11" text-anchor="middle" fill="${TEXT}">${label}</text>`,
      );
    });
    const lines = xLabels[gi]!;
    const tx = f(gx + groupWidth / 2);
    const tspans = lines
      .map((l, li) => `<tspan x="${tx}" dy="${li === 0 ? 0 : X_LINE}">${escapeXml(l)}</tspan>`)
      .join('');
    out.push(
      `<text class="category" x="${tx}" y="${plotBottom + 18}" font-size="12" text-anchor="middle" fill="${TEXT}">${tspans}</text>`,
    );
  });
  if (chart.categories.length === 0) {
    out.push(
      `<text x="${f((MARGIN.left + width - MARGIN.right) / 2)}" y="${f((plotTop + plotBottom) / 2)}" font-size="13" text-anchor="middle" fill="${MUTED}">no runs</text>`,
    );
  }
  out.push(
    `<line x1="${MARGIN.left}" y1="${f(y0)}" x2="${width - MARGIN.right}" y2="${f(y0)}" stroke="${TEXT}" stroke-width="1"/>`,
  );
  out.push(
    `<line x1="${MARGIN.left}" y1="${plotTop}" x2="${MARGIN.left}" y2="${plotBottom}" stroke="${TEXT}" stroke-width="1"/>`,
  );
  out.push(
    `<text x="${f((MARGIN.left + width - MARGIN.right) / 2)}" y="${f(xTitleY)}" font-size="13" text-anchor="middle" fill="${TEXT}">${escapeXml(chart.xLabel)}</text>`,
  );
  const notes = [
    anyInterval ? 'Error bars: 95% bootstrap interval.' : '',
    anyMissing ? 'n/a: no value (run failed or not run).' : '',
  ].filter(Boolean);
  if (notes.length)
    out.push(
      `<text x="${MARGIN.left}" y="${f(xTitleY + 24)}" font-size="11" fill="${MUTED}">${escapeXml(notes.join(' '))}</text>`,
    );
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** The metrics the study plots. */
export type PlotMetric = 'jaccard' | 'exactMatch' | 'throughput';

interface MetricSpec {
  slug: string;
  name: string;
  yLabel: string;
  decimals?: number;
  value(r: RunResult): BarValue | null;
}

/** A score in [0, 1] with its interval, as a percentage. */
function scorePercent(r: RunResult, name: string): BarValue | null {
  const ci = r.metrics?.overall.metrics[name];
  if (!ci || !finite(ci.estimate)) return null;
  return { value: 100 * ci.estimate, lower: 100 * ci.lower, upper: 100 * ci.upper };
}

const METRICS: Record<PlotMetric, MetricSpec> = {
  jaccard: {
    slug: 'jaccard',
    name: 'average Jaccard',
    yLabel: 'average Jaccard (%)',
    decimals: 1,
    value: (r) => scorePercent(r, 'jaccardStudy'),
  },
  exactMatch: {
    slug: 'exact-match',
    name: 'accuracy (exact match)',
    yLabel: 'exact match (%)',
    decimals: 1,
    value: (r) => scorePercent(r, 'exactMatch'),
  },
  throughput: {
    slug: 'throughput',
    name: 'throughput',
    yLabel: 'generated tokens / s',
    value: (r) => (r.throughput && finite(r.throughput.tokensPerSec) ? { value: r.throughput.tokensPerSec } : null),
  },
};

/** One figure, ready to store under `plots/<file>`. */
export interface PlotFile {
  /** File name within the report's `plots/` folder. */
  file: string;
  title: string;
  /** The model a per-model figure shows; null for the all-models comparison. */
  model: string | null;
  metric: PlotMetric;
  svg: string;
}

/** Model names are already `[a-z0-9._-]` by the config schema; this keeps a file name safe regardless. */
const fileSafe = (name: string): string =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[.-]+/, '') || 'model';

/** Per model, runs keyed by method label; a repeated label gets a ` #2` suffix so no run is hidden. */
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

function barOf(spec: MetricSpec, r: RunResult | undefined): BarValue | null {
  if (!r) return null;
  const v = spec.value(r);
  const n = r.metrics?.overall.n;
  const note = [r.status !== 'completed' ? r.status : '', n !== undefined && spec.slug !== 'throughput' ? `n=${n}` : '']
    .filter(Boolean)
    .join(', ');
  return v ? { ...v, ...(note ? { note } : {}) } : note ? { value: Number.NaN, note } : null;
}

/**
 * The study's figures: for each model, one chart per metric with a bar per method; and, when the
 * grid has more than one model, one chart per metric with methods along x and a bar per model.
 * File names: `model-<model>.<metric>.svg` and `compare.<metric>.svg` (a model name cannot make
 * the second form, so the two never collide).
 */
export function studyPlots(results: readonly RunResult[]): PlotFile[] {
  const models = byModel(results);
  const order: PlotMetric[] = ['jaccard', 'exactMatch', 'throughput'];
  const files: PlotFile[] = [];
  const used = new Set<string>();
  for (const [model, runs] of models) {
    let base = `model-${fileSafe(model)}`;
    for (let k = 2; used.has(base); k++) base = `model-${fileSafe(model)}-${k}`;
    used.add(base);
    for (const metric of order) {
      const spec = METRICS[metric];
      const title = `${model}: ${spec.name} by method`;
      const labels = [...runs.keys()];
      const svg = renderBarChart({
        title,
        xLabel: 'method',
        yLabel: spec.yLabel,
        decimals: spec.decimals,
        categories: labels,
        series: [{ name: model, values: labels.map((l) => barOf(spec, runs.get(l))) }],
      });
      files.push({ file: `${base}.${spec.slug}.svg`, title, model, metric, svg });
    }
  }
  if (models.size > 1) {
    const labels = [...new Set([...models.values()].flatMap((runs) => [...runs.keys()]))];
    for (const metric of order) {
      const spec = METRICS[metric];
      const title = `All models: ${spec.name} by method`;
      const series = [...models].map(([model, runs]) => ({
        name: model,
        values: labels.map((l) => barOf(spec, runs.get(l))),
      }));
      const svg = renderBarChart({
        title,
        xLabel: 'method',
        yLabel: spec.yLabel,
        decimals: spec.decimals,
        categories: labels,
        series,
      });
      files.push({ file: `compare.${spec.slug}.svg`, title, model: null, metric, svg });
    }
  }
  return files;
}
