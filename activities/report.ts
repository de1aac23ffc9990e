/** writeReport: the grid's tables in the store under `grids/<gridId>/` (markdown, CSV, JSON). */
import { joinKey, openStore } from '../src/store';
import { renderCsv, renderMarkdown, toRows } from '../src/report/render';
import type { RunResult } from '../workflows/types';

export interface WriteReportInput {
  storeUrl: string;
  gridId: string;
  gridName: string;
  results: RunResult[];
}

export interface WriteReportResult {
  reportPrefix: string;
  markdown: string;
}

export async function writeReport(input: WriteReportInput): Promise<WriteReportResult> {
  const store = openStore(input.storeUrl);
  const reportPrefix = joinKey('grids', input.gridId);
  const rows = toRows(input.results);
  const markdown = renderMarkdown(input.gridName, rows);
  await store.put(joinKey(reportPrefix, 'results.json'), JSON.stringify({ grid: input.gridName, gridId: input.gridId, runs: input.results }, null, 1));
  await store.put(joinKey(reportPrefix, 'results.csv'), renderCsv(rows));
  await store.put(joinKey(reportPrefix, 'report.md'), markdown);
  return { reportPrefix, markdown };
}
