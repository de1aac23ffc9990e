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

/** The study's models (examples/study.yaml) and the PEFT methods it trains; `full` of a 7B fits no one GPU. */
const STUDY_MODELS = ['gemma-2b', 'llama-2-7b', 'mistral-7b', 'gemma-7b'];
const PEFT = ['lora', 'qlora', 'ia3', 'prompt_tuning'];

/**
 * The largest GPU, host and scratch figures of a study run, from the estimate in
 * trainer/resources.py (test/fixtures/model-shapes.json `requirements`, written by
 * bench/resource-table.py --fixture; docs/operations.md prints the same rows).
 */
export function studyRunNeeds(): { gpuBytes: number; hostBytes: number; scratchBytes: number } {
  const rows = (
    JSON.parse(readFileSync(join(REPO, 'test', 'fixtures', 'model-shapes.json'), 'utf8')) as {
      requirements: { model: string; method: string; gpuBytes: number; hostBytes: number; scratchBytes: number }[];
    }
  ).requirements.filter((r) => STUDY_MODELS.includes(r.model) && PEFT.includes(r.method));
  if (rows.length !== STUDY_MODELS.length * PEFT.length) throw new Error('model-shapes.json lacks study rows');
  const max = (k: 'gpuBytes' | 'hostBytes' | 'scratchBytes') => Math.max(...rows.map((r) => r[k]));
  return { gpuBytes: max('gpuBytes'), hostBytes: max('hostBytes'), scratchBytes: max('scratchBytes') };
}

/** Kubernetes ("48Gi", "500M") and Compose ("64g", "8gb") byte quantities → bytes. */
export function quantityBytes(q: string | number): number {
  if (typeof q === 'number') return q;
  const m = /^(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|k|K|M|G|T|kb|mb|gb|tb|b)?$/i.exec(q.trim());
  if (!m) throw new TypeError(`not a quantity: ${q}`);
  const unit = m[2] ?? '';
  const binary: Record<string, number> = { ki: 2 ** 10, mi: 2 ** 20, gi: 2 ** 30, ti: 2 ** 40 };
  // Compose's k/m/g(b) are binary too (docker's units.RAMInBytes); Kubernetes' k/M/G are decimal.
  const compose: Record<string, number> = { kb: 2 ** 10, mb: 2 ** 20, gb: 2 ** 30, tb: 2 ** 40, b: 1 };
  const k8sDecimal: Record<string, number> = { k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  const factor =
    binary[unit.toLowerCase()] ??
    (/^[kmgt]$/.test(unit) ? compose[`${unit}b`] : undefined) ??
    compose[unit.toLowerCase()] ??
    k8sDecimal[unit] ??
    1;
  return Number(m[1]) * factor;
}
