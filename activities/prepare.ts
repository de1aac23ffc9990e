/**
 * resolveDatasets + prepareData: raw UnifiedQA splits → `datasets/prepared/<dataKey>/` with
 * train.jsonl (at most maxTrainPerDataset per dataset, drawn by seed) and test.jsonl
 * (testSamples, stratified across datasets, drawn by seed), manifest.json last. Streaming with
 * reservoir sampling: memory is bounded by the sample sizes, not by the files.
 */
import { createReadStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { CATALOG, DATASET_NAMES, isDatasetName } from '../datasets/catalog';
import { runLogger } from '../src/common/logger';
import type { DataConfig } from '../src/config/schema';
import { createRng, seedFrom } from '../src/data/rng';
import { splitLines } from '../src/data/lines';
import { parseUnifiedQaStream, type MalformedLine, type QaRecord } from '../src/data/unifiedqa';
import { joinKey, openStore, type ObjectRef } from '../src/store';
import type { PreparedData } from '../workflows/types';
import { workDir } from './paths';

export interface ResolveDatasetsInput {
  data: DataConfig;
}

/** The datasets a data config names; all 11 of the study by default. */
export async function resolveDatasets({ data }: ResolveDatasetsInput): Promise<{ datasets: string[] }> {
  const datasets = data.datasets ?? [...DATASET_NAMES];
  for (const d of datasets) {
    if (!isDatasetName(d)) throw ApplicationFailure.nonRetryable(`unknown dataset ${JSON.stringify(d)}; expected one of ${DATASET_NAMES.join(', ')}`, 'InvalidSpec');
  }
  return { datasets };
}

export interface PrepareDataInput {
  storeUrl: string;
  dataKey: string;
  data: DataConfig;
  raw: { dataset: string; split: string; ref: ObjectRef }[];
}

interface PreparedManifest {
  train: ObjectRef;
  test: ObjectRef;
  stats: PreparedData['stats'];
  malformed: Record<string, { count: number; first: MalformedLine[] }>;
}

/** Algorithm R with a seeded RNG: a uniform sample of k items from a stream of unknown length. */
class Reservoir<T> {
  readonly items: T[] = [];
  private seen = 0;
  constructor(private readonly k: number, private readonly rng: ReturnType<typeof createRng>) {}
  add(item: T): void {
    this.seen++;
    if (this.items.length < this.k) this.items.push(item);
    else {
      const j = this.rng.int(this.seen);
      if (j < this.k) this.items[j] = item;
    }
  }
}

export async function prepareData(input: PrepareDataInput): Promise<PreparedData> {
  const ctx = Context.current();
  const log = runLogger({ activity: 'prepareData', dataKey: input.dataKey });
  const store = openStore(input.storeUrl);
  const prefix = joinKey('datasets', 'prepared', input.dataKey);
  const manifestKey = joinKey(prefix, 'manifest.json');
  if (await store.head(manifestKey)) {
    const m = JSON.parse((await store.get(manifestKey)).toString('utf8')) as PreparedManifest;
    return { dataKey: input.dataKey, train: m.train, test: m.test, stats: m.stats };
  }

  const { data } = input;
  const datasets = [...new Set(input.raw.map((r) => r.dataset))];
  const scratch = workDir('prepare', input.dataKey);
  await mkdir(scratch, { recursive: true });
  const malformed: PreparedManifest['malformed'] = {};

  const readSplit = async function* (dataset: string, split: string): AsyncGenerator<QaRecord> {
    const raw = input.raw.find((r) => r.dataset === dataset && r.split === split);
    if (!raw) return;
    const local = join(scratch, `${dataset}.${split}.tsv`);
    await store.getFile(raw.ref.key, local, raw.ref.sha256);
    if (!isDatasetName(dataset)) throw ApplicationFailure.nonRetryable(`unknown dataset ${dataset}`, 'InvalidSpec');
    const { records, stats } = parseUnifiedQaStream(splitLines(createReadStream(local)), CATALOG[dataset]);
    yield* records;
    malformed[`${dataset}/${split}`] = { count: stats.malformedCount, first: stats.malformed.slice(0, 20) };
    if (stats.malformedCount) log.warn({ dataset, split, malformed: stats.malformedCount, byReason: stats.malformedByReason }, 'malformed lines skipped (reported in the manifest)');
    await rm(local, { force: true });
  };

  // Test first: train then excludes any record whose input also appears in the test sample.
  const base = Math.floor(data.testSamples / datasets.length);
  const extra = data.testSamples % datasets.length;
  const testByDataset = new Map<string, QaRecord[]>();
  for (const [i, dataset] of datasets.entries()) {
    const res = new Reservoir<QaRecord>(base + (i < extra ? 1 : 0), createRng(seedFrom(data.seed, 'test', dataset)));
    for await (const r of readSplit(dataset, data.testSplit)) res.add(r);
    testByDataset.set(dataset, res.items);
    ctx.heartbeat({ phase: 'test', dataset });
  }
  const testIds = new Set([...testByDataset.values()].flat().map((r) => r.id));
  const trainByDataset = new Map<string, QaRecord[]>();
  for (const dataset of datasets) {
    const res = new Reservoir<QaRecord>(data.maxTrainPerDataset, createRng(seedFrom(data.seed, 'train', dataset)));
    for await (const r of readSplit(dataset, data.trainSplit)) if (!testIds.has(r.id)) res.add(r);
    trainByDataset.set(dataset, res.items);
    ctx.heartbeat({ phase: 'train', dataset });
  }
  await rm(scratch, { recursive: true, force: true });

  const train = [...trainByDataset.values()].flat();
  const test = [...testByDataset.values()].flat();
  if (train.length === 0 || test.length === 0) {
    throw ApplicationFailure.nonRetryable(`no usable records (train ${train.length}, test ${test.length}); see malformed-line counts: ${JSON.stringify(Object.fromEntries(Object.entries(malformed).map(([k, v]) => [k, v.count])))}`, 'InvalidData');
  }
  // Shuffle train across datasets (by seed) so that batches mix formats.
  const trainShuffled = createRng(seedFrom(data.seed, 'train-order')).shuffle(train);
  const jsonl = (rs: QaRecord[]) => rs.map((r) => JSON.stringify(r)).join('\n') + '\n';
  const trainRef = await store.put(joinKey(prefix, 'train.jsonl'), jsonl(trainShuffled));
  const testRef = await store.put(joinKey(prefix, 'test.jsonl'), jsonl(test));
  const count = (m: Map<string, QaRecord[]>) => Object.fromEntries([...m].map(([k, v]) => [k, v.length]));
  const stats = { train: count(trainByDataset), test: count(testByDataset), malformed: Object.values(malformed).reduce((s, m) => s + m.count, 0) };
  await store.put(manifestKey, JSON.stringify({ train: trainRef, test: testRef, stats, malformed } satisfies PreparedManifest, null, 1));
  log.info(stats, 'prepared');
  return { dataKey: input.dataKey, train: trainRef, test: testRef, stats };
}
