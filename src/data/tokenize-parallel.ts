// Training tokenization on worker threads, one per core. Output equals the sequential loop's
// (formatExample → tokenizeForTraining, AnswerTooLongError skipped) example for example, in record
// order, so a shard written from it is byte-identical; only the wall time changes.
//
// Workers live in a pool that outlasts one call: a fresh V8 isolate runs the tokenizer at about
// half speed until its JIT and BPE cache warm up (measured: 4.8 s vs 3.4 s for 4,400 records), so
// a long-lived Temporal worker process should not pay that on every activity. Idle workers are
// unref'd (they never keep the process alive) and exit after `idleMs`.
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ModelFamily } from './formats';
import { AnswerTooLongError, DoubleBosError, type TrainingExample } from './tokenize';
import { TokenizerConfigError } from './tokenizer';
import type { QaRecord } from './unifiedqa';
import type { ChunkReply, ChunkRequest, ChunkResult } from './tokenize-worker';

export interface ParallelTokenizeOptions {
  /** HF model directory with tokenizer.json; each worker loads it once and keeps it. */
  modelPath: string;
  family: ModelFamily;
  maxLength: number;
  /**
   * Worker threads. One per core: each runs the single-threaded tokenizer flat out.
   * @default os.availableParallelism()
   */
  threads?: number;
  /**
   * Records per message: large enough that messaging is noise, small enough to balance the load.
   * @default 256
   */
  chunkSize?: number;
  /** Called after each chunk with the number of records done (e.g. to heartbeat). */
  onProgress?: (done: number) => void;
  /** Aborting rejects with the signal's reason; chunks not yet started are dropped. */
  signal?: AbortSignal;
  /**
   * How long pooled workers wait for the next call before exiting.
   * @default 60_000
   */
  idleMs?: number;
}

export interface ParallelExample extends Omit<TrainingExample, 'ids'> {
  ids: Int32Array;
}

export interface ParallelTokenizeResult {
  /** Kept examples in record order; `ids` are Int32Arrays (pgtok's `ids: ArrayLike<number>` takes them). */
  examples: ParallelExample[];
  /** Records skipped because even a minimal prompt could not fit the answer in maxLength. */
  skipped: number;
}

// Workers start as plain JS that registers tsx (as bin/peftgrid.js does), so this works whether
// the process was started with `--import tsx`, `require('tsx/cjs')`, or from compiled output.
const WORKER_FILE = join(__dirname, `tokenize-worker${__filename.endsWith('.ts') ? '.ts' : '.js'}`);
const BOOT = `require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(WORKER_FILE)});`;
/** Chunks in flight per worker: it never waits for the main thread between two chunks. */
const IN_FLIGHT = 2;

function rebuild(error: { name: string; message: string }): Error {
  const known: Record<string, new (message: string) => Error> = {
    AnswerTooLongError,
    DoubleBosError,
    TokenizerConfigError,
  };
  return new (known[error.name] ?? Error)(error.message);
}

interface Job {
  replies: ChunkResult[];
  remaining: number;
  done: number;
  settled: boolean;
  resolve: () => void;
  reject: (err: Error) => void;
  onProgress?: (done: number) => void;
}

interface Slot {
  worker: Worker;
  inFlight: Set<string>;
}

