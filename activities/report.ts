/**
 * writeReport: the grid's report in the store under `grids/<gridId>/`: `report.md`, `results.csv`,
 * `results-by-dataset.csv`, `results.json`, and the figures under `plots/`.
 *
 * Retry-safe: every object is a pure function of the input, so a retry rewrites the same bytes.
 * The figures are written before `report.md`, so a report never links a figure that is not there.
 */
import { joinKey, openStore } from '../src/store';
import { studyPlots } from '../src/report/plots';
import { renderCsv, renderMarkdown, toDatasetRows, toRows } from '../src/report/render';
import type { WriteReportInput, WriteReportResult } from '../src/contracts';
// Contracts live in src/contracts; re-exported so callers can keep importing them from here.
export type { WriteReportInput, WriteReportResult } from '../src/contracts';

export async function writeReport(input: WriteReportInput): Promise<WriteReportResult> {
  const store = openStore(input.storeUrl);
  const reportPrefix = joinKey('grids', input.gridId);
  const rows = toRows(input.results);
  const datasets = toDatasetRows(input.results);
  const plots = studyPlots(input.results);
  const plotKeys: string[] = [];
  for (const plot of plots) {
    const key = joinKey(reportPrefix, 'plots', plot.file);
    await store.put(key, plot.svg);
    plotKeys.push(key);
  }
  const markdown = renderMarkdown(input.gridName, rows, { datasets, plots });
  await store.put(
    joinKey(reportPrefix, 'results.json'),
    JSON.stringify({ grid: input.gridName, gridId: input.gridId, runs: input.results }, null, 1),
  );
  await store.put(joinKey(reportPrefix, 'results.csv'), renderCsv(rows));
  await store.put(joinKey(reportPrefix, 'results-by-dataset.csv'), renderCsv(datasets));
  await store.put(joinKey(reportPrefix, 'report.md'), markdown);
  return { reportPrefix, markdown, plotKeys };
}
