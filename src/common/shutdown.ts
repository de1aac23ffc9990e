/**
 * The worker's shutdown budget and the trainer's SIGKILL grace derived from it. Not in
 * ./constants (which workflow code imports) because it reads the environment through ./env.
 */
import {
  SHUTDOWN_REPORT_MS,
  SHUTDOWN_UPLOAD_SHARE,
  WORKER_SHUTDOWN_DEFAULT_MS,
  WORKER_SHUTDOWN_MIN_MS,
} from './constants';
import { workerShutdownMsEnv, type Env } from './env';

/** The worker shutdown time in ms: PEFTGRID_WORKER_SHUTDOWN_MS when set (strictly an integer), else the default. */
export function workerShutdownMs(env: Env = process.env): number {
  return workerShutdownMsEnv(WORKER_SHUTDOWN_MIN_MS, env) ?? WORKER_SHUTDOWN_DEFAULT_MS;
}

/** SIGTERM → SIGKILL grace for the trainer: the shutdown time minus the upload share and the report. */
export function trainerKillGraceMs(shutdownMs: number = workerShutdownMs()): number {
  return Math.floor(shutdownMs * (1 - SHUTDOWN_UPLOAD_SHARE)) - SHUTDOWN_REPORT_MS;
}
