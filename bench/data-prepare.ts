/**
 * Full-size prepare: the real prepareData activity (streaming parse + seeded reservoir sampling,
 * run inside MockActivityEnvironment against a file store) over the generator's synthetic
 * UnifiedQA at each --scale, one child process per scale so each peak RSS is its own.
 *
 *   node --import tsx bench/data-prepare.ts [--scales 0.1,1] [--max-train 2000] [--test-samples 1000]
 *
 * Data: `datasets/generate.ts --scale F --seed 42` (all 11 datasets, every split; 462,516 lines at
 * F = 1), cached under .data/bench/unifiedqa-scale-<F>/ and hard-linked into a scratch store. The
 * config is the default one (train split `train`, test split `dev`, 2,000 train per dataset, 1,000
 * test): prepare reads train and dev, i.e. every line except the 31,317 of the unlabeled `test`
 * splits. A baseline child that only loads the same modules gives the RSS floor. Memory is
 * flat when peak RSS minus baseline does not grow with the scale.
 */
import { execFile } from 'node:child_process';
import {
  createReadStream,
  copyFileSync,
  linkSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  existsSync,
} from 'node:fs';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { prepareData, type PrepareDataInput } from '../activities/prepare';
import { CATALOG, DATASET_NAMES } from '../src/data/catalog';
import { dataSchema } from '../src/config/schema';
import { sha256File } from '../src/store';
import type { PreparedData } from '../src/contracts';
import { BENCH_ROOT, ensureScaleData, REPO_ROOT } from './data-scale';

interface ChildResult {
  scale: number;
  lines: number;
  bytes: number;
  wallSec: number;
  peakRssMB: number;
  sampledPeakRssMB: number;
  peakHeapMB: number;
  train: number;
  test: number;
  malformed: number;
}

const SPLITS = ['train', 'dev'] as const;

/** sha256 of each raw file, cached next to the data (keyed by size and mtime) so reruns skip it. */
async function rawRefs(dir: string, storeDir: string): Promise<PrepareDataInput['raw']> {
  const cachePath = join(dir, '.sha256.json');
  const cache = (existsSync(cachePath) ? JSON.parse(readFileSync(cachePath, 'utf8')) : {}) as Record<string, string>;
  const raw: PrepareDataInput['raw'] = [];
  for (const dataset of DATASET_NAMES) {
    for (const split of SPLITS) {
      if (!CATALOG[dataset].splits[split]) continue;
      const src = join(dir, dataset, `${split}.tsv`);
      const st = statSync(src);
      const id = `${dataset}/${split}:${st.size}:${st.mtimeMs}`;
      cache[id] ??= await sha256File(src);
      const key = `datasets/raw/bench/${dataset}/${split}.tsv`;
      mkdirSync(join(storeDir, 'datasets/raw/bench', dataset), { recursive: true });
      try {
        linkSync(src, join(storeDir, key)); // no copy: same bytes, same filesystem
      } catch {
        copyFileSync(src, join(storeDir, key));
      }
      raw.push({ dataset, split, ref: { key, bytes: st.size, sha256: cache[id] } });
    }
  }
  writeFileSync(cachePath, JSON.stringify(cache));
  return raw;
}

