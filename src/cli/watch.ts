/**
 * Live progress of a grid: the grid's `progress` query for phases, and each running child's
 * pending activity heartbeat for step / loss / tokens/s, turned into one line per run.
 */
import type { Client } from '@temporalio/client';
import type { ActivityHeartbeatDetails, GridProgress, RunPhase, RunProgress, TrainHeartbeat } from '../contracts';
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
  /** The store transfer its activity is in (heartbeat `{ phase, bytes, totalBytes }`), if any. */
  transfer?: { phase: ActivityHeartbeatDetails['phase']; bytes: number; totalBytes?: number };
}

/** temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED */
const ACTIVITY_SCHEDULED = 1;

const started = new Map<string, { at: number; step: number }>();

/** A run only ever moves forward through these; the three ends share the last rank. */
const RUN_PHASE_RANK: Record<RunPhase, number> = {
  pending: 0,
  tokenizing: 1,
  training: 2,
  exporting: 3,
  evaluating: 4,
  completed: 5,
  failed: 5,
  cancelled: 5,
};
const GRID_PHASE_RANK: Record<GridProgress['phase'], number> = { preparing: 0, running: 1, reporting: 2, completed: 3 };

/**
 * The phases already shown to a user, so a stale answer never moves one back. Answers can be stale
 * for good reasons: a run's own query timed out (its worker busy) and the grid's coarser phase
 * ('tokenizing' for every run in flight) stood in, or the grid continued as new. Shown backwards,
 * evaluating → tokenizing reads as a restart. Keep one per followed grid, across polls.
 */
export class ProgressMemory {
  private readonly runs = new Map<string, RunPhase>();
  private grid: GridProgress['phase'] | undefined;

  /** `phase`, unless an earlier answer for this run was further along: then that one. */
  run(runKey: string, phase: RunPhase): RunPhase {
    const shown = this.runs.get(runKey);
    const next = shown !== undefined && RUN_PHASE_RANK[shown] > (RUN_PHASE_RANK[phase] ?? -1) ? shown : phase;
    this.runs.set(runKey, next);
    return next;
  }

  /** The same for the grid's own phase. */
  gridPhase(phase: GridProgress['phase']): GridProgress['phase'] {
    if (this.grid === undefined || GRID_PHASE_RANK[phase] >= GRID_PHASE_RANK[this.grid]) this.grid = phase;
    return this.grid;
  }
}

async function detail(client: Client, run: RunProgress): Promise<RunLine> {
  if (['pending', 'completed', 'failed', 'cancelled'].includes(run.phase)) return run;
  try {
    const child = client.workflow.getHandle(runWorkflowId(run.runKey));
    // The grid knows a run is in flight; the run itself knows its phase.
    run = { ...run, phase: (await child.query<RunProgress>('progress')).phase };
    const desc = await child.describe();
    const raw = desc.raw.pendingActivities?.[0];
    const payload = raw?.heartbeatDetails?.payloads?.[0]?.data;
    const hb: TrainHeartbeat | Partial<ActivityHeartbeatDetails> = payload
      ? JSON.parse(Buffer.from(payload).toString('utf8'))
      : {};
    // Only the known fields: the heartbeat's `phase` is the activity's (download-model …), not the run's.
    const { step, maxSteps, loss, tokensPerSec } = hb as Partial<TrainHeartbeat>;
    const line: RunLine = {
      ...run,
      ...(step !== undefined ? { step } : {}),
      ...(maxSteps !== undefined ? { maxSteps } : {}),
      ...(loss !== undefined ? { loss } : {}),
      ...(tokensPerSec !== undefined ? { tokensPerSec } : {}),
      ...(hb.phase && typeof hb.bytes === 'number'
        ? {
            transfer: {
              phase: hb.phase,
              bytes: hb.bytes,
              ...(hb.totalBytes !== undefined ? { totalBytes: hb.totalBytes } : {}),
            },
          }
        : {}),
      attempt: raw?.attempt ?? undefined,
      queued: Number(raw?.state) === ACTIVITY_SCHEDULED,
    };
    if (step !== undefined && maxSteps) {
      const s = started.get(run.runKey) ?? { at: Date.now(), step };
      started.set(run.runKey, s);
      const rate = (step - s.step) / ((Date.now() - s.at) / 1000);
      if (rate > 0) line.etaSec = (maxSteps - step) / rate;
    }
    return line;
  } catch {
    return run;
  }
}

/** The grid's progress and one line per run; pass the same `memory` on every poll of one grid. */
export async function gridLines(
  client: Client,
  gridId: string,
  memory = new ProgressMemory(),
): Promise<{ progress: GridProgress; lines: RunLine[] }> {
  const answer = await client.workflow.getHandle(gridId).query<GridProgress>('progress');
  const lines = (await Promise.all(answer.runs.map((r) => detail(client, r)))).map((l) => ({
    ...l,
    phase: memory.run(l.runKey, l.phase),
  }));
  const progress = {
    ...answer,
    phase: memory.gridPhase(answer.phase),
    runs: answer.runs.map((r, i) => ({ ...r, phase: lines[i]!.phase })),
  };
  return { progress, lines };
}

function bar(frac: number, width = 20): string {
  const n = Math.max(0, Math.min(width, Math.round(frac * width)));
  return '█'.repeat(n) + '░'.repeat(width - n);
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const size = (n: number) => (n >= GiB ? `${(n / GiB).toFixed(1)} GiB` : `${(n / MiB).toFixed(0)} MiB`);

/** `downloading model 1.2 GiB / 13.5 GiB (9%)` for a heartbeat's transfer. */
export function transferText(t: NonNullable<RunLine['transfer']>): string {
  const [dir, ...what] = t.phase.split('-');
  const verb = dir === 'download' ? 'downloading' : dir === 'upload' ? 'uploading' : dir;
  const of = t.totalBytes ? ` / ${size(t.totalBytes)} (${Math.floor((100 * t.bytes) / t.totalBytes)}%)` : '';
  return `${[verb, ...what].join(' ')} ${size(t.bytes)}${of}`;
}

/** One run's line; `nameWidth` pads or cuts `model · label` into a column (0: as it is). */
export function renderLine(l: RunLine, nameWidth = 40): string {
  const full = `${l.model} · ${l.label}`;
  const name = nameWidth ? full.padEnd(nameWidth).slice(0, nameWidth) : full;
  const moving = l.transfer ? transferText(l.transfer) : undefined;
  if (l.phase === 'training' && l.step !== undefined && l.maxSteps) {
    const eta = l.etaSec !== undefined ? ` eta ${Math.round(l.etaSec)}s` : '';
    const loss = l.loss !== undefined && Number.isFinite(l.loss) ? ` loss ${l.loss.toFixed(3)}` : '';
    const retry = l.attempt && l.attempt > 1 ? ` (attempt ${l.attempt})` : '';
    const extra = moving ? ` · ${moving}` : '';
    return `${name} training   ${bar(l.step / l.maxSteps)} ${l.step}/${l.maxSteps}${loss}${eta}${retry}${extra}`;
  }
  if (l.queued) return `${name} ${l.phase} (queued: waiting for a free worker slot)`;
  if (moving) return `${name} ${l.phase} (${moving}${l.attempt && l.attempt > 1 ? `, attempt ${l.attempt}` : ''})`;
  if (l.phase === 'training')
    return `${name} training (starting: loading the model${l.attempt && l.attempt > 1 ? `, attempt ${l.attempt}` : ''})`;
  return `${name} ${l.phase}`;
}
