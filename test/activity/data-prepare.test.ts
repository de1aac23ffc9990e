// prepareData on raw splits with every kind of bad line the real files could carry, in a real file
// store, run for real inside MockActivityEnvironment (which supplies its heartbeat context).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import {
  inputKey,
  prepareData,
  preparedKeyFor,
  type PreparedManifest,
  type PrepareDataInput,
} from '../../activities/prepare';
import { dataSchema } from '../../src/config/schema';
import type { QaRecord } from '../../src/data';
import { joinKey, openStore, type ObjectRef } from '../../src/store';
import type { PreparedData } from '../../src/contracts';
import { SAMPLES } from '../helpers/fixtures';

const root = mkdtempSync(join(tmpdir(), 'data-prepare-'));
process.env.PEFTGRID_DATA_DIR = join(root, 'data');
after(() => rmSync(root, { recursive: true, force: true }));

const SEP = '\\n';
const sample = (dataset: string, split: string) => readFileSync(join(SAMPLES, dataset, `${split}.tsv`));
const lineCount = (b: Buffer) => b.toString('latin1').split('\n').length - 1;

// boolq/train: the 120 good sample lines, then one line of each kind of damage, then the file is
// cut inside its last line (no newline): a truncated download of a mirror nobody checksummed.
const boolqTrainGood = sample('boolq', 'train');
const firstBad = lineCount(boolqTrainGood) + 1;
const boolqTrain = Buffer.concat([
  boolqTrainGood,
  Buffer.from(`is the caf`),
  Buffer.from([0xc3, 0x28, 0xff]),
  Buffer.from(` open? ${SEP} it is.\tyes\n`), // invalid UTF-8
  Buffer.from(`is a missing tab fatal? ${SEP} no, it is counted. yes\n`),
  Buffer.from(`is the answer empty? ${SEP} it is.\t  \n`),
  Buffer.from(`is this line huge? ${SEP} ${'very '.repeat(210_000)}\tyes\n`), // ~1 MB
  Buffer.from(`was the download cut? ${SEP} it was cut inside the answer.\tyes, in the mid`), // cut inside its answer
]);
const expectedBoolqMalformed = [
  [firstBad, 'invalid-utf8'],
  [firstBad + 1, 'missing-tab'],
  [firstBad + 2, 'empty-answer'],
  [firstBad + 3, 'line-too-long'],
  [firstBad + 4, 'truncated-line'],
];

// ai2_science_middle (multiple choice, like arc_easy): its train split carries 7 arc_easy *test*
// questions verbatim. Record ids differ (they include the dataset), inputs do not: train must drop them.
const arcTest = sample('arc_easy', 'test').toString('utf8').split('\n').filter(Boolean);
const leaked = arcTest.slice(0, 7);
const ai2Own = sample('arc_easy', 'train').toString('utf8').split('\n').filter(Boolean);
const ai2Train = Buffer.from([...ai2Own.slice(0, 30), ...leaked, ...ai2Own.slice(30, 60)].join('\n') + '\n');
// ai2's test questions are arc_easy train lines 100–104: arc_easy's train must drop those 5 too.
const ai2Test = Buffer.from(ai2Own.slice(100, 105).join('\n') + '\n');
// arc_easy's own train also repeats 3 of its test questions.
const arcTrain = Buffer.concat([sample('arc_easy', 'train'), Buffer.from(arcTest.slice(10, 13).join('\n') + '\n')]);

const RAW: Record<string, Buffer> = {
  'boolq/train': boolqTrain,
  'boolq/test': sample('boolq', 'test'),
  'arc_easy/train': arcTrain,
  'arc_easy/test': sample('arc_easy', 'test'),
  'ai2_science_middle/train': ai2Train,
  'ai2_science_middle/test': ai2Test,
};

// Every test record is sampled (40 + 40 + 5 < 3 × 40), so every test input seen in a train file must go.
const data = dataSchema.parse({
  datasets: ['boolq', 'arc_easy', 'ai2_science_middle'],
  trainSplit: 'train',
  testSplit: 'test',
  testSamples: 120,
  maxTrainPerDataset: 1000,
  seed: 7,
});