class Pool {
  private readonly slots: Slot[] = [];
  private readonly queue: ChunkRequest[] = [];
  private readonly jobs = new Map<number, Job>();
  private nextJob = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly size: number,
    private readonly onEmpty: () => void,
    public idleMs: number,
  ) {}

  run(tasks: Omit<ChunkRequest, 'job'>[], job: Omit<Job, 'replies' | 'remaining' | 'done' | 'settled'>): number {
    const id = this.nextJob++;
    this.jobs.set(id, {
      ...job,
      replies: new Array<ChunkResult>(tasks.length),
      remaining: tasks.length,
      done: 0,
      settled: false,
    });
    for (const t of tasks) this.queue.push({ ...t, job: id });
    while (this.slots.length < this.size) this.spawn();
    clearTimeout(this.idleTimer);
    this.pump();
    return id;
  }

  replies(id: number): ChunkResult[] {
    return this.jobs.get(id)?.replies ?? [];
  }

  finish(id: number): void {
    this.jobs.delete(id);
  }

  fail(id: number, err: Error): void {
    const job = this.jobs.get(id);
    if (!job || job.settled) return;
    job.settled = true;
    job.reject(err);
    this.jobs.delete(id);
  }

  private spawn(): void {
    const slot: Slot = { worker: new Worker(BOOT, { eval: true }), inFlight: new Set() };
    slot.worker.unref();
    slot.worker.on('message', (msg: ChunkReply) => this.onReply(slot, msg));
    slot.worker.on('error', (err) => this.onCrash(slot, err));
    slot.worker.on('exit', (code) => this.onCrash(slot, new Error(`tokenize worker exited with code ${code}`)));
    this.slots.push(slot);
  }

  private pump(): void {
    for (const slot of this.slots) {
      while (slot.inFlight.size < IN_FLIGHT && this.queue.length > 0) {
        const task = this.queue.shift()!;
        if (!this.jobs.has(task.job)) continue; // its job failed or was aborted
        slot.inFlight.add(`${task.job}:${task.chunk}`);
        slot.worker.postMessage(task);
      }
      // Only a worker with work keeps the process alive.
      if (slot.inFlight.size > 0) slot.worker.ref();
      else slot.worker.unref();
    }
    if (this.queue.length === 0 && this.slots.every((s) => s.inFlight.size === 0)) {
      clearTimeout(this.idleTimer);
      this.idleTimer = setTimeout(() => this.close(), this.idleMs);
      this.idleTimer.unref();
    }
  }

  private onReply(slot: Slot, msg: ChunkReply): void {
    slot.inFlight.delete(`${msg.job}:${msg.chunk}`);
    const job = this.jobs.get(msg.job);
    if (job && !job.settled) {
      if ('error' in msg) this.fail(msg.job, rebuild(msg.error));
      else {
        job.replies[msg.chunk] = msg;
        job.done += msg.lengths.length;
        job.onProgress?.(job.done);
        if (--job.remaining === 0) {
          job.settled = true;
          job.resolve();
        }
      }
    }
    this.pump();
  }

  private onCrash(slot: Slot, err: Error): void {
    const at = this.slots.indexOf(slot);
    if (at === -1) return;
    this.slots.splice(at, 1);
    for (const key of slot.inFlight) this.fail(Number(key.split(':')[0]), err);
    if (this.slots.length === 0 && this.jobs.size === 0) this.close();
    else {
      if (this.jobs.size > 0) this.spawn();
      this.pump();
    }
  }

  close(): void {
    clearTimeout(this.idleTimer);
    const slots = this.slots.splice(0);
    for (const s of slots) {
      s.worker.removeAllListeners('exit');
      void s.worker.terminate();
    }
    this.onEmpty();
  }
}

const pools = new Map<number, Pool>();

function pool(threads: number, idleMs: number): Pool {
  let p = pools.get(threads);
  if (!p) {
    p = new Pool(threads, () => pools.delete(threads), idleMs);
    pools.set(threads, p);
  }
  p.idleMs = idleMs;
  return p;
}

/** Stops every pooled worker now (tests, shutdown); the next call starts fresh ones. */
export function closeTokenizePools(): void {
  for (const p of [...pools.values()]) p.close();
}

/** Formats and tokenizes `records` for training on `threads` workers; see ParallelTokenizeResult. */
export async function tokenizeTrainingParallel(
  records: readonly QaRecord[],
  options: ParallelTokenizeOptions,
): Promise<ParallelTokenizeResult> {
  const threads = options.threads ?? availableParallelism();
  const chunkSize = options.chunkSize ?? 256;
  if (!Number.isInteger(threads) || threads < 1)
    throw new TypeError(`threads must be a positive integer, got ${threads}`);
  if (!Number.isInteger(chunkSize) || chunkSize < 1)
    throw new TypeError(`chunkSize must be a positive integer, got ${chunkSize}`);
  options.signal?.throwIfAborted();
  const chunks = Math.ceil(records.length / chunkSize);
  if (chunks === 0) return { examples: [], skipped: 0 };

  const p = pool(threads, options.idleMs ?? 60_000);
  const tasks = Array.from({ length: chunks }, (_, chunk) => ({
    chunk,
    modelPath: options.modelPath,
    family: options.family,
    maxLength: options.maxLength,
    records: records.slice(chunk * chunkSize, (chunk + 1) * chunkSize),
  }));
  let id = -1;
  const finished = new Promise<void>((resolve, reject) => {
    id = p.run(tasks, { resolve, reject, ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
  });
  const onAbort = () =>
    p.fail(id, options.signal?.reason instanceof Error ? options.signal.reason : new Error('aborted'));
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await finished;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
  const replies = p.replies(id);
  p.finish(id);

  const examples: ParallelExample[] = [];
  let skipped = 0;
  for (const r of replies) {
    let at = 0;
    for (let i = 0; i < r.lengths.length; i++) {
      const n = r.lengths[i]!;
      if (n < 0) {
        skipped++;
        continue;
      }
      examples.push({ ids: r.ids.subarray(at, at + n), promptLength: r.promptLengths[i]! });
      at += n;
    }
  }
  return { examples, skipped };
}
