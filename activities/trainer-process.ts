/**
 * Runs `python -m trainer <command>` as a child process (no shell) in its own process group and
 * turns its stdout JSON lines into events. Cancellation of the activity (or worker shutdown)
 * sends SIGTERM — the trainer checkpoints and exits 75 — then SIGKILL after a grace period
 * derived from the worker's shutdown time.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { trainerKillGraceMs } from '../src/common/shutdown';
import { TRAINER_EXIT } from '../src/contracts/failures';
import { parseTrainerLine, type TrainerEvent } from '../src/contracts/trainer-events';
import { pythonExecutable, REPO_ROOT } from './paths';

export type { TrainerEvent } from '../src/contracts/trainer-events';

export interface TrainerRunOptions {
  args: string[];
  /**
   * Called for every valid event on stdout, in order; a returned promise is awaited before the next.
   * A line that is not a protocol event (src/contracts/trainer-events.ts) is logged and skipped.
   */
  onEvent?: (e: TrainerEvent) => void | Promise<void>;
  /** Aborting it stops the child: SIGTERM to its process group, SIGKILL after `killGraceMs`. */
  signal?: AbortSignal;
  log: Logger;
  /**
   * @default trainerKillGraceMs(): the worker's shutdown time (PEFTGRID_WORKER_SHUTDOWN_MS) minus
   * what the checkpoint upload and the final report need, so a slow step plus a large checkpoint
   * save finish before the SIGKILL and the upload before the worker is forced down.
   */
  killGraceMs?: number;
  /**
   * Called at spawn, then every `heartbeatEveryMs` while the child is alive. Loading a 7B model or exporting it
   * can take minutes without a single event; the activity must still prove its worker is alive.
   */
  heartbeat?: () => void;
  /** @default 10000 */
  heartbeatEveryMs?: number;
  /** Called with each non-empty line of the trainer's stderr (its log), e.g. to persist it for `peftgrid logs`. */
  onStderrLine?: (line: string) => void;
}

export interface TrainerRunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last `error` event, if the trainer reported one. */
  error?: { type: string; message: string };
  /** Last lines of stderr, for failure messages. */
  stderrTail: string;
}

// The trainer's exit codes, from the failure registry (src/contracts/failures.ts).
/** Exit code the trainer uses after checkpointing on SIGTERM (EX_TEMPFAIL). */
export const EXIT_PREEMPTED = TRAINER_EXIT.preempted;
/** Exit code for failures that a retry would repeat (bad spec, unknown model, unsupported method). */
export const EXIT_INVALID = TRAINER_EXIT.invalid;
/**
 * Exit code when `--resume-from` cannot be used (state version, a torch.load/safetensors failure,
 * missing files, parameters or run identity that do not match): an `error` event of type
 * `CheckpointRejected` precedes it. The checkpoint is at fault, not the spec: the activity falls
 * back to an older checkpoint or a fresh start (activities/resume.ts).
 */
export const EXIT_CHECKPOINT_REJECTED = TRAINER_EXIT.checkpointRejected;

export function runTrainer(opts: TrainerRunOptions): Promise<TrainerRunResult> {
  const { args, onEvent, signal, log } = opts;
  const child = spawn(pythonExecutable(), ['-m', 'trainer', ...args], {
    cwd: REPO_ROOT,
    detached: true, // own process group: a kill reaches DataLoader workers too
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PYTHONUNBUFFERED: '1', TOKENIZERS_PARALLELISM: 'false' },
  });
  let stderrTail = '';
  let lastError: TrainerRunResult['error'];
  child.stderr.setEncoding('utf8');
  let partial = ''; // a chunk can end mid-line; the rest comes with the next one
  child.stderr.on('data', (chunk: string) => {
    stderrTail = (stderrTail + chunk).slice(-4000);
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) stderrLine(line);
  });
  const stderrLine = (line: string) => {
    if (!line.trim()) return;
    log.debug({ trainer: line.trimEnd() }, 'trainer stderr');
    opts.onStderrLine?.(line.trimEnd());
  };
  child.stderr.on('end', () => stderrLine(partial));

  // Events are handled strictly in order (uploads of checkpoint N finish before N+1 starts), but
  // reading stdout never waits for them, so the trainer is not blocked by slow uploads.
  let chain: Promise<void> = Promise.resolve();
  let handlerError: unknown;
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    const parsed = parseTrainerLine(line);
    if (!parsed.ok) {
      // Skipped, not guessed at: a `done` without its finalDir must not become a committed
      // "undefined" directory. The exit code still decides the attempt's outcome.
      log.warn(
        { line: line.slice(0, 2000), reason: parsed.reason },
        'trainer printed a line that is not a protocol event; skipped',
      );
      return;
    }
    const ev: TrainerEvent = parsed.event;
    if (ev.event === 'error') lastError = { type: ev.type, message: ev.message };
    if (onEvent)
      chain = chain
        .then(() => onEvent(ev))
        .catch((err) => {
          handlerError ??= err;
        });
  });

  let killTimer: NodeJS.Timeout | undefined;
  const kill = (sig: NodeJS.Signals) => {
    try {
      if (child.pid) process.kill(-child.pid, sig);
    } catch {
      /* already gone */
    }
  };
  const onAbort = () => {
    log.info({ pid: child.pid }, 'stopping trainer (SIGTERM, then SIGKILL after grace)');
    kill('SIGTERM');
    killTimer = setTimeout(() => kill('SIGKILL'), opts.killGraceMs ?? trainerKillGraceMs());
  };
  if (signal) {
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  }

  // One beat at spawn, then on the interval: Python importing torch and transformers takes seconds
  // (a minute on a cold disk) before the trainer's first event, and the heartbeat must not wait on it.
  opts.heartbeat?.();
  const beat = opts.heartbeat ? setInterval(opts.heartbeat, opts.heartbeatEveryMs ?? 10_000) : undefined;

  return new Promise((resolvePromise, reject) => {
    child.on('error', (err) => {
      if (beat) clearInterval(beat);
      reject(err);
    });
    child.on('close', (code, sig) => {
      if (beat) clearInterval(beat);
      if (killTimer) clearTimeout(killTimer);
      signal?.removeEventListener('abort', onAbort);
      chain.then(() => {
        if (handlerError) reject(handlerError);
        else resolvePromise({ code, signal: sig, error: lastError, stderrTail });
      }, reject);
    });
  });
}