let stores = 0;
async function stage(raw = RAW): Promise<{ dir: string; input: PrepareDataInput }> {
  const dir = join(root, `store-${++stores}`);
  const store = openStore(`file://${dir}`);
  const refs: PrepareDataInput['raw'] = [];
  for (const [name, bytes] of Object.entries(raw)) {
    const [dataset, split] = name.split('/') as [string, string];
    refs.push({
      dataset,
      split,
      ref: await store.put(joinKey('datasets', 'raw', 'test', dataset, `${split}.tsv`), bytes),
    });
  }
  return { dir, input: { storeUrl: `file://${dir}`, dataKey: 'k1', data, raw: refs } };
}

async function run(input: PrepareDataInput): Promise<PreparedData> {
  const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
  return env.run<[PrepareDataInput], PreparedData, typeof prepareData>(prepareData, input);
}

const readJsonl = (dir: string, ref: ObjectRef): QaRecord[] =>
  readFileSync(join(dir, ref.key), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as QaRecord);

test('bad lines are counted, named and located in the manifest; train never holds a test input', async () => {
  const { dir, input } = await stage();
  const result = await run(input);
  const manifest = JSON.parse(
    readFileSync(join(dir, 'datasets/prepared', preparedKeyFor(input), 'manifest.json'), 'utf8'),
  ) as PreparedManifest;

  const boolq = manifest.malformed['boolq/train']!;
  assert.deepEqual(
    boolq.first.map((m) => [m.line, m.reason]),
    expectedBoolqMalformed,
  );
  assert.equal(boolq.count, 5);
  assert.deepEqual(boolq.byReason, {
    'invalid-utf8': 1,
    'missing-tab': 1,
    'empty-answer': 1,
    'line-too-long': 1,
    'truncated-line': 1,
  });
  assert.match(boolq.first[4]!.detail, /no newline: the file looks cut short/);
  for (const split of [
    'boolq/test',
    'arc_easy/train',
    'arc_easy/test',
    'ai2_science_middle/train',
    'ai2_science_middle/test',
  ]) {
    assert.equal(manifest.malformed[split]?.count, 0, split);
  }
  assert.equal(result.stats.malformed, 5);
  assert.deepEqual(manifest.stats, result.stats);

  const train = readJsonl(dir, result.train);
  const test = readJsonl(dir, result.test);
  assert.deepEqual(result.stats.test, { boolq: 40, arc_easy: 40, ai2_science_middle: 5 });
  assert.equal(test.length, 85);
  const testInputs = new Set(test.map(inputKey));
  assert.deepEqual(
    train.filter((r) => testInputs.has(inputKey(r))).map((r) => r.question),
    [],
  );
  // arc_easy: its own 3 repeats + ai2's 5 test questions; ai2: the 7 leaked arc_easy test questions.
  assert.deepEqual(manifest.excludedFromTrain, { boolq: 0, arc_easy: 8, ai2_science_middle: 7 });
  // Nothing else is lost: 120 good boolq lines, arc_easy 120 + 3 − 8, ai2 its 60 own lines.
  assert.deepEqual(result.stats.train, { boolq: 120, arc_easy: 115, ai2_science_middle: 60 });
  assert.equal(train.length, 295);
  // The cut line would parse as a record with a wrong answer; it never reaches train or test.
  assert.ok(![...train, ...test].some((r) => r.question.startsWith('was the download cut?')));
  assert.equal(result.train.key, `datasets/prepared/${preparedKeyFor(input)}/train.jsonl`);
  assert.equal(result.test.key, `datasets/prepared/${preparedKeyFor(input)}/test.jsonl`);
});

