/** The tokenized QA test prompts of a run, for the benchmarks that run the real workload. */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { TestItem } from '../src/contracts';
import { REPO_ROOT } from './engine-models';

/**
 * The newest `test-0shot.jsonl` under .data/store/datasets/tokenized/: the demo's (or
 * study-small's) after `peftgrid` ran it once.
 * @throws Error naming what to run when there is none.
 */
export function defaultTestPrompts(): string {
  const root = join(REPO_ROOT, '.data', 'store', 'datasets', 'tokenized');
  const candidates = existsSync(root)
    ? readdirSync(root)
        .map((d) => join(root, d, 'test-0shot.jsonl'))
        .filter((f) => existsSync(f))
    : [];
  if (candidates.length === 0)
    throw new Error(`no tokenized test split under ${root}: run examples/demo.yaml once, or pass --prompts FILE`);
  return candidates.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0]!;
}

/** The test items of a tokenized split (one JSON object per line). */
export function readTestItems(file: string): TestItem[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as TestItem);
}
