/** What the deployment manifests are checked against: facts read from the code, not restated. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { workerShutdownMs } from '../../src/common/shutdown';
import { REPO } from '../helpers/fixtures';

/**
 * Seconds the gpu worker allows for checkpoint + upload after SIGTERM: the one setting in
 * src/common/constants.ts, or the PEFTGRID_WORKER_SHUTDOWN_MS a manifest sets for the worker.
 */
export function gpuShutdownForceSeconds(env: Record<string, string | undefined> = {}): number {
  return workerShutdownMs(env) / 1000;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? tsFiles(p) : name.endsWith('.ts') ? [p] : [];
  });
}

/** Every environment variable the worker code reads, plus those the AWS SDK and CUDA read. */
export function knownEnvVars(): Set<string> {
  const names = new Set([
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_SESSION_TOKEN',
    'AWS_PROFILE',
    'CUDA_VISIBLE_DEVICES',
    'NODE_ENV',
  ]);
  for (const dir of ['src', 'activities', 'workers']) {
    for (const f of tsFiles(join(REPO, dir))) {
      for (const m of readFileSync(f, 'utf8').matchAll(/\benv\.([A-Z][A-Z0-9_]+)/g)) names.add(m[1]!);
    }
  }
  return names;
}

/** "210s", "3m30s", "1m" → seconds (Compose durations). */
export function durationSeconds(d: string | number): number {
  if (typeof d === 'number') return d;
  const m = /^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?$/.exec(d);
  if (!m || d === '') throw new TypeError(`not a duration: ${d}`);
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}
