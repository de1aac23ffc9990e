/** Run results in the store: `runs/<runKey>/result.json`, written once a run has completed. */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { joinKey, openStore, sha256File } from '../src/store';
import type { Provenance, RunResult } from '../workflows/types';
import { localModelDir } from './model-source';
import { REPO_ROOT } from './paths';

export interface LookupRunResultInput {
  storeUrl: string;
  runKey: string;
}

function resultKey(runKey: string): string {
  return joinKey('runs', runKey, 'result.json');
}

/** The saved result of a completed run, or null; lets a re-started grid reuse finished runs. */
export async function lookupRunResult({ storeUrl, runKey }: LookupRunResultInput): Promise<RunResult | null> {
  const store = openStore(storeUrl);
  if (!(await store.head(resultKey(runKey)))) return null;
  try {
    const result = JSON.parse((await store.get(resultKey(runKey))).toString('utf8')) as RunResult;
    return result.status === 'completed' ? result : null;
  } catch {
    return null; // unreadable: treat as not finished, the run's own steps are idempotent anyway
  }
}

export interface SaveRunResultInput {
  storeUrl: string;
  result: RunResult;
  /** Inputs for the provenance record. */
  modelPath: string;
  seed: number;
  dataHash: string;
}

export interface SaveRunResultResult {
  provenance: Provenance;
}

let codeVersionCache: string | undefined;

/** The worker's code version: git describe of its checkout when it is one, else the package version. */
export function codeVersion(): string {
  if (codeVersionCache) return codeVersionCache;
  const pkg = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  let git = process.env.PEFTGRID_CODE_VERSION ?? '';
  if (!git) {
    try {
      git = execFileSync('git', ['describe', '--always', '--dirty', '--abbrev=12'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      git = 'unknown';
    }
  }
  codeVersionCache = `peftgrid@${pkg}+${git}`;
  return codeVersionCache;
}

const modelHashes = new Map<string, string>();

/** sha256 over (name, sha256) of the files that define a model; cached per directory and mtimes. */
export async function modelHash(dir: string): Promise<string | null> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((f) => /^(config\.json|generation_config\.json|tokenizer\.json|tokenizer_config\.json|.*\.safetensors|.*\.bin)$/.test(f)).sort();
  } catch {
    return null; // an s3:// prefix or hub id: the store / hub revision identifies it
  }
  const stamps = await Promise.all(names.map(async (n) => `${n}:${(await stat(join(dir, n))).mtimeMs}`));
  const cacheKey = `${dir}|${stamps.join('|')}`;
  const cached = modelHashes.get(cacheKey);
  if (cached) return cached;
  const h = createHash('sha256');
  for (const n of names) h.update(`${n}\0${await sha256File(join(dir, n))}\n`);
  const digest = h.digest('hex');
  modelHashes.set(cacheKey, digest);
  return digest;
}

export async function saveRunResult(input: SaveRunResultInput): Promise<SaveRunResultResult> {
  const provenance: Provenance = {
    configHash: input.result.runKey.split('__').pop() ?? input.result.runKey,
    codeVersion: codeVersion(),
    dataHash: input.dataHash,
    modelHash: await modelHash(await localModelDir(input.modelPath)),
    seed: input.seed,
  };
  await openStore(input.storeUrl).put(resultKey(input.result.runKey), JSON.stringify({ ...input.result, provenance }, null, 1));
  return { provenance };
}
