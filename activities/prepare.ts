/**
 * resolveDatasets + prepareData: raw UnifiedQA splits → `datasets/prepared/<preparedKey>/` with
 * train.jsonl (at most maxTrainPerDataset per dataset, drawn by seed) and test.jsonl
 * (testSamples, stratified across datasets, drawn by seed), manifest.json last. Streaming with
 * reservoir sampling: memory is bounded by the sample sizes, not by the files. Bad lines (invalid
 * UTF-8, no tab, empty answer, over-long, a last line cut short …) are skipped, counted by reason
 * and listed with their line numbers in the manifest; they never fail the activity. A split in
 * which no line is usable does: a non-retryable InvalidData naming the dataset and the reasons.
 */
import { createReadStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { FailureType } from '../src/contracts/failures';
import { failure } from './failure';
import { CATALOG, DATASET_NAMES, isDatasetName, type DatasetName } from '../src/data/catalog';
import { MAX_JSONL_LINE_BYTES, parseJsonlStream, type JsonlMalformedReason } from '../src/data/jsonl';
import { customDatasets } from '../src/config/custom-data';
import { runLogger } from '../src/common/logger';
import { createHash } from 'node:crypto';
import { createRng, seedFrom } from '../src/common/rng';
import { readLines } from '../src/data/lines';
import {
  parseUnifiedQaStream,
  unusableSplit,
  type MalformedLine,
  type MalformedReason,
  type QaRecord,
} from '../src/data/unifiedqa';
import { joinKey, openStore, type ObjectRef } from '../src/store';
import { workDir } from './paths';
import { activityHeartbeat } from './transfer-heartbeat';
import type { PreparedData, ResolveDatasetsInput, PrepareDataInput } from '../src/contracts';
// Contracts live in src/contracts; re-exported so callers can keep importing them from here.
export type { ResolveDatasetsInput, PrepareDataInput } from '../src/contracts';

/** The UnifiedQA datasets a data config names (all 11 of the study by default); custom ones are not listed. */
export async function resolveDatasets({ data }: ResolveDatasetsInput): Promise<{ datasets: string[] }> {
  const datasets = (data.datasets ?? [...DATASET_NAMES]).filter((d) => typeof d === 'string');
  for (const d of datasets) {
    if (!isDatasetName(d))
      throw failure(
        FailureType.InvalidSpec,
        `unknown dataset ${JSON.stringify(d)}; expected one of ${DATASET_NAMES.join(', ')}`,
      );
  }
  return { datasets };
}

/** Malformed lines of one raw split (`<dataset>/<split>`). */
export interface MalformedReport {
  count: number;
  /** UnifiedQA's reasons (TSV) or the JSONL parser's (custom datasets). */
  byReason: Partial<Record<MalformedReason | JsonlMalformedReason, number>>;
  /** The first MALFORMED_DETAILS lines with their 1-based line numbers and reasons. */
  first: MalformedLine<MalformedReason | JsonlMalformedReason>[];
}

export interface PreparedManifest {
  train: ObjectRef;
  test: ObjectRef;
  stats: PreparedData['stats'];
  malformed: Record<string, MalformedReport>;
  /** Train records left out per dataset because their input is in the test sample (of any dataset). */
  excludedFromTrain: Record<string, number>;
}

/** Malformed lines listed per split in the manifest (all of them are counted). */
const MALFORMED_DETAILS = 100;

/**
 * What a model sees of a record apart from its answer. Train excludes test inputs by this key, not
 * by record id: the id includes the dataset, and the same question can ship in two datasets.
 */
export function inputKey(r: Pick<QaRecord, 'question' | 'context' | 'choices'>): string {
  return createHash('sha256')
    .update(JSON.stringify([r.question, r.choices ?? null, r.context ?? null]))
    .digest('hex')
    .slice(0, 32);
}

/** Algorithm R with a seeded RNG: a uniform sample of k items from a stream of unknown length. */
class Reservoir<T> {
  readonly items: T[] = [];
  private seen = 0;
  constructor(
    private readonly k: number,
    private readonly rng: ReturnType<typeof createRng>,
  ) {}
  add(item: T): void {
    this.seen++;
    if (this.items.length < this.k) this.items.push(item);
    else {
      const j = this.rng.int(this.seen);
      if (j < this.k) this.items[j] = item;
    }
  }
}

/**
 * The prepared splits' key: the data config's hash with every raw file's sha256, so an edited
 * source file (a new raw sha256) is prepared anew instead of matching an old preparation.
 */
export function preparedKeyFor(input: Pick<PrepareDataInput, 'dataKey' | 'raw'>): string {
  const raw = input.raw.map((r) => `${r.dataset}/${r.split}:${r.ref.sha256}`).sort();
  return createHash('sha256')
    .update(JSON.stringify([input.dataKey, raw]))
    .digest('hex')
    .slice(0, 16);
}

export async function prepareData(input: PrepareDataInput): Promise<PreparedData> {
  const ctx = Context.current();
  const hb = activityHeartbeat(ctx);
  const preparedKey = preparedKeyFor(input);
  const log = runLogger({ activity: 'prepareData', dataKey: input.dataKey, preparedKey });
  const store = openStore(input.storeUrl);
  const prefix = joinKey('datasets', 'prepared', preparedKey);
  const manifestKey = joinKey(prefix, 'manifest.json');
  if (await store.head(manifestKey)) {
    const m = JSON.parse((await store.get(manifestKey)).toString('utf8')) as PreparedManifest;
    return { dataKey: input.dataKey, train: m.train, test: m.test, stats: m.stats };
  }

  const { data } = input;
  const datasets = [...new Set(input.raw.map((r) => r.dataset))];
  const scratch = workDir('prepare', preparedKey);
  await mkdir(scratch, { recursive: true });
  const malformed: PreparedManifest['malformed'] = {};

  const readSplit = async function* (dataset: string, split: string): AsyncGenerator<QaRecord> {
    const raw = input.raw.find((r) => r.dataset === dataset && r.split === split);
    if (!raw) return;
    const local = join(scratch, `${dataset}.${split}.raw`);
    await store.getFile(raw.ref.key, local, raw.ref.sha256, hb.transfer('download-data'));
    const custom = customDatasets(data).find((d) => d.name === dataset);
    if (!custom && !isDatasetName(dataset)) throw failure(FailureType.InvalidSpec, `unknown dataset ${dataset}`);
    // readLines, not splitLines: a last line without a newline (a file cut short) is reported, not trusted.
    const { records, stats } = custom
      ? parseJsonlStream(
          readLines(createReadStream(local), { maxLineBytes: MAX_JSONL_LINE_BYTES }),
          { name: custom.name, format: custom.format, layout: custom.layout },
          { maxMalformedDetails: MALFORMED_DETAILS },
        )
      : parseUnifiedQaStream(readLines(createReadStream(local)), CATALOG[dataset as DatasetName], {
          maxMalformedDetails: MALFORMED_DETAILS,
        });
    let n = 0;
    for await (const r of records) {
      // Big splits take seconds to parse: heartbeat within them, not just between them.
      if (++n % 20_000 === 0) ctx.heartbeat({ dataset, split, records: n });
      yield r;
    }
    malformed[`${dataset}/${split}`] = {
      count: stats.malformedCount,
      byReason: stats.malformedByReason,
      first: stats.malformed,
    };
    await rm(local, { force: true });
    const unusable = unusableSplit(stats);
    if (unusable) {
      // The same bytes fail the same way on every retry (the raw file is checksummed in the store).
      throw failure(FailureType.InvalidData, `dataset ${dataset}, split ${split} (${raw.ref.key}): ${unusable}`, {
        dataset,
        split,
        lines: stats.total,
        byReason: stats.malformedByReason,
        first: stats.malformed.slice(0, 10),
      });
    }
    if (stats.malformedCount)
      log.warn(
        { dataset, split, malformed: stats.malformedCount, byReason: stats.malformedByReason },
        'malformed lines skipped (reported in the manifest)',
      );
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
  const testInputs = new Set([...testByDataset.values()].flat().map(inputKey));
  const trainByDataset = new Map<string, QaRecord[]>();
  const excludedFromTrain: Record<string, number> = {};
  for (const dataset of datasets) {
    const res = new Reservoir<QaRecord>(data.maxTrainPerDataset, createRng(seedFrom(data.seed, 'train', dataset)));
    let excluded = 0;
    for await (const r of readSplit(dataset, data.trainSplit)) {
      if (testInputs.has(inputKey(r))) excluded++;
      else res.add(r);
    }
    excludedFromTrain[dataset] = excluded;
    trainByDataset.set(dataset, res.items);
    ctx.heartbeat({ phase: 'train', dataset });
  }
  await rm(scratch, { recursive: true, force: true });

  const train = [...trainByDataset.values()].flat();
  const test = [...testByDataset.values()].flat();
  if (train.length === 0 || test.length === 0) {
    throw failure(
      FailureType.InvalidData,
      `no usable records (train ${train.length}, test ${test.length}); see malformed-line counts: ${JSON.stringify(Object.fromEntries(Object.entries(malformed).map(([k, v]) => [k, v.count])))}`,
    );
  }
  // Shuffle train across datasets (by seed) so that batches mix formats.
  const trainShuffled = createRng(seedFrom(data.seed, 'train-order')).shuffle(train);
  const jsonl = (rs: QaRecord[]) => rs.map((r) => JSON.stringify(r)).join('\n') + '\n';
  const trainRef = await store.put(joinKey(prefix, 'train.jsonl'), jsonl(trainShuffled));
  const testRef = await store.put(joinKey(prefix, 'test.jsonl'), jsonl(test));
  const count = (m: Map<string, QaRecord[]>) => Object.fromEntries([...m].map(([k, v]) => [k, v.length]));
  const stats = {
    train: count(trainByDataset),
    test: count(testByDataset),
    malformed: Object.values(malformed).reduce((s, m) => s + m.count, 0),
  };
  await store.put(
    manifestKey,
    JSON.stringify(
      { train: trainRef, test: testRef, stats, malformed, excludedFromTrain } satisfies PreparedManifest,
      null,
      1,
    ),
  );
  log.info(stats, 'prepared');
  return { dataKey: input.dataKey, train: trainRef, test: testRef, stats };
}
