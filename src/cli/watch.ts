/**
 * Live progress of a grid: the grid's `progress` query for phases, and each running child's
 * pending activity heartbeat for step / loss / tokens/s, turned into one line per run.
 */
import type { Client } from '@temporalio/client';
import type { GridProgress, RunProgress } from '../../workflows/types';
import { runWorkflowId } from '../common/constants';

export interface RunLine extends RunProgress {
  step?: number;
  maxSteps?: number;
  loss?: number;
  tokensPerSec?: number;
  attempt?: number;
  etaSec?: number;
  /** The run's current activity is scheduled but no worker has picked it up (all slots busy). */
  queued?: boolean;
}

/** temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED */
const ACTIVITY_SCHEDULED = 1;

const started = new Map<string, { at: number; step: number }>();

async function detail(client: Client, run: RunProgress): Promise<RunLine> {
  if (['pending', 'completed', 'failed', 'cancelled'].includes(run.phase)) return run;
  try {
    const child = client.workflow.getHandle(runWorkflowId(run.runKey));
    // The grid knows a run is in flight; the run itself knows its phase.
    run = { ...run, phase: (await child.query<RunProgress>('progress')).phase };
    const desc = await child.describe();
    const raw = desc.raw.pendingActivities?.[0];
    const payload = raw?.heartbeatDetails?.payloads?.[0]?.data;
    const hb = payload ? (JSON.parse(Buffer.from(payload).toString('utf8')) as { step?: number; maxSteps?: number; loss?: number; tokensPerSec?: number }) : {};
    const line: RunLine = { ...run, ...hb, attempt: raw?.attempt ?? undefined, queued: Number(raw?.state) === ACTIVITY_SCHEDULED };
    if (hb.step !== undefined && hb.maxSteps) {
      const s = started.get(run.runKey) ?? { at: Date.now(), step: hb.step };
      started.set(run.runKey, s);
      const rate = (hb.step - s.step) / ((Date.now() - s.at) / 1000);
      if (rate > 0) line.etaSec = (hb.maxSteps - hb.step) / rate;
    }
    return line;
  } catch {
    return run;
  }
}

export async function gridLines(client: Client, gridId: string): Promise<{ progress: GridProgress; lines: RunLine[] }> {
  const progress = await client.workflow.getHandle(gridId).query<GridProgress>('progress');
  const lines = await Promise.all(progress.runs.map((r) => detail(client, r)));
  return { progress, lines };
}

function bar(frac: number, width = 20): string {
  const n = Math.max(0, Math.min(width, Math.round(frac * width)));
  return '█'.repeat(n) + '░'.repeat(width - n);
}

export function renderLine(l: RunLine): string {
  const name = `${l.model} · ${l.label}`.padEnd(40).slice(0, 40);
  if (l.phase === 'training' && l.step !== undefined && l.maxSteps) {
    const eta = l.etaSec !== undefined ? ` eta ${Math.round(l.etaSec)}s` : '';
    const loss = l.loss !== undefined && Number.isFinite(l.loss) ? ` loss ${l.loss.toFixed(3)}` : '';
    const retry = l.attempt && l.attempt > 1 ? ` (attempt ${l.attempt})` : '';
    return `${name} training   ${bar(l.step / l.maxSteps)} ${l.step}/${l.maxSteps}${loss}${eta}${retry}`;
  }
  if (l.queued) return `${name} ${l.phase} (queued: waiting for a free worker slot)`;
  if (l.phase === 'training') return `${name} training (starting: loading the model${l.attempt && l.attempt > 1 ? `, attempt ${l.attempt}` : ''})`;
  return `${name} ${l.phase}`;
}
