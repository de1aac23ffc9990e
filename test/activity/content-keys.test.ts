/**
 * Activity tier for content identity (docs/contracts.md §3): an edited file:// source is noticed
 * and committed under a new key, preparation is keyed by the raw bytes, the model fingerprint
 * follows bytes (not paths or mtimes), and results are saved and found under the evaluation key.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { downloadDataset, type DownloadDatasetInput } from '../../activities/download';
import { onnxPrefixFor } from '../../activities/export';
import { modelFingerprint } from '../../activities/model-fingerprint';
import { preparedKeyFor, prepareData, type PrepareDataInput } from '../../activities/prepare';
import { lookupRunResult, saveRunResult } from '../../activities/results';
import { dataSchema } from '../../src/config/schema';
import type { ObjectRef } from '../../src/store';
import type { PreparedData, RunIdentity, RunResult } from '../../src/contracts';
import { SAMPLES } from '../helpers/fixtures';

const root = mkdtempSync(join(tmpdir(), 'content-keys-'));
process.env.PEFTGRID_DATA_DIR = join(root, 'data');
after(() => rmSync(root, { recursive: true, force: true }));

const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
const env = () => new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
const download = (input: DownloadDatasetInput) =>
  env().run<[DownloadDatasetInput], ObjectRef, typeof downloadDataset>(downloadDataset, input);
const prepare = (input: PrepareDataInput) =>
  env().run<[PrepareDataInput], PreparedData, typeof prepareData>(prepareData, input);

test('an edited file:// split is fetched again under a new content key; an untouched or merely touched one is not', async () => {
  const src = join(root, 'src');
  mkdirSync(join(src, 'boolq'), { recursive: true });
  const file = join(src, 'boolq', 'train.tsv');
  const original = readFileSync(join(SAMPLES, 'boolq', 'train.tsv'));
  writeFileSync(file, original);
  const store = join(root, 'store-dl');
  const input = { storeUrl: `file://${store}`, baseUrl: `file://${src}`, dataset: 'boolq', split: 'train' };

  const first = await download(input);
  assert.equal(first.sha256, sha(original));
  assert.match(first.key, /\/boolq\/train-[0-9a-f]{16}\.tsv$/);
  assert.deepEqual(await download(input), first);

  // Touched, same bytes: re-hashed, found equal, the same commit.
  const later = new Date(Date.now() + 5000);
  utimesSync(file, later, later);
  assert.deepEqual(await download(input), first);

  // Edited in place, same size even: a new sha256, a new key; the old object stays for old references.
  const edited = Buffer.from(original);
  const at = edited.indexOf(0x09) + 1;
  edited[at] = edited[at]! ^ 0x20; // flip the case of the first answer's first letter
  writeFileSync(file, edited);
  const second = await download(input);
  assert.equal(second.sha256, sha(edited));
  assert.notEqual(second.key, first.key);
  assert.ok(readFileSync(join(store, first.key)).equals(original));
  assert.ok(readFileSync(join(store, second.key)).equals(edited));
});

test("preparation is keyed by the raw files' sha256: the same data config over edited raw data is prepared anew", async () => {
  const storeDir = join(root, 'store-prep');
  const { openStore } = await import('../../src/store');
  const store = openStore(`file://${storeDir}`);
  const train = readFileSync(join(SAMPLES, 'boolq', 'train.tsv'), 'utf8');
  const test = readFileSync(join(SAMPLES, 'boolq', 'test.tsv'), 'utf8');
  const data = dataSchema.parse({
    datasets: ['boolq'],
    trainSplit: 'train',
    testSplit: 'test',
    testSamples: 4,
    maxTrainPerDataset: 200,
    seed: 1,
  });
  const input = async (trainText: string, tag: string): Promise<PrepareDataInput> => ({
    storeUrl: store.url,
    dataKey: 'same-config',
    data,
    raw: [
      { dataset: 'boolq', split: 'train', ref: await store.put(`datasets/raw/t/${tag}-train.tsv`, trainText) },
      { dataset: 'boolq', split: 'test', ref: await store.put(`datasets/raw/t/${tag}-test.tsv`, test) },
    ],
  });
  const a = await input(train, 'a');
  const b = await input(train.replaceAll('\tyes', '\tno'), 'b');
  assert.notEqual(preparedKeyFor(b), preparedKeyFor(a));
  const first = await prepare(a);
  const second = await prepare(b);
  assert.notEqual(second.train.key, first.train.key);
  assert.notEqual(second.train.sha256, first.train.sha256, 'the edited answers reached the prepared data');
  assert.equal(second.test.sha256, first.test.sha256, 'the test split did not change');
  // The same raw bytes under other object keys: the same preparation.
  assert.equal(preparedKeyFor(await input(train, 'c')), preparedKeyFor(a));
});

function fakeModel(dir: string, weights: Buffer): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), '{"model_type":"llama"}');
  writeFileSync(join(dir, 'tokenizer.json'), '{}');
  writeFileSync(join(dir, 'model.safetensors'), weights);
  writeFileSync(join(dir, 'README.md'), 'not part of the model');
}

test('the model fingerprint follows the bytes: not the path, not mtimes, and sees a replacement that keeps them', async () => {
  const w1 = Buffer.alloc(4096, 1);
  const w2 = Buffer.alloc(4096, 2);
  fakeModel(join(root, 'm-a'), w1);
  fakeModel(join(root, 'm-b'), w1);
  const a = await modelFingerprint(join(root, 'm-a'));
  assert.equal(a.basis, 'content');
  assert.match(a.sha256, /^[0-9a-f]{64}$/);
  assert.equal((await modelFingerprint(join(root, 'm-b'))).sha256, a.sha256, 'same bytes elsewhere: same fingerprint');
  writeFileSync(join(root, 'm-a', 'README.md'), 'edited notes');
  assert.equal(
    (await modelFingerprint(join(root, 'm-a'))).sha256,
    a.sha256,
    'files that do not define the model are ignored',
  );

  // Replace the weights with other bytes of the same size and restore the old mtime (as cp -p or
  // rsync -a would): the per-worker cache must not answer with the old fingerprint.
  const weights = join(root, 'm-a', 'model.safetensors');
  const { mtime, atime } = statSync(weights);
  rmSync(weights);
  writeFileSync(weights, w2);
  utimesSync(weights, atime, mtime);
  const replaced = await modelFingerprint(join(root, 'm-a'));
  assert.notEqual(replaced.sha256, a.sha256);

  // A whole directory replaced by another model (another seed) at the same path.
  rmSync(join(root, 'm-b'), { recursive: true });
  cpSync(join(root, 'm-a'), join(root, 'm-b'), { recursive: true });
  assert.equal((await modelFingerprint(join(root, 'm-b'))).sha256, replaced.sha256);

  const hub = await modelFingerprint('HuggingFaceTB/SmolLM2-135M-Instruct');
  assert.equal(hub.basis, 'name');
  assert.notEqual(hub.sha256, (await modelFingerprint('HuggingFaceTB/SmolLM2-360M-Instruct')).sha256);
});

test('a large weight file is fingerprinted from its header and samples: a changed block is seen, cheaply', async () => {
  const dir = join(root, 'm-large');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), '{}');
  const header = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [18874368], data_offsets: [0, 75497472] } }));
  const size = 8 + header.length + 75497472; // > 64 MiB: sampled
  const file = join(dir, 'model-00001-of-00001.safetensors');
  const fd = openSync(file, 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  writeSync(fd, len, 0, 8, 0);
  writeSync(fd, header, 0, header.length, 8);
  writeSync(fd, Buffer.alloc(1), 0, 1, size - 1);
  closeSync(fd);
  const t0 = performance.now();
  const before = await modelFingerprint(dir);
  const ms = performance.now() - t0;
  assert.ok(ms < 2000, `fingerprinting a 72 MiB shard took ${ms.toFixed(0)} ms: it should read a few MiB`);
  // Block 32 of 64 starts at floor(32 × (size − 64 KiB) / 63): write into it.
  const fd2 = openSync(file, 'r+');
  writeSync(fd2, Buffer.from('changed'), 0, 7, Math.floor((32 * (size - 65536)) / 63) + 100);
  closeSync(fd2);
  assert.notEqual((await modelFingerprint(dir)).sha256, before.sha256);
});

test('the base-model ONNX export is addressed by the model fingerprint when it is known', () => {
  const base = { runKey: null, modelName: 'tiny', modelPath: '/models/tiny' };
  assert.notEqual(
    onnxPrefixFor({ ...base, modelHash: 'a'.repeat(64) }),
    onnxPrefixFor({ ...base, modelHash: 'b'.repeat(64) }),
  );
  assert.equal(
    onnxPrefixFor({ ...base, modelHash: 'a'.repeat(64) }),
    onnxPrefixFor({ ...base, modelPath: '/elsewhere', modelHash: 'a'.repeat(64) }),
  );
  assert.equal(
    onnxPrefixFor({ ...base, runKey: 'tiny__lora-r4__t0123456789abcdef' }),
    'runs/tiny__lora-r4__t0123456789abcdef/onnx',
  );
});

test('a result is saved and found under its evaluation key, with the content identity in its provenance', async () => {
  const storeUrl = `file://${join(root, 'store-results')}`;
  const identity: RunIdentity = {
    trainingKey: 'tiny__lora-r4__t0123456789abcdef',
    evalKey: 'tiny__lora-r4__efedcba9876543210',
    modelHash: 'a'.repeat(64),
    modelHashBasis: 'content',
    data: { tokenizedTrain: 'b'.repeat(64), tokenizedTest: 'c'.repeat(64) },
  };
  const result: RunResult = {
    runKey: 'tiny__lora-r4__12345678',
    model: 'tiny',
    method: 'lora',
    label: 'lora r=4',
    status: 'completed',
  };
  const { provenance } = await saveRunResult({
    storeUrl,
    result,
    modelPath: '/nowhere',
    seed: 1,
    dataHash: 'd'.repeat(32),
    identity,
    prepared: { train: 'e'.repeat(64), test: 'f'.repeat(64) },
  });
  assert.equal(provenance.trainingKey, identity.trainingKey);
  assert.equal(provenance.evalKey, identity.evalKey);
  assert.equal(provenance.modelHash, identity.modelHash);
  assert.deepEqual(provenance.data, {
    preparedTrain: 'e'.repeat(64),
    preparedTest: 'f'.repeat(64),
    tokenizedTrain: 'b'.repeat(64),
    tokenizedTest: 'c'.repeat(64),
  });
  assert.equal(
    (await lookupRunResult({ storeUrl, runKey: result.runKey, evalKey: identity.evalKey }))?.provenance?.evalKey,
    identity.evalKey,
  );
  // Nothing under the plan-time run key, nor under another evaluation key.
  assert.equal(await lookupRunResult({ storeUrl, runKey: result.runKey }), null);
  assert.equal(
    await lookupRunResult({ storeUrl, runKey: result.runKey, evalKey: 'tiny__lora-r4__e0000000000000000' }),
    null,
  );
});