async function child(
  scale: number,
  maxTrain: number,
  testSamples: number,
): Promise<ChildResult | { baselineRssMB: number }> {
  if (scale === 0) return { baselineRssMB: process.resourceUsage().maxRSS / 1024 };
  const dir = await ensureScaleData(scale);
  const run = join(BENCH_ROOT, `prepare-run-${process.pid}`);
  const storeDir = join(run, 'store');
  process.env.PEFTGRID_DATA_DIR = join(run, 'data');
  try {
    const raw = await rawRefs(dir, storeDir);
    const data = dataSchema.parse({
      trainSplit: 'train',
      testSplit: 'dev',
      maxTrainPerDataset: maxTrain,
      testSamples,
      seed: 42,
    });
    const input: PrepareDataInput = { storeUrl: `file://${storeDir}`, dataKey: `bench-${scale}`, data, raw };
    let sampled = 0;
    let heap = 0;
    const sample = setInterval(() => {
      const m = process.memoryUsage();
      sampled = Math.max(sampled, m.rss);
      heap = Math.max(heap, m.heapUsed);
    }, 25);
    const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
    const t0 = performance.now();
    const out = await env.run<[PrepareDataInput], PreparedData, typeof prepareData>(prepareData, input);
    const wallSec = (performance.now() - t0) / 1000;
    const peakRss = process.resourceUsage().maxRSS; // before anything else touches memory
    clearInterval(sample);
    let lines = 0;
    for (const r of raw) lines += await countLines(join(dir, r.dataset, `${r.split}.tsv`));
    const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
    return {
      scale,
      lines,
      bytes: raw.reduce((s, r) => s + r.ref.bytes, 0),
      wallSec,
      peakRssMB: peakRss / 1024,
      sampledPeakRssMB: sampled / 2 ** 20,
      peakHeapMB: heap / 2 ** 20,
      train: sum(out.stats.train),
      test: sum(out.stats.test),
      malformed: out.stats.malformed,
    };
  } finally {
    rmSync(run, { recursive: true, force: true });
  }
}

async function countLines(path: string): Promise<number> {
  let n = 0;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) n++;
  }
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scales: { type: 'string' },
      'max-train': { type: 'string' },
      'test-samples': { type: 'string' },
      child: { type: 'string' },
    },
    strict: true,
  });
  const maxTrain = Number(values['max-train'] ?? 2000);
  const testSamples = Number(values['test-samples'] ?? 1000);
  if (values.child !== undefined) {
    console.log(JSON.stringify(await child(Number(values.child), maxTrain, testSamples)));
    return;
  }
  const scales = (values.scales ?? '0.1,1').split(',').map(Number);
  for (const s of scales) await ensureScaleData(s); // generation is not part of any measurement
  const runChild = async (scale: number) => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO_ROOT, 'bench', 'data-prepare.ts'),
        '--child',
        String(scale),
        '--max-train',
        String(maxTrain),
        '--test-samples',
        String(testSamples),
      ],
      { cwd: REPO_ROOT, maxBuffer: 1 << 20, env: { ...process.env, PEFTGRID_LOG_LEVEL: 'warn' } },
    );
    return JSON.parse(stdout.trim().split('\n').pop()!) as unknown;
  };
  const { baselineRssMB } = (await runChild(0)) as { baselineRssMB: number };
  const rows: ChildResult[] = [];
  for (const s of scales) rows.push((await runChild(s)) as ChildResult);

  console.log(
    `maxTrainPerDataset ${maxTrain}, testSamples ${testSamples}, splits train + dev; baseline RSS (modules loaded, nothing run) ${baselineRssMB.toFixed(0)} MB\n`,
  );
  console.log(
    '| scale | lines read | MB read | wall s | lines/s | MB/s | peak RSS MB | peak RSS − baseline MB | peak heap MB | train / test records |',
  );
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    console.log(
      `| ${r.scale} | ${r.lines.toLocaleString('en-US')} | ${(r.bytes / 1e6).toFixed(0)} | ${r.wallSec.toFixed(1)} | ${Math.round(r.lines / r.wallSec).toLocaleString('en-US')} | ${(r.bytes / 1e6 / r.wallSec).toFixed(1)} | ${r.peakRssMB.toFixed(0)} | ${(r.peakRssMB - baselineRssMB).toFixed(0)} | ${r.peakHeapMB.toFixed(0)} | ${r.train} / ${r.test} |`,
    );
  }
  if (rows.length >= 2) {
    const [a, b] = [rows[0]!, rows[rows.length - 1]!];
    console.log(
      `\n${b.scale}/${a.scale}: input ×${(b.bytes / a.bytes).toFixed(1)}, wall ×${(b.wallSec / a.wallSec).toFixed(2)}, peak RSS ×${(b.peakRssMB / a.peakRssMB).toFixed(2)}, peak RSS above baseline ×${((b.peakRssMB - baselineRssMB) / (a.peakRssMB - baselineRssMB)).toFixed(2)}`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
