/**
 * Shared by the data benchmarks: the generator's full-size synthetic UnifiedQA (`datasets/generate.ts
 * --scale F`, seed 42) cached under .data/bench/unifiedqa-scale-<F>/, and a streaming reader.
 */
import { existsSync, rmSync, renameSync } from 'node:fs';
import { createReadStream } from 'node:fs';
import { join, resolve } from 'node:path';
import { DATASET_NAMES, type DatasetName } from '../src/data/catalog';
import { DEFAULT_SEED, generateScale } from '../datasets/generate';
import { parseUnifiedQaStream, readLines, type QaRecord } from '../src/data';

export const REPO_ROOT = resolve(__dirname, '..');
export const BENCH_ROOT = join(REPO_ROOT, '.data', 'bench');

/** The directory of `--scale <scale>` data, generated (about 25 s per 100% on 2 cores) if absent. */
export async function ensureScaleData(scale: number): Promise<string> {
  const dir = join(BENCH_ROOT, `unifiedqa-scale-${scale}`);
  if (existsSync(dir)) return dir;
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  console.error(`generating ${dir} (datasets/generate.ts --scale ${scale} --seed ${DEFAULT_SEED})`);
  await generateScale(tmp, scale, DEFAULT_SEED);
  renameSync(tmp, dir); // only a complete generation is ever found under the final name
  return dir;
}

/** The first `limit` records of one split, parsed by the streaming path prepareData uses. */
export async function readRecords(
  dir: string,
  dataset: DatasetName,
  split: string,
  limit: number,
): Promise<QaRecord[]> {
  const out: QaRecord[] = [];
  const stream = createReadStream(join(dir, dataset, `${split}.tsv`));
  const { records } = parseUnifiedQaStream(readLines(stream), dataset);
  for await (const r of records) {
    out.push(r);
    if (out.length >= limit) break;
  }
  stream.destroy();
  return out;
}

/** Up to `perDataset` train records of each of the 11 datasets. */
export async function sampleTrainRecords(dir: string, perDataset: number): Promise<QaRecord[]> {
  const all: QaRecord[] = [];
  for (const d of DATASET_NAMES) for (const r of await readRecords(dir, d, 'train', perDataset)) all.push(r);
  return all;
}
