/**
 * Progress for a pipe, a log file or CI (stdout/stderr not a TTY): one line per change, instead of
 * the terminal's redrawn table. A change is the grid's phase, or a run's phase, queueing, attempt,
 * transfer, or its training crossing a tenth of its steps; a loss or ETA that moves every poll is
 * not one (it would print every run every two seconds, which is the table again).
 */
import type { GridProgress } from '../contracts';
import { renderLine, type RunLine } from './watch';

/** What must differ between two polls for a run's line to be printed again. */
export function changeKey(l: RunLine): string {
  const tenth = l.step !== undefined && l.maxSteps ? Math.floor((10 * l.step) / l.maxSteps) : '';
  const transfer = l.transfer
    ? `${l.transfer.phase}:${l.transfer.totalBytes ? Math.floor((10 * l.transfer.bytes) / l.transfer.totalBytes) : ''}`
    : '';
  return [l.phase, l.queued ? 'q' : '', l.attempt ?? '', tenth, transfer].join('|');
}

/** renderLine without the bar (the bar is for a redrawn terminal), with the whole name and no column padding. */
export function plainLine(l: RunLine): string {
  return renderLine(l, 0)
    .replace(/[█░]+ /g, '')
    .replace(/ {2,}/g, ' ');
}

export interface ProgressChange {
  /** ISO time of the poll that saw the change. */
  time: string;
  gridId: string;
  /** Present for a grid-phase change. */
  gridPhase?: GridProgress['phase'];
  /** Present for a run's change: its line. */
  run?: RunLine;
}

/** Remembers what was printed for one followed grid; `next()` returns only what changed since. */
export class ChangeTracker {
  private gridPhase: string | undefined;
  private readonly runs = new Map<string, string>();

  constructor(private readonly gridId: string) {}

  next(phase: GridProgress['phase'], lines: RunLine[], now = new Date()): ProgressChange[] {
    const time = now.toISOString();
    const out: ProgressChange[] = [];
    if (phase !== this.gridPhase) {
      this.gridPhase = phase;
      out.push({ time, gridId: this.gridId, gridPhase: phase });
    }
    for (const l of lines) {
      const key = changeKey(l);
      if (this.runs.get(l.runKey) === key) continue;
      this.runs.set(l.runKey, key);
      out.push({ time, gridId: this.gridId, run: l });
    }
    return out;
  }
}

/** `06:01:02 grid <id>: running` or `06:01:02 <model · label> training 3/6 loss 1.234`. */
export function changeText(c: ProgressChange): string {
  const hms = c.time.slice(11, 19);
  return c.run ? `${hms} ${plainLine(c.run)}` : `${hms} grid ${c.gridId}: ${c.gridPhase}`;
}