test('the same inputs give the same bytes under the same keys, and a committed preparation is never redone', async () => {
  const a = await stage();
  const b = await stage();
  const first = await run(a.input);
  const other = await run(b.input);
  assert.deepEqual(other, first, 'another store, same inputs: same keys, sizes and sha256');

  // Remove the raw inputs: a second call that re-read them would fail; one that trusts the manifest does not.
  rmSync(join(a.dir, 'datasets', 'raw'), { recursive: true });
  const t0 = performance.now();
  const again = await run(a.input);
  const ms = performance.now() - t0;
  assert.deepEqual(again, first);
  assert.ok(ms < 2000, `second call took ${ms.toFixed(0)} ms`);

  // A different seed is a different sample (the test can tell samples apart).
  const c = await stage();
  const reseeded = await run({ ...c.input, dataKey: 'k2', data: { ...data, seed: 8, testSamples: 30 } });
  assert.notEqual(reseeded.test.sha256, first.test.sha256);
});

/** Runs prepareData expecting the typed failure; returns it. */
async function failure(input: PrepareDataInput): Promise<ApplicationFailure> {
  try {
    await run(input);
  } catch (err) {
    assert.ok(err instanceof ApplicationFailure, String(err));
    assert.equal(err.type, 'InvalidData');
    assert.equal(err.nonRetryable, true);
    return err;
  }
  assert.fail('expected InvalidData');
}

// Before: a wholly malformed split was a warning and 0 records; the message then only counted lines.
test('a split with nothing usable is a non-retryable InvalidData naming the dataset and the reasons, not a crash', async () => {
  const junk = Buffer.concat([
    Buffer.from('no tab\n'),
    Buffer.from([0xff, 0xfe, 0x09, 0x41, 0x0a]),
    Buffer.from('\t\n'),
  ]);
  const { input } = await stage({ 'boolq/train': junk, 'boolq/test': junk });
  const err = await failure({ ...input, data: { ...data, datasets: ['boolq'] } });
  assert.match(
    err.message,
    /^dataset boolq, split test \(datasets\/raw\/test\/boolq\/test\.tsv\): none of its 3 lines is a usable record/,
  );
  assert.match(
    err.message,
    /missing-tab ×1, invalid-utf8 ×1, empty-line ×1\); first: line 1 missing-tab: no tab between input and answer/,
  );
});

test('one wholly malformed dataset among good ones fails the preparation; it is not left out silently', async () => {
  // arc_easy's train "file" is an HTML error page served with status 200 by a broken mirror.
  const html = Buffer.from(
    '<!doctype html>\n<html><head><title>503 Service Unavailable</title></head>\n<body>try again later</body></html>\n',
  );
  const { input } = await stage({ ...RAW, 'arc_easy/train': html });
  const err = await failure(input);
  assert.match(
    err.message,
    /^dataset arc_easy, split train \(.*arc_easy\/train\.tsv\): none of its 3 lines is a usable record \(missing-tab ×3\)/,
  );
  const [details] = err.details as [
    { dataset: string; split: string; lines: number; byReason: Record<string, number>; first: { line: number }[] },
  ];
  assert.deepEqual(
    [details.dataset, details.split, details.lines, details.byReason],
    ['arc_easy', 'train', 3, { 'missing-tab': 3 }],
  );
  assert.deepEqual(
    details.first.map((m) => m.line),
    [1, 2, 3],
  );

  const empty = await stage({ ...RAW, 'ai2_science_middle/test': Buffer.alloc(0) });
  assert.match(
    (await failure(empty.input)).message,
    /^dataset ai2_science_middle, split test .*: the file is empty \(0 lines\)/,
  );
});

test('a partially malformed split still counts: its good lines are kept, its bad ones reported', async () => {
  // One good line among junk is a usable dataset (the first test checks the counts in detail).
  const good = sample('boolq', 'test').toString('utf8').split('\n')[0]!;
  const { dir, input } = await stage({ ...RAW, 'boolq/test': Buffer.from(`no tab here\n${good}\n\t\n`) });
  const result = await run(input);
  assert.equal(result.stats.test.boolq, 1);
  const manifest = JSON.parse(
    readFileSync(join(dir, 'datasets/prepared', preparedKeyFor(input), 'manifest.json'), 'utf8'),
  ) as PreparedManifest;
  assert.deepEqual(manifest.malformed['boolq/test']!.byReason, { 'missing-tab': 1, 'empty-line': 1 });
});
