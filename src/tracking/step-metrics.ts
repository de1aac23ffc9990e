/**
 * Per-step training metrics to the tracker, off the training path: `observe` only buffers, and a
 * timer sends what is buffered as one log-batch every `flushMs`. A slow or dead tracker therefore
 * never delays a trainer event or a heartbeat; what it could not take is kept (up to a bound) and
 * sent when it answers again, and whatever is still unsent at `close` is the gap, logged once as
 * a warning naming the uri and the steps skipped.
 *
 * On a resumed attempt the trainer re-runs the steps after its checkpoint; those the tracker
 * already holds (up to the run's latest `loss` step) are not logged twice, so the MLflow curve has
 * one point per step and continues where the killed attempt's left off.
 */
import type { Logger } from 'pino';
import type { TrackingTarget } from '../contracts/tracking';
import { MlflowClient, TrackerError, type MlflowClientOptions, type MlflowMetric, type OpenedRun } from './mlflow';

export interface StepMetricsOptions extends MlflowClientOptions {
  /** How often buffered metrics are sent (ms). @default 2000 */
  flushMs?: number;
  /** Most metric points kept while the tracker is down; older ones are dropped (and reported). @default 200000 */
  maxBuffered?: number;
}

/** The fields of a trainer `step` event that become metrics (null: not measured at that step). */
export interface StepMetricsEvent {
  step: number;
  loss: number | null;
  lr: number | null;
  tokensPerSec: number | null;
  gradNorm?: number | null;
}

export class StepMetricsLogger {
  private readonly client: MlflowClient;
  private readonly flushMs: number;
  private readonly maxBuffered: number;
  private run: OpenedRun | null = null;
  private opening: Promise<void> | null = null;
  private buffer: MlflowMetric[] = [];
  private flushing: Promise<void> | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private dropped: { from: number; to: number } | null = null;
  private warned = false;
  private lastError = '';

  constructor(
    private readonly target: TrackingTarget,
    private readonly log: Logger,
    options: StepMetricsOptions = {},
  ) {
    this.client = new MlflowClient(target.uri, options);
    this.flushMs = options.flushMs ?? 2000;
    this.maxBuffered = options.maxBuffered ?? 200_000;
  }

  /** Starts opening the MLflow run and the flush timer; returns at once. */
  start(): void {
    void this.ensureOpen();
    this.timer = setInterval(() => void this.flush(), this.flushMs);
    // A pending flush must never keep a finished worker process alive.
    this.timer.unref();
  }

  /** Buffers one step's metrics (never waits on the network). */
  observe(ev: StepMetricsEvent): void {
    const timestamp = Date.now();
    const add = (key: string, value: number | null | undefined) => {
      // JSON has no NaN/Infinity, and MLflow would refuse them anyway.
      if (value !== null && value !== undefined && Number.isFinite(value))
        this.buffer.push({ key, value, timestamp, step: ev.step });
    };
    add('loss', ev.loss);
    add('lr', ev.lr);
    add('tokens_per_sec', ev.tokensPerSec);
    add('grad_norm', ev.gradNorm);
    if (this.buffer.length > this.maxBuffered) {
      const cut = this.buffer.splice(0, this.buffer.length - this.maxBuffered);
      this.noteDropped(cut);
    }
  }

  /** The MLflow run id once the run is open (null while the tracker has not answered). */
  get runId(): string | null {
    return this.run?.runId ?? null;
  }

  /**
   * Stops the timer and sends what is left, waiting at most `timeoutMs`; what could not be sent is
   * logged as the gap. Never throws.
   */
  async close(timeoutMs = 10_000): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const deadline = new Promise<void>((r) => setTimeout(r, timeoutMs).unref());
    await Promise.race([
      (async () => {
        await this.flushing;
        await this.flush();
      })(),
      deadline,
    ]);
    const unsent = this.buffer.filter((m) => m.step > (this.run?.lastLossStep ?? -1));
    if (unsent.length > 0) this.noteDropped(unsent);
    this.buffer = [];
    if (this.dropped) {
      this.log.warn(
        {
          trackingUri: this.target.uri,
          mlflowKey: this.target.key,
          skipped: 'step metrics',
          fromStep: this.dropped.from,
          toStep: this.dropped.to,
          error: this.lastError,
        },
        `MLflow tracker ${this.target.uri} did not take step metrics ${this.dropped.from}-${this.dropped.to}; training went on without them`,
      );
    }
  }

  private noteDropped(metrics: MlflowMetric[]): void {
    for (const m of metrics) {
      this.dropped = this.dropped
        ? { from: Math.min(this.dropped.from, m.step), to: Math.max(this.dropped.to, m.step) }
        : { from: m.step, to: m.step };
    }
  }

  private ensureOpen(): Promise<void> {
    if (this.run) return Promise.resolve();
    this.opening ??= this.client
      .openRun(this.target)
      .then(async (run) => {
        // A run re-started after it failed or was cancelled (trackRunEnded closed its MLflow run)
        // trains again into the same MLflow run: show it RUNNING until trackRunResult closes it.
        // Best effort: a refused status change must not hold back the step metrics.
        if (run.status === 'FAILED' || run.status === 'KILLED') {
          await this.client.setStatus(run.runId, 'RUNNING').then(
            () => this.log.info({ mlflowRunId: run.runId, was: run.status }, 'reopened the MLflow run (RUNNING again)'),
            (err: unknown) => this.onError(err, 'reopening the MLflow run'),
          );
        }
        this.run = run;
        if (run.lastLossStep >= 0) {
          this.log.info(
            { mlflowRunId: run.runId, lastLoggedStep: run.lastLossStep },
            'continuing the MLflow run of an earlier attempt',
          );
        }
      })
      .catch((err: unknown) => this.onError(err, 'opening the MLflow run'))
      .finally(() => {
        this.opening = null;
      });
    return this.opening;
  }

  private flush(): Promise<void> {
    this.flushing ??= (async () => {
      await this.ensureOpen();
      const run = this.run;
      if (!run || this.buffer.length === 0) return;
      // Taken out while in flight: steps observed meanwhile go to the next batch.
      const taken = this.buffer;
      this.buffer = [];
      // Steps a killed attempt already logged: the resumed trainer repeats them from its checkpoint.
      const batch = taken.filter((m) => m.step > run.lastLossStep);
      try {
        await this.client.logBatch(run.runId, { metrics: batch });
      } catch (err) {
        this.buffer = taken.concat(this.buffer);
        this.onError(err, 'logging step metrics');
      }
    })().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private onError(err: unknown, what: string): void {
    this.lastError = (err as Error).message;
    if (!(err instanceof TrackerError)) this.lastError = `unexpected: ${this.lastError}`;
    // One warning per attempt; the gap itself is reported at close.
    if (this.warned) return;
    this.warned = true;
    this.log.warn(
      { trackingUri: this.target.uri, error: this.lastError },
      `MLflow tracker ${this.target.uri} failed while ${what}; training goes on, metrics are kept and retried`,
    );
  }
}
