// Deterministic generator of UnifiedQA-format TSV.
//
//   node --import tsx datasets/generate.ts --out DIR [--seed S]            # the shipped samples
//   node --import tsx datasets/generate.ts --out DIR --scale F [--seed S]  # all 11 datasets at F × full size
//
// Without --scale it writes the demo samples (datasets/samples is this command's output with the
// default seed, JSONL custom-dataset samples under custom/ included; a unit test regenerates and
// compares byte for byte). With --scale 1 it writes
// 462,516 UnifiedQA-shaped lines across the 11 datasets and their real splits, streaming to disk,
// passages padded so mean line lengths follow the real files.
import { createWriteStream, mkdirSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  CATALOG,
  DATASET_NAMES,
  SAMPLE_DATASETS,
  datasetSplits,
  type DatasetName,
  type SampleDatasetName,
  type Split,
} from '../src/data/catalog';
import { createRng, seedFrom, type Rng } from '../src/common/rng';
import { toUnifiedQaInput } from '../src/data/unifiedqa';
import { generateCustomSamples } from './custom-samples';
import {
  abstractiveItems,
  extractiveItem,
  fillerSentence,
  multipleChoiceItem,
  readingChoiceItem,
  yesNoItem,
  type SynthItem,
} from './synth/items';

export const DEFAULT_SEED = 42;

/** Records (questions) per split of each sample dataset: ~480 to train on, 160 held out. */
export const SAMPLE_SIZES: Readonly<Record<'train' | 'test', number>> = { train: 120, test: 40 };

function itemsFor(dataset: DatasetName, rng: Rng): SynthItem[] {
  const entry = CATALOG[dataset];
  switch (entry.format) {
    case 'yes_no':
      return [yesNoItem(rng)];
    case 'extractive':
      return [extractiveItem(rng)];
    case 'multiple_choice':
      return [entry.hasContext ? readingChoiceItem(rng) : multipleChoiceItem(rng)];
    case 'abstractive':
      return abstractiveItems(rng, 1 + rng.int(2));
  }
}

/** TSV lines of one item: one per reference answer, adjacent, as NarrativeQA does. */
function itemLines(item: SynthItem): string[] {
  const input = toUnifiedQaInput(item.fields);
  return item.answers.map((answer) => `${input}\t${answer}\n`);
}

class TsvWriter {
  private readonly stream;
  private buffered: string[] = [];
  lines = 0;
  bytes = 0;

  constructor(path: string) {
    this.stream = createWriteStream(path, { encoding: 'utf8' });
  }

  async write(line: string): Promise<void> {
    this.buffered.push(line);
    this.lines++;
    this.bytes += Buffer.byteLength(line);
    // Batch small writes; honour backpressure so a full-size run stays at a few MB of memory.
    if (this.buffered.length >= 512) await this.flush();
  }

  private async flush(): Promise<void> {
    const chunk = this.buffered.join('');
    this.buffered = [];
    if (!this.stream.write(chunk)) await once(this.stream, 'drain');
  }

  async close(): Promise<void> {
    await this.flush();
    this.stream.end();
    await once(this.stream, 'finish');
  }
}

export interface SplitStats {
  dataset: DatasetName;
  split: Split;
  /** Records (distinct inputs). */
  records: number;
  lines: number;
  bytes: number;
}

