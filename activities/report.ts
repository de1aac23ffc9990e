/**
 * writeReport: the grid's report in the store under `grids/<gridId>/`: `report.md`, `results.csv`,
 * `results-by-dataset.csv`, `results.json`, `significance.json`, and the figures under `plots/`.
 *
 * It reads what the run results point to: each run's `predictions.jsonl` (per-item scores, for the
 * paired tests) and each trained run's `final/training_log.json` (per-step loss and lr, for the
 * curves). A run whose files are gone still gets its table row, just no curve or comparison.
 *
 * Retry-safe: every object is a pure function of the input and those files (the tests are seeded),
 * so a retry rewrites the same bytes. The figures are written before `report.md`, so a report
 * never links a figure that is not there.
 */
import { joinKey, openStore, type ObjectStore } from '../src/store';
import type { TrainingCurve } from '../src/report/charts';
import { studyPlotSpecs } from '../src/report/charts';
import { renderCsv, renderMarkdown, toDatasetRows, toRows } from '../src/report/render';
import { modelComparisons } from '../src/report/significance';
import { renderPlots } from '../src/report/vega-svg';
import type { RunResult, WriteReportInput, WriteReportResult } from '../src/contracts';
import { currentActivityHeartbeat } from './transfer-heartbeat';
// Contracts live in src/contracts; re-exported so callers can keep importing them from here.
export type { WriteReportInput, WriteReportResult } from '../src/contracts';

async function readIfThere(store: ObjectStore, key: string): Promise<string | null> {
  if (!(await store.head(key))) return null;
  return (await store.get(key)).toString('utf8');
}

/** item id → scores of one run, from its predictions.jsonl; null when it is not there. */
async function itemScores(store: ObjectStore, r: RunResult): Promise<Map<string, Record<string, number>> | null> {
  if (r.status !== 'completed' || !r.evalPrefix) return null;
  const text = await readIfThere(store, joinKey(r.evalPrefix, 'predictions.jsonl'));
  if (text === null) return null;
  const items = new Map<string, Record<string, number>>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const p = JSON.parse(line) as { id: string; scores: Record<string, number> };
    items.set(p.id, p.scores);
  }
  return items;
}

/** A trained run's curve from `runs/<trainingKey>/final/training_log.json`; null for untrained runs. */
async function trainingCurve(store: ObjectStore, r: RunResult): Promise<TrainingCurve | null> {
  const key = r.provenance?.trainingKey;
  if (r.status !== 'completed' || !key) return null;
  const text = await readIfThere(store, joinKey('runs', key, 'final', 'training_log.json'));
  if (text === null) return null;
  const log = JSON.parse(text) as { losses?: number[]; lrs?: (number | null)[] };
  return Array.isArray(log.losses) ? { losses: log.losses, ...(Array.isArray(log.lrs) ? { lrs: log.lrs } : {}) } : null;
}

export async function writeReport(input: WriteReportInput): Promise<WriteReportResult> {
  // Reading every run's files and rendering dozens of figures outlasts the heartbeat timeout on a
  // busy worker: a beat per run read and per figure rendered.
  const hb = currentActivityHeartbeat({ phase: 'rendering-report' });
  const store = openStore(input.storeUrl);
  const reportPrefix = joinKey('grids', input.gridId);
  const rows = toRows(input.results);
  const datasets = toDatasetRows(input.results);
  const scores = new Map<string, Map<string, Record<string, number>>>();
  const curves = new Map<string, TrainingCurve>();
  for (const r of input.results) {
    const s = await itemScores(store, r);
    if (s) scores.set(r.runKey, s);
    const c = await trainingCurve(store, r);
    if (c) curves.set(r.runKey, c);
    hb.beat();
  }
  const comparisons = modelComparisons(input.results, scores);
  const plots = await renderPlots(studyPlotSpecs(input.results, curves), hb.beat);
  const plotKeys: string[] = [];
  for (const plot of plots) {
    const key = joinKey(reportPrefix, 'plots', plot.file);
    await store.put(key, plot.svg);
    plotKeys.push(key);
  }
  const markdown = renderMarkdown(input.gridName, rows, { datasets, plots, comparisons });
  await store.put(
    joinKey(reportPrefix, 'results.json'),
    JSON.stringify({ grid: input.gridName, gridId: input.gridId, runs: input.results }, null, 1),
  );
  await store.put(joinKey(reportPrefix, 'significance.json'), JSON.stringify(comparisons, null, 1));
  await store.put(joinKey(reportPrefix, 'results.csv'), renderCsv(rows));
  await store.put(joinKey(reportPrefix, 'results-by-dataset.csv'), renderCsv(datasets));
  await store.put(joinKey(reportPrefix, 'report.md'), markdown);
  return { reportPrefix, markdown, plotKeys };
}
