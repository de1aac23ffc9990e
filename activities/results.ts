/** Run results in the store: `runs/<runKey>/result.json`, written once a run has completed. */
import { joinKey, openStore } from '../src/store';
import type { RunResult } from '../workflows/types';

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
}

export async function saveRunResult({ storeUrl, result }: SaveRunResultInput): Promise<void> {
  await openStore(storeUrl).put(resultKey(result.runKey), JSON.stringify(result, null, 1));
}
