import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  CATALOG,
  DATASET_NAMES,
  SAMPLE_DATASETS,
  UNIFIEDQA_BASE_URL,
  UNIFIEDQA_TOTAL_LINES,
  datasetSplits,
  datasetUrl,
  getDataset,
  sampleBaseUrl,
} from '../../src/data';

test('the catalog holds the 11 datasets of the study with their formats', () => {
  assert.equal(DATASET_NAMES.length, 11);
  const formats = Object.fromEntries(DATASET_NAMES.map((n) => [n, CATALOG[n].format]));
  assert.deepEqual(formats, {
    narrativeqa: 'abstractive',
    ai2_science_middle: 'multiple_choice',
    ai2_science_elementary: 'multiple_choice',
    arc_hard: 'multiple_choice',
    arc_easy: 'multiple_choice',
    mctest_corrected_the_separator: 'multiple_choice',
    squad1_1: 'extractive',
    squad2: 'extractive',
    boolq: 'yes_no',
    race_string: 'multiple_choice',
    openbookqa: 'multiple_choice',
  });
  for (const name of DATASET_NAMES) assert.equal(CATALOG[name].name, name);
});

test('462,516 instances in all; every dataset has train and dev, only some have test', () => {
  assert.equal(UNIFIEDQA_TOTAL_LINES, 462_516);
  for (const name of DATASET_NAMES) {
    assert.ok(CATALOG[name].splits.train && CATALOG[name].splits.dev, name);
    for (const file of Object.values(CATALOG[name].splits)) assert.match(file.sha256, /^[0-9a-f]{64}$/);
  }
  const withoutTest = DATASET_NAMES.filter((n) => !datasetSplits(n).includes('test'));
  assert.deepEqual(withoutTest.sort(), ['boolq', 'mctest_corrected_the_separator', 'squad1_1', 'squad2']);
  assert.deepEqual(datasetSplits('arc_easy'), ['train', 'dev', 'test']);
});

test('datasetUrl works for every scheme and keeps the base intact', () => {
  assert.equal(
    datasetUrl(UNIFIEDQA_BASE_URL, 'boolq', 'dev'),
    'https://storage.googleapis.com/unifiedqa/data/boolq/dev.tsv',
  );
  assert.equal(datasetUrl('http://localhost:8080/', 'arc_easy', 'train'), 'http://localhost:8080/arc_easy/train.tsv');
  assert.equal(datasetUrl('file:///data/uqa//', 'squad2', 'dev'), 'file:///data/uqa/squad2/dev.tsv');
  assert.equal(
    datasetUrl('s3://bucket/prefix/unifiedqa', 'race_string', 'test'),
    's3://bucket/prefix/unifiedqa/race_string/test.tsv',
  );
  assert.throws(() => datasetUrl('/no/scheme', 'boolq', 'dev'), TypeError);
});

test('getDataset rejects unknown names with the valid ones in the message', () => {
  assert.equal(getDataset('boolq').format, 'yes_no');
  assert.throws(() => getDataset('squad3'), /unknown UnifiedQA dataset "squad3"; expected one of narrativeqa, /);
});

test('the sample source resolves to the shipped files, one dataset per format', () => {
  for (const [name, splits] of Object.entries(SAMPLE_DATASETS)) {
    for (const split of splits) {
      const path = fileURLToPath(datasetUrl(sampleBaseUrl(), name, split));
      assert.ok(existsSync(path), path);
    }
  }
  const formats = new Set(Object.keys(SAMPLE_DATASETS).map((n) => getDataset(n).format));
  assert.deepEqual([...formats].sort(), ['abstractive', 'extractive', 'multiple_choice', 'yes_no']);
});
