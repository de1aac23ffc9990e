/**
 * Run results in the store: `runs/<evalKey>/result.json`, written once a run has completed. Keyed
 * by the evaluation key (docs/contracts.md §3), so a result is reused only for the same model
 * bytes, data content, training and eval settings. Executions started before content keys save and
 * look up under the plan-time runKey instead.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { codeVersionEnv } from '../src/common/env';
import { joinKey, openStore } from '../src/store';
import type { Provenance, RunResult } from '../src/contracts';
import { modelFingerprint } from './model-fingerprint';
import { localModelDir, revisionOpt } from './model-source';
import { REPO_ROOT } from './paths';
import { currentActivityHeartbeat } from './transfer-heartbeat';
import type { LookupRunResultInput, SaveRunResultInput, SaveRunResultResult } from '../src/contracts';
// Contracts live in src/contracts; re-exported so callers can keep importing them from here.
export type { LookupRunResultInput, SaveRunResultInput, SaveRunResultResult } from '../src/contracts';

function resultKey(key: string): string {
  return joinKey('runs', key, 'result.json');
}

/** The saved result of a completed run, or null; lets a re-started grid reuse finished runs. */
export async function lookupRunResult({ storeUrl, runKey, evalKey }: LookupRunResultInput): Promise<RunResult | null> {
  const store = openStore(storeUrl);
  const key = resultKey(evalKey ?? runKey);
  if (!(await store.head(key))) return null;
  try {
    const result = JSON.parse((await store.get(key)).toString('utf8')) as RunResult;
    return result.status === 'completed' ? result : null;
  } catch {
    return null; // unreadable: treat as not finished, the run's own steps are idempotent anyway
  }
}

let codeVersionCache: string | undefined;

/** The worker's code version: git describe of its checkout when it is one, else the package version. */
export function codeVersion(): string {
  if (codeVersionCache) return codeVersionCache;
  const pkg = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  let git = codeVersionEnv() ?? '';
  if (!git) {
    try {
      git = execFileSync('git', ['describe', '--always', '--dirty', '--abbrev=12'], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    } catch {
      git = 'unknown';
    }
  }
  codeVersionCache = `peftgrid@${pkg}+${git}`;
  return codeVersionCache;
}

export async function saveRunResult(input: SaveRunResultInput): Promise<SaveRunResultResult> {
  const { identity } = input;
  const provenance: Provenance = {
    configHash: input.result.runKey.split('__').pop() ?? input.result.runKey,
    codeVersion: codeVersion(),
    dataHash: input.dataHash,
    // Executions started before content keys carry no modelHash: the model is fingerprinted here,
    // fetched first if it is an s3:// prefix or hub id this worker has not staged (heartbeated).
    modelHash:
      identity?.modelHash ??
      (
        await modelFingerprint(
          await localModelDir(input.modelPath, {
            ...revisionOpt(input.revision),
            heartbeat: currentActivityHeartbeat().details,
          }),
        )
      ).sha256,
    seed: input.seed,
    ...(input.revision ? { modelRevision: input.revision } : {}),
    ...(identity
      ? {
          trainingKey: identity.trainingKey,
          evalKey: identity.evalKey,
          modelHashBasis: identity.modelHashBasis,
          ...(identity.draftModelHash ? { draftModelHash: identity.draftModelHash } : {}),
          ...(identity.distillKey ? { distillKey: identity.distillKey } : {}),
          ...(input.prepared
            ? { data: { preparedTrain: input.prepared.train, preparedTest: input.prepared.test, ...identity.data } }
            : {}),
        }
      : {}),
  };
  await openStore(input.storeUrl).put(
    resultKey(identity?.evalKey ?? input.result.runKey),
    JSON.stringify({ ...input.result, provenance }, null, 1),
  );
  return { provenance };
}
