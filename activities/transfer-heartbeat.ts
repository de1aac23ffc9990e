/**
 * One activity's heartbeats while it moves bytes: the wiring every transfer needs, written once.
 * An activity calls {@link activityHeartbeat} on its first line (a heartbeat goes out at once, so
 * a worker that dies while checking the store is noticed too), then passes `hb.transfer(phase)`
 * to each store call: every progress report of the store becomes a heartbeat
 * `{ ...base(), phase, bytes, totalBytes }` (src/contracts/heartbeat.ts).
 *
 * No timer keeps it alive: a transfer whose bytes stop moving (a hung connection, a dead disk)
 * stops heartbeating, and Temporal retries it after `heartbeatTimeout`. Work that moves no bytes
 * for long (a child process loading a model) heartbeats itself (activities/trainer-process.ts).
 */
import { Context } from '@temporalio/activity';
import type { ActivityHeartbeatDetails, ActivityPhase } from '../src/contracts';
import type { TransferOptions } from '../src/store';

export interface ActivityHeartbeat {
  /** Heartbeats `{ ...base(), phase, ...extra }` now: a phase that moves no bytes (yet). */
  phase(phase: ActivityPhase, extra?: Record<string, unknown>): void;
  /** Store options whose progress reports heartbeat `{ ...base(), phase, bytes, totalBytes }`. */
  transfer(phase: ActivityPhase): TransferOptions;
  /** For code that reports its own details (localModelDir's `opts.heartbeat`). */
  details(d: ActivityHeartbeatDetails): void;
  /** Heartbeats the last details again (between retries of a transfer). */
  beat(): void;
}

export interface ActivityHeartbeatOptions {
  /** @default 'starting' */
  phase?: ActivityPhase;
  /**
   * Fields every heartbeat carries besides the phase: what a retry reads back from
   * `activityInfo().heartbeatDetails` (trainModel's step and checkpointKey) must survive a transfer.
   */
  base?: () => object;
}

export function activityHeartbeat(ctx: Context, opts: ActivityHeartbeatOptions = {}): ActivityHeartbeat {
  const base = opts.base ?? (() => ({}));
  let last: ActivityHeartbeatDetails = { phase: opts.phase ?? 'starting' };
  const send = (d: ActivityHeartbeatDetails) => {
    last = d;
    ctx.heartbeat({ ...base(), ...d });
  };
  send(last);
  return {
    phase: (phase, extra) => send({ ...extra, phase }),
    transfer: (phase) => ({
      onProgress: (p) =>
        send({
          phase,
          bytes: p.bytes,
          totalBytes: p.totalBytes,
          ...(p.hashedBytes !== undefined ? { hashedBytes: p.hashedBytes } : {}),
        }),
    }),
    details: send,
    beat: () => send(last),
  };
}

const NO_HEARTBEAT: ActivityHeartbeat = { phase: () => {}, transfer: () => ({}), details: () => {}, beat: () => {} };

/**
 * {@link activityHeartbeat} of the current activity, or one that does nothing outside an activity
 * (helpers that tools and tests also call as plain functions: saveRunResult, deriveRunKeys).
 */
export function currentActivityHeartbeat(opts: ActivityHeartbeatOptions = {}): ActivityHeartbeat {
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    return NO_HEARTBEAT;
  }
  return activityHeartbeat(ctx, opts);
}
