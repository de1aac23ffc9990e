/**
 * The grid report: per model, a table of method × accuracy, Jaccard, throughput, training
 * perplexity and loss (the study's tables), rendered as markdown and CSV from run results.
 */
import type { ConfidenceInterval } from '../metrics/bootstrap';
import type { RunResult } from '../../workflows/types';

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
  jaccardSet: number | null;
  tokenF1: number | null;
  tokensPerSec: number | null;
  hitLimitFraction: number | null;
  trainLoss: number | null;
  trainPerplexity: number | null;
  error: string | null;
}

function metric(r: RunResult, name: string): ConfidenceInterval | undefined {
  return r.metrics?.overall.metrics[name];
}

export function toRows(results: RunResult[]): ResultRow[] {
  return results.map((r) => {
    const em = metric(r, 'exactMatch');
    return {
      model: r.model, method: r.method, label: r.label, runKey: r.runKey, status: r.status,
      n: r.metrics?.overall.n ?? null,
      exactMatch: em?.estimate ?? null,
      exactMatchLow: em?.lower ?? null,
      exactMatchHigh: em?.upper ?? null,
      jaccard: metric(r, 'jaccardStudy')?.estimate ?? null,
      jaccardSet: metric(r, 'jaccardSet')?.estimate ?? null,
      tokenF1: metric(r, 'tokenF1')?.estimate ?? null,
      tokensPerSec: r.throughput?.tokensPerSec ?? null,
      hitLimitFraction: r.throughput?.hitLimitFraction ?? null,
      trainLoss: r.training?.trainLoss ?? null,
      trainPerplexity: r.training?.trainPerplexity ?? null,
      error: r.error ?? null,
    };
  });
}

const pct = (v: number | null) => (v === null ? '–' : (100 * v).toFixed(1));
const num = (v: number | null, d = 2) => (v === null || !Number.isFinite(v) ? '–' : v.toFixed(d));

export function renderMarkdown(gridName: string, rows: ResultRow[]): string {
  const lines = [`# ${gridName}`, ''];
  for (const model of [...new Set(rows.map((r) => r.model))]) {
    lines.push(`## ${model}`, '');
    lines.push('| method | status | n | exact match % (95% CI) | Jaccard % | Jaccard (set) % | token F1 % | tokens/s | hit limit % | train loss | train ppl |');
    lines.push('| --- | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |');
    for (const r of rows.filter((x) => x.model === model)) {
      const ci = r.exactMatchLow !== null && r.exactMatchHigh !== null ? ` (${pct(r.exactMatchLow)}–${pct(r.exactMatchHigh)})` : '';
      lines.push(`| ${r.label} | ${r.status} | ${r.n ?? '–'} | ${pct(r.exactMatch)}${ci} | ${pct(r.jaccard)} | ${pct(r.jaccardSet)} | ${pct(r.tokenF1)} | ${num(r.tokensPerSec, 1)} | ${pct(r.hitLimitFraction)} | ${num(r.trainLoss, 3)} | ${num(r.trainPerplexity)} |`);
    }
    lines.push('');
  }
  const failed = rows.filter((r) => r.error);
  if (failed.length) {
    lines.push('## Runs that did not complete', '');
    for (const r of failed) lines.push(`- \`${r.runKey}\` (${r.status}): ${r.error}`);
    lines.push('');
  }
  lines.push('Jaccard = common tokens / tokens of the longer string (the study\'s definition); Jaccard (set) = |A∩B|/|A∪B|.');
  lines.push('tokens/s counts generated tokens up to each sequence\'s EOS; "hit limit" is the share of outputs cut at maxNewTokens.');
  return lines.join('\n') + '\n';
}

function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function renderCsv(rows: ResultRow[]): string {
  if (rows.length === 0) return '';
  const cols = Object.keys(rows[0]!) as (keyof ResultRow)[];
  return [cols.join(','), ...rows.map((r) => cols.map((c) => csvCell(r[c])).join(','))].join('\n') + '\n';
}
