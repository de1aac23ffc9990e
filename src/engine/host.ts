/**
 * The engine process: a child Node process that owns ONNX Runtime sessions and runs whole
 * generation calls (every batch and token of a generate / speculative / score call) on request.
 *
 * Why: onnxruntime-node runs `session.run` synchronously on the calling thread, so on a Temporal
 * worker's main thread one forward pass of a large model stalls heartbeats and every workflow task
 * of that worker for its whole duration (measured: 8–28 s per task during the demo's evaluation).
 * Why a process, not a worker_thread: ORT 1.30's binding aborts the whole process (uncaught
 * Napi::Error → std::terminate) when a worker_thread is terminated, or the process exits, while a
 * run is in progress, so a cancelled evaluation could not be stopped without killing the worker.
 * A child process can be SIGKILLed at any moment, and a native crash or an OOM kill of a big model
 * takes the child, not the Temporal worker.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { engineRunIn, RUN_IN_ENV, type EngineRunIn, type Env } from '../common/env';
import { EngineError } from './errors';
import { fromWireError, type EngineReply, type EngineRequest, type ReadyMessage } from './wire';

/** Where ONNX Runtime runs for models loaded without an explicit host. */
export type { EngineRunIn };

/** Env var that selects {@link EngineRunIn} for the whole worker (benchmarks compare both). */
export { RUN_IN_ENV };

/**
 * `PEFTGRID_ENGINE_RUN_IN`: `process` (default) or `main` (the old path, ORT on the calling
 * thread, kept as the baseline of bench/workflow-task-latency.ts).
 * @throws TypeError naming the variable, its value and what is expected.
 */
export function engineRunInFromEnv(env: Env = process.env): EngineRunIn {
  return engineRunIn(env);
}

/** Thrown to every pending call when the engine process exits or is killed (e.g. on cancellation). */
export class EngineHostExitedError extends EngineError {
  constructor(
    readonly code: number | null,
    readonly signal: string | null,
    readonly killed: boolean,
  ) {
    super(
      killed
        ? 'the engine process was stopped (cancelled)'
        : `the engine process exited (code ${code}, signal ${signal})`,
    );
  }
}

// The child starts as plain JS that registers tsx (as bin/peftgrid.js does), so this works whether
// this process runs under `node --import tsx`, `require('tsx/cjs')`, the test runner, or compiled
// output; execArgv is set explicitly so the parent's flags (`--test`, inspector ports) stay out.
const CHILD_FILE = join(__dirname, `host-process${__filename.endsWith('.ts') ? '.ts' : '.js'}`);

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

type Request = EngineRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

/**
 * One engine process. Load models into it with `loadModel(dir, { host })` (a target and its draft
 * must share one for speculative decoding); {@link close} kills it at once, which is also how an
 * evaluation is cancelled mid-pass. Idle, it does not keep the parent's event loop alive.
 */
export class EngineHost {
  private readonly child: ChildProcess;
  private readonly ready: Promise<void>;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private exited: EngineHostExitedError | undefined;
  private closing = false;
  /** Models of other hosts opened again here for speculative decoding, by source model. */
  readonly adopted = new WeakMap<object, Promise<number>>();

  constructor() {
    this.child = fork(CHILD_FILE, [], {
      execArgv: ['--require', require.resolve('tsx/cjs')],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.ready = new Promise((resolve, reject) => {
      this.child.on('message', (msg: EngineReply | ReadyMessage) => {
        if ('ready' in msg) {
          resolve();
          return;
        }
        const call = this.pending.get(msg.id);
        if (!call) return;
        this.pending.delete(msg.id);
        this.refWhileBusy();
        if (msg.ok) call.resolve(msg.value);
        else call.reject(fromWireError(msg.error));
      });
      const fail = (error: EngineError) => {
        this.exited ??=
          error instanceof EngineHostExitedError ? error : new EngineHostExitedError(null, null, this.closing);
        reject(error);
        for (const call of this.pending.values()) call.reject(error);
        this.pending.clear();
      };
      this.child.once('exit', (code, signal) => fail(new EngineHostExitedError(code, signal, this.closing)));
      this.child.on('error', (err) =>
        fail(new EngineError(`cannot start the engine process: ${err.message}`, { cause: err })),
      );
    });
    this.ready.catch(() => undefined); // surfaced through every call
    this.refWhileBusy();
  }

  /** The engine process id (for logs). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** True once the process has exited or was killed. */
  get dead(): boolean {
    return this.exited !== undefined;
  }

  /**
   * Sends one request and resolves with its reply's value; an error thrown in the engine process
   * rejects as its own class (TypeError, FeedError, DraftMismatchError …).
   * @throws EngineHostExitedError when the process is gone or dies before replying.
   */
  async call<T>(request: Request): Promise<T> {
    if (this.exited) throw this.exited;
    const id = this.nextId++;
    // Pending before waiting for `ready`, so the starting child keeps this process alive; an exit
    // rejects every pending call, this one included.
    const reply = new Promise<T>((resolve, reject) =>
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject }),
    );
    this.refWhileBusy();
    await this.ready.catch(() => undefined);
    if (this.pending.has(id)) this.child.send({ ...request, id } as EngineRequest);
    return reply;
  }

  /**
   * Kills the process (SIGKILL: a run in progress stops at once; the OS frees its sessions) and
   * waits for it to be gone. Pending calls reject with EngineHostExitedError. Idempotent.
   */
  async close(): Promise<void> {
    if (this.exited) return;
    this.closing = true;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.ref(); // so this process waits for the exit it is awaiting
    this.child.kill('SIGKILL');
    await gone;
  }

  // A busy engine keeps the parent alive (a call is awaited); an idle one must not, or a caller
  // that forgets close() would hang its process at exit.
  private refWhileBusy(): void {
    const channel = this.child.channel as { ref?: () => void; unref?: () => void } | undefined;
    if (this.pending.size > 0) {
      this.child.ref();
      channel?.ref?.();
    } else {
      this.child.unref();
      channel?.unref?.();
    }
  }
}
