/**
 * Where a run's files are (docs/contracts.md §3): checkpoints, final adapter and adapter export
 * under `runs/<trainingKey>/`, evaluation and result under `runs/<evalKey>/`. Both are content
 * keys derived at run time, so tests read them from the run rather than from the plan.
 */
import type { Client } from '@temporalio/client';
import { runWorkflowId } from '../../src/common/constants';
import type { RunProgress, RunResult } from '../../src/contracts';

/** The training key of a running (or finished) run, from its progress query: known once its data is tokenized. */
export async function trainingKeyOf(client: Client, runKey: string, timeoutMs = 5 * 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const p = await client.workflow.getHandle(runWorkflowId(runKey)).query<RunProgress>('progress');
      if (p.trainingKey) return p.trainingKey;
    } catch {
      // not started yet, or no worker to answer right now
    }
    if (Date.now() > deadline) throw new Error(`${runKey}: no training key after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The content keys a completed run recorded in its provenance. */
export function keysOf(result: RunResult): { trainingKey: string | null; evalKey: string } {
  const p = result.provenance;
  if (!p?.evalKey || p.trainingKey === undefined)
    throw new Error(`${result.runKey}: no content keys in its provenance (${result.status} ${result.error ?? ''})`);
  return { trainingKey: p.trainingKey, evalKey: p.evalKey };
}