/** The demo samples: train and held-out test for one dataset per format; test inputs never occur in train. */
export async function generateSamples(outDir: string, seed = DEFAULT_SEED): Promise<SplitStats[]> {
  const stats: SplitStats[] = [];
  for (const dataset of Object.keys(SAMPLE_DATASETS) as SampleDatasetName[]) {
    const seen = new Set<string>();
    // Test first, so train is the split that skips collisions and test stays a fixed draw.
    for (const split of ['test', 'train'] as const) {
      const rng = createRng(seedFrom(seed, dataset, split));
      mkdirSync(join(outDir, dataset), { recursive: true });
      const writer = new TsvWriter(join(outDir, dataset, `${split}.tsv`));
      let records = 0;
      while (records < SAMPLE_SIZES[split]) {
        for (const item of itemsFor(dataset, rng)) {
          const input = toUnifiedQaInput(item.fields);
          if (seen.has(input) || records >= SAMPLE_SIZES[split]) continue;
          seen.add(input);
          records++;
          for (const line of itemLines(item)) await writer.write(line);
        }
      }
      await writer.close();
      stats.push({ dataset, split, records, lines: writer.lines, bytes: writer.bytes });
    }
  }
  return stats;
}

/** Lengthens the passage with filler until the input reaches `targetBytes` (answers stay derivable). */
function padded(item: SynthItem, targetBytes: number, rng: Rng): SynthItem {
  const context = item.fields.context;
  if (context === undefined) return item;
  const extra: string[] = [];
  let size = Buffer.byteLength(toUnifiedQaInput(item.fields));
  while (size < targetBytes) {
    const s = fillerSentence(rng);
    extra.push(s);
    size += s.length + 1;
  }
  if (extra.length === 0) return item;
  // Filler on both sides, so the facts are not always at the start of the passage.
  const cut = rng.int(extra.length + 1);
  const text = [...extra.slice(0, cut), context, ...extra.slice(cut)].join(' ');
  return { ...item, fields: { ...item.fields, context: text } };
}

/** All 11 datasets, every real split, `scale` × the real line counts (at least one line each). */
export async function generateScale(outDir: string, scale: number, seed = DEFAULT_SEED): Promise<SplitStats[]> {
  if (!(scale > 0)) throw new RangeError(`--scale must be a positive number, got ${scale}`);
  const stats: SplitStats[] = [];
  for (const dataset of DATASET_NAMES) {
    for (const split of datasetSplits(dataset)) {
      const file = CATALOG[dataset].splits[split]!;
      const target = Math.max(1, Math.round(file.lines * scale));
      const meanBytes = file.bytes / file.lines;
      const rng = createRng(seedFrom(seed, 'scale', dataset, split));
      mkdirSync(join(outDir, dataset), { recursive: true });
      const writer = new TsvWriter(join(outDir, dataset, `${split}.tsv`));
      let records = 0;
      while (writer.lines < target) {
        for (const raw of itemsFor(dataset, rng)) {
          // Uniform in [0.5, 1.5) × mean: same mean as the real file, some spread.
          const item = padded(raw, meanBytes * (0.5 + rng.next()), rng);
          const lines = itemLines(item).slice(0, target - writer.lines);
          if (lines.length === 0) break;
          records++;
          for (const line of lines) await writer.write(line);
        }
      }
      await writer.close();
      stats.push({ dataset, split, records, lines: writer.lines, bytes: writer.bytes });
    }
  }
  return stats;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { out: { type: 'string' }, scale: { type: 'string' }, seed: { type: 'string' } },
    strict: true,
  });
  if (!values.out) throw new TypeError('usage: generate.ts --out DIR [--scale F] [--seed S]');
  const seed = values.seed === undefined ? DEFAULT_SEED : Number(values.seed);
  if (!Number.isInteger(seed)) throw new TypeError(`--seed must be an integer, got "${values.seed}"`);
  const stats =
    values.scale === undefined
      ? await generateSamples(values.out, seed)
      : await generateScale(values.out, Number(values.scale), seed);
  if (values.scale === undefined)
    for (const c of generateCustomSamples(values.out, seed)) console.log(`${c.file}\t${c.records} records`);
  for (const s of stats)
    console.log(`${s.dataset}/${s.split}.tsv\t${s.records} records\t${s.lines} lines\t${s.bytes} bytes`);
  console.log(
    `total\t${stats.reduce((n, s) => n + s.records, 0)} records\t${stats.reduce((n, s) => n + s.lines, 0)} lines`,
  );
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
