/**
 * `peftgrid grid list`: recent grids with their names, start and close times, status and run
 * counts, newest first. Names and run totals come from each grid's start input (no worker needed);
 * counts of a closed grid from its result, of a running one from its `progress` query (a worker
 * answers it; when none does within a few seconds the counts say `?`).
 */
import type { Client } from '@temporalio/client';
import type { GridProgress, GridResult, RunPhase } from '../contracts';
import { gridInput } from './grid-info';

export interface GridListRow {
  gridId: string;
  name: string;
  status: string;
  started: string;
  closed?: string;
  runs: number;
  /** Runs by phase (pending, training …, completed, failed, cancelled); absent when unknown. */
  byPhase?: Partial<Record<RunPhase, number>>;
}

export async function listGrids(client: Client, limit: number): Promise<GridListRow[]> {
  const rows: GridListRow[] = [];
  for await (const wf of client.workflow.list({ query: `WorkflowType = 'experimentGridWorkflow'` })) {
    const row: GridListRow = {
      gridId: wf.workflowId,
      name: wf.workflowId,
      status: wf.status.name,
      started: wf.startTime.toISOString(),
      ...(wf.closeTime ? { closed: wf.closeTime.toISOString() } : {}),
      runs: 0,
    };
    try {
      const input = await gridInput(client, wf.workflowId);
      row.name = input.grid.name;
      row.runs = input.runs.length;
      const phases = await runPhases(client, wf.workflowId, wf.status.name);
      if (phases) row.byPhase = count(phases);
    } catch {
      // Not a peftgrid grid input (or history gone): the id stands in for the name.
    }
    rows.push(row);
    if (rows.length >= limit) break;
  }
  return rows;
}

async function runPhases(client: Client, gridId: string, status: string): Promise<RunPhase[] | undefined> {
  const handle = client.workflow.getHandle(gridId);
  try {
    if (status === 'COMPLETED') return ((await handle.result()) as GridResult).runs.map((r) => r.status);
    if (status !== 'RUNNING') return undefined;
    const p = await client.withDeadline(Date.now() + 3000, () => handle.query<GridProgress>('progress'));
    return p.runs.map((r) => r.phase);
  } catch {
    return undefined;
  }
}

function count(phases: RunPhase[]): Partial<Record<RunPhase, number>> {
  const out: Partial<Record<RunPhase, number>> = {};
  for (const p of phases) out[p] = (out[p] ?? 0) + 1;
  return out;
}

/** `3/8 completed, 1 failed, 2 running` (running = every phase between pending and the ends). */
export function runsText(row: GridListRow): string {
  const b = row.byPhase;
  if (!b) return `${row.runs} run${row.runs === 1 ? '' : 's'}`;
  const done = b.completed ?? 0;
  const live = (b.tokenizing ?? 0) + (b.training ?? 0) + (b.exporting ?? 0) + (b.evaluating ?? 0);
  const parts = [`${done}/${row.runs} completed`];
  if (b.failed) parts.push(`${b.failed} failed`);
  if (b.cancelled) parts.push(`${b.cancelled} cancelled`);
  if (live) parts.push(`${live} running`);
  if (b.pending) parts.push(`${b.pending} pending`);
  return parts.join(', ');
}

const when = (iso: string) => iso.slice(0, 19).replace('T', ' ');

/** The text table: one grid per line, newest first. */
export function gridListText(rows: GridListRow[]): string {
  if (rows.length === 0) return 'no grids yet (start one with `peftgrid grid start <grid.yaml>`)\n';
  const table = [
    ['STARTED (UTC)', 'CLOSED (UTC)', 'STATUS', 'NAME', 'RUNS', 'GRID ID'],
    ...rows.map((r) => [when(r.started), r.closed ? when(r.closed) : '-', r.status, r.name, runsText(r), r.gridId]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  return (
    table.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') +
    '\n'
  );
}
