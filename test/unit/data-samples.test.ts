import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSamples, generateScale, SAMPLE_SIZES } from '../../datasets/generate';
import {
  CATALOG,
  DATASET_NAMES,
  SAMPLE_DATASETS,
  SAMPLES_DIR,
  datasetSplits,
  parseUnifiedQa,
  type QaRecord,
  type SampleDatasetName,
} from '../../src/data';

const SAMPLE_NAMES = Object.keys(SAMPLE_DATASETS) as SampleDatasetName[];

function load(dir: string, dataset: SampleDatasetName, split: string): { text: string; records: QaRecord[] } {
  const text = readFileSync(join(dir, dataset, `${split}.tsv`), 'utf8');
  const parsed = parseUnifiedQa(text, dataset);
  assert.deepEqual(parsed.malformed, [], `${dataset}/${split}`);
  return { text, records: parsed.records };
}

test('the shipped samples are exactly what the seeded generator writes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-samples-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await generateSamples(dir);
  for (const dataset of SAMPLE_NAMES) {
    for (const split of SAMPLE_DATASETS[dataset]) {
      const want = readFileSync(join(SAMPLES_DIR, dataset, `${split}.tsv`));
      assert.ok(
        readFileSync(join(dir, dataset, `${split}.tsv`)).equals(want),
        `${dataset}/${split}.tsv differs: regenerate datasets/samples`,
      );
    }
  }
  const other = mkdtempSync(join(tmpdir(), 'pg-samples-'));
  t.after(() => rmSync(other, { recursive: true, force: true }));
  await generateSamples(other, 7);
  assert.notEqual(
    readFileSync(join(other, 'boolq', 'train.tsv'), 'utf8'),
    readFileSync(join(dir, 'boolq', 'train.tsv'), 'utf8'),
  );
});

test('samples: sizes, UnifiedQA conventions, and no test input in train', () => {
  for (const dataset of SAMPLE_NAMES) {
    const train = load(SAMPLES_DIR, dataset, 'train');
    const test = load(SAMPLES_DIR, dataset, 'test');
    assert.equal(train.records.length, SAMPLE_SIZES.train, dataset);
    assert.equal(test.records.length, SAMPLE_SIZES.test, dataset);
    const trainIds = new Set(train.records.map((r) => r.id));
    assert.deepEqual(
      test.records.filter((r) => trainIds.has(r.id)),
      [],
      `${dataset}: test leaks into train`,
    );
    for (const { text } of [train, test]) {
      assert.equal(text, text.toLowerCase(), `${dataset} is lowercased`);
      for (const line of text.trimEnd().split('\n')) assert.match(line, /^[^\t\n]+ \\n [^\t\n]+\t[^\t\n]+$/, line);
    }
  }
});

test('samples: every answer is short and derivable from the input', () => {
  for (const dataset of SAMPLE_NAMES) {
    for (const split of SAMPLE_DATASETS[dataset]) {
      for (const r of load(SAMPLES_DIR, dataset, split).records) {
        for (const a of r.answers) assert.ok(a.split(' ').length <= 6, `${r.id}: "${a}" is not short`);
        switch (r.format) {
          case 'yes_no':
            assert.ok(['yes', 'no'].includes(r.answers[0]!), r.id);
            break;
          case 'multiple_choice':
            assert.ok(r.choices?.includes(r.answers[0]!), r.id);
            assert.equal(r.choices?.length, 4);
            break;
          case 'extractive':
            assert.ok(r.context?.includes(r.answers[0]!), r.id);
            break;
          case 'abstractive':
            assert.ok(r.answers.length >= 2, `${r.id}: NarrativeQA-style items carry two reference answers`);
            assert.ok(
              r.answers.some((a) => r.context?.includes(a)),
              r.id,
            );
            break;
        }
      }
    }
  }
  // A learnable yes/no task must not be one-sided.
  const yes = load(SAMPLES_DIR, 'boolq', 'train').records.filter((r) => r.answers[0] === 'yes').length;
  assert.ok(yes > 40 && yes < 80, `yes answers: ${yes} of 120`);
});

test('narrativeqa samples repeat each question once per reference answer, on adjacent lines', () => {
  const { text, records } = load(SAMPLES_DIR, 'narrativeqa', 'train');
  const lines = text.trimEnd().split('\n');
  assert.equal(
    lines.length,
    records.reduce((n, r) => n + r.answers.length, 0),
  );
  assert.equal(lines[0]!.split('\t')[0], lines[1]!.split('\t')[0]);
});

test('--scale writes all 11 datasets with their real splits and proportional line counts', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-scale-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const scale = 0.002;
  const stats = await generateScale(dir, scale);
  assert.deepEqual(
    stats.map((s) => `${s.dataset}/${s.split}`),
    DATASET_NAMES.flatMap((d) => datasetSplits(d).map((s) => `${d}/${s}`)),
  );
  for (const s of stats) {
    const file = CATALOG[s.dataset].splits[s.split]!;
    assert.equal(s.lines, Math.max(1, Math.round(file.lines * scale)), `${s.dataset}/${s.split}`);
    const text = readFileSync(join(dir, s.dataset, `${s.split}.tsv`), 'utf8');
    const parsed = parseUnifiedQa(text, s.dataset);
    assert.equal(parsed.total, s.lines);
    assert.deepEqual(parsed.malformed, [], `${s.dataset}/${s.split}`);
    assert.equal(parsed.records.length, s.records);
  }
  // Passages are padded towards the real files' mean line length.
  const narr = stats.find((s) => s.dataset === 'narrativeqa' && s.split === 'train')!;
  const realMean = CATALOG.narrativeqa.splits.train!.bytes / CATALOG.narrativeqa.splits.train!.lines;
  assert.ok(
    Math.abs(narr.bytes / narr.lines - realMean) / realMean < 0.25,
    `mean ${narr.bytes / narr.lines} vs ${realMean}`,
  );
  await assert.rejects(generateScale(dir, 0), RangeError);
});
