/**
 * Persists one activity attempt's log lines for a run (src/contracts/run-logs.ts): its own pino
 * records (through `teeRunLogger`) and the trainer's stderr, re-uploaded whole every
 * `flushEveryMs` while they change and once at the end, so `peftgrid logs --follow` sees a live
 * run and `peftgrid logs` a finished or failed one. A store that fails here only costs log lines:
 * the failure is logged to the console and the activity goes on.
 */
import type { Logger } from 'pino';
import { runLogger, teeRunLogger } from '../src/common/logger';
import { runLogKey } from '../src/common/run-logs';
import type { RunLogRecord } from '../src/contracts';
import type { ObjectStore } from '../src/store';

/** Past this many lines only a marker is kept per further line dropped (a runaway trainer must not fill the store). */
const MAX_LINES = 20_000;
/** Longer trainer lines are cut: a trainer can print a whole tensor. */
const MAX_LINE_CHARS = 4000;

export interface RunLogBookOptions {
  store: ObjectStore;
  /** The run's training key (train, export) or evaluation key (evaluate): where the log goes. */
  key: string;
  activity: string;
  attempt: number;
  bindings: Record<string, unknown>;
  /** @default 5000 */
  flushEveryMs?: number;
}

export class RunLogBook {
  readonly key: string;
  /** The activity's logger: console as before, plus this book. */
  readonly log: Logger;
  private readonly lines: string[] = [];
  private dropped = 0;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly console: Logger;

  constructor(private readonly opts: RunLogBookOptions) {
    this.key = runLogKey(opts.key, opts.activity, opts.attempt, Date.now());
    this.console = runLogger(opts.bindings);
    this.log = teeRunLogger(opts.bindings, (line) => this.push(line.trimEnd()));
  }

  /** Starts the periodic upload (before it, lines are only collected). */
  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.opts.flushEveryMs ?? 5000);
    this.timer.unref();
  }

  /** One line of the trainer's stderr. */
  trainer(line: string): void {
    const record: RunLogRecord = { time: Date.now(), level: 30, source: 'trainer', msg: line.slice(0, MAX_LINE_CHARS) };
    this.push(JSON.stringify(record));
  }

  /** Uploads what was collected if it changed; never throws. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      const marker = this.dropped
        ? [JSON.stringify({ time: Date.now(), level: 40, msg: `${this.dropped} more log lines dropped` })]
        : [];
      try {
        await this.opts.store.put(this.key, [...this.lines, ...marker].join('\n') + '\n');
      } catch (err) {
        this.dirty = true;
        this.console.warn(
          { key: this.key, err: (err as Error).message },
          'could not upload the run log; retried at the next flush',
        );
      }
    });
    return this.flushing;
  }

  /** Stops the timer and uploads the last lines. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  private push(line: string): void {
    if (!line) return;
    if (this.lines.length >= MAX_LINES) this.dropped += 1;
    else this.lines.push(line);
    this.dirty = true;
  }
}
