/**
 * Byte progress of store transfers. A multi-GB model, checkpoint or ONNX export takes minutes to
 * move; the activity moving it must heartbeat all along (a heartbeat timeout is 1–2 min), and a
 * user watching the Temporal UI wants to see bytes, not silence. Every transfer method of the store
 * takes a {@link TransferOptions}; its callback sees bytes as they move, throttled.
 */

/** One progress report of a transfer (a file, or a whole directory). */
export interface TransferProgress {
  /** Bytes moved so far: never decreases, and ends equal to `totalBytes` on success. */
  bytes: number;
  /** Bytes the transfer moves in all. */
  totalBytes: number;
  /**
   * Bytes checksummed so far where the transfer hashes a local file besides moving it (before an
   * S3 upload, to verify a download): hashing 14 GB takes tens of seconds, and must not look like
   * a stall. Absent where nothing is hashed separately. Never decreases.
   */
  hashedBytes?: number;
}

export type OnTransferProgress = (p: TransferProgress) => void;

export interface TransferOptions {
  /** Called as bytes move (at the start, at most every `progressEveryMs`/`progressEveryBytes`, and at the end). */
  onProgress?: OnTransferProgress;
  /** Minimum ms between two reports (a report is also due after `progressEveryBytes`). @default 250 */
  progressEveryMs?: number;
  /** Bytes after which a report is due even within `progressEveryMs`. @default 8 MiB */
  progressEveryBytes?: number;
}

const DEFAULT_EVERY_MS = 250;
const DEFAULT_EVERY_BYTES = 8 * 1024 * 1024;

/**
 * Counts one transfer's bytes and reports them through `opts.onProgress`, throttled: a report goes
 * out when `progressEveryMs` have passed or `progressEveryBytes` have moved since the last one, plus
 * the first (0 bytes, as soon as the total is known) and the last (`done()`).
 */
export class ProgressCounter {
  private bytes = 0;
  private hashed = 0;
  /** Whether anything was hashed: only then do reports carry `hashedBytes`. */
  private hashing = false;
  private lastAt = 0;
  /** -1: nothing reported yet, so the first report is always news. */
  private lastBytes = -1;
  private lastHashed = 0;
  private readonly everyMs: number;
  private readonly everyBytes: number;

  constructor(
    private readonly totalBytes: number,
    private readonly opts: TransferOptions = {},
  ) {
    this.everyMs = opts.progressEveryMs ?? DEFAULT_EVERY_MS;
    this.everyBytes = opts.progressEveryBytes ?? DEFAULT_EVERY_BYTES;
    this.report('force');
  }

  /** `n` more bytes moved. */
  add(n: number): void {
    this.bytes += n;
    this.report('due');
  }

  /** `n` more bytes hashed. */
  addHashed(n: number): void {
    this.hashing = true;
    this.hashed += n;
    this.report('due');
  }

  /**
   * Reports the same bytes again once `progressEveryMs` have passed: for server-side work between
   * bytes that takes long (S3 assembling thousands of parts can take minutes).
   */
  tick(): void {
    this.report('tick');
  }

  /** The transfer completed: report exactly the total (bytes moved may include nothing, e.g. a cached file). */
  done(): void {
    this.bytes = this.totalBytes;
    this.report('force');
  }

  /** force: now, unless nothing changed; due: if the interval passed or the byte step moved; tick: if the interval passed. */
  private report(why: 'force' | 'due' | 'tick'): void {
    const cb = this.opts.onProgress;
    if (!cb) return;
    const now = Date.now();
    const moved = this.bytes - this.lastBytes + this.hashed - this.lastHashed;
    const intervalPassed = now - this.lastAt >= this.everyMs;
    if (why === 'force' && moved === 0) return;
    if (why === 'due' && (moved === 0 || (!intervalPassed && moved < this.everyBytes))) return;
    if (why === 'tick' && !intervalPassed) return;
    this.lastAt = now;
    this.lastBytes = this.bytes;
    this.lastHashed = this.hashed;
    // Bytes can overshoot the total only if a file grew under us; the report stays within it.
    const bytes = Math.min(this.bytes, this.totalBytes);
    cb({ bytes, totalBytes: this.totalBytes, ...(this.hashing ? { hashedBytes: this.hashed } : {}) });
  }
}

/**
 * Sums the progress of many files moved in parallel (a directory) into one report. Each file's
 * own (throttled) reports are folded in by the bytes they add; the sum is reported throttled again.
 */
export class ProgressAggregate {
  private readonly counter: ProgressCounter;
  constructor(
    totalBytes: number,
    private readonly opts: TransferOptions = {},
  ) {
    this.counter = new ProgressCounter(totalBytes, opts);
  }

  /** Options for one file's transfer, feeding this aggregate (none when nobody listens). */
  file(): TransferOptions {
    if (!this.opts.onProgress) return {};
    let bytes = 0;
    let hashed = 0;
    return {
      // Per-file reports are folded in as they come: the aggregate throttles what goes out.
      progressEveryMs: this.opts.progressEveryMs,
      progressEveryBytes: this.opts.progressEveryBytes,
      onProgress: (p) => {
        // A file's repeated report (a tick while the server works) repeats the aggregate's too.
        if (p.bytes <= bytes && (p.hashedBytes ?? 0) <= hashed) this.counter.tick();
        if (p.bytes > bytes) this.counter.add(p.bytes - bytes);
        if ((p.hashedBytes ?? 0) > hashed) this.counter.addHashed((p.hashedBytes ?? 0) - hashed);
        bytes = Math.max(bytes, p.bytes);
        hashed = Math.max(hashed, p.hashedBytes ?? 0);
      },
    };
  }

  /** Bytes of a file that did not need to move (already present and verified). */
  skipped(n: number): void {
    this.counter.add(n);
  }

  /** Bytes hashed outside any one file's transfer (re-verifying a file already present). */
  hashed(n: number): void {
    this.counter.addHashed(n);
  }

  done(): void {
    this.counter.done();
  }
}
