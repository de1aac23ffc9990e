/** Where an activity finds the Python trainer and keeps its local scratch files. */
import { isAbsolute, join, resolve } from 'node:path';
import { dataDirEnv, pythonEnv } from '../src/common/env';

/** The repo root (activities/ is one level below it). */
export const REPO_ROOT = resolve(__dirname, '..');

export function dataDir(): string {
  const d = dataDirEnv();
  return isAbsolute(d) ? d : join(REPO_ROOT, d);
}

/** Per-run scratch space on this worker; safe to delete between attempts (the store is the truth). */
export function workDir(...parts: string[]): string {
  return join(dataDir(), 'work', ...parts);
}

export function pythonExecutable(): string {
  return pythonEnv() ?? join(REPO_ROOT, '.venv', 'bin', 'python');
}
