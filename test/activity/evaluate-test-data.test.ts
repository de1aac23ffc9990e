// Evaluation reads the tokenized test split from the store and checks it against the sha256 of the
// ObjectRef the run carries: a split corrupted (or replaced) after tokenization fails the
// evaluation with a typed, non-retryable error instead of being scored. Real file store; the
// activity runs for real inside MockActivityEnvironment and must fail before it needs a model.
import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import {
  evaluateModel,
  type EvaluateModelInput,
  type EvaluateModelResult,
  type TestItem,
} from '../../activities/evaluate';
import { readTestItems } from '../../activities/test-data';
import { FileObjectStore, type ObjectRef } from '../../src/store';
import { scratchDir } from '../helpers/fixtures';

const dir = scratchDir('evaluate-test-data');
const items: TestItem[] = [
  { id: 'boolq-1', dataset: 'boolq', format: 'yes_no', promptIds: [1, 2, 3], answers: ['yes'], answerIds: [5, 2] },
  { id: 'boolq-2', dataset: 'boolq', format: 'yes_no', promptIds: [1, 4], answers: ['no'], answerIds: [6, 2] },
];
const jsonl = (xs: TestItem[]) => xs.map((t) => JSON.stringify(t)).join('\n') + '\n';

let n = 0;
async function staged(): Promise<{ store: FileObjectStore; ref: ObjectRef; path: string }> {
  const root = join(dir, `store-${++n}`);
  const store = new FileObjectStore(root);
  const ref = await store.put('datasets/tokenized/h/test-0shot.jsonl', jsonl(items));
  return { store, ref, path: join(root, ref.key) };
}

/** The same number of bytes, another answer: only the checksum can tell. */
const corrupt = (path: string) => writeFileSync(path, jsonl(items).replace('"answers":["yes"]', '"answers":["yup"]'));

function assertTyped(err: unknown, ref: ObjectRef): asserts err is ApplicationFailure {
  assert.ok(err instanceof ApplicationFailure, String(err));
  assert.equal(err.type, 'InvalidData');
  assert.equal(err.nonRetryable, true);
  assert.match(
    err.message,
    new RegExp(
      `^test split ${ref.key} in file://.* is not the one this run was planned on: sha256 [0-9a-f]{64} \\(${ref.bytes} bytes\\), expected ${ref.sha256}`,
    ),
  );
}

describe('the test split evaluation reads', () => {
  it('is returned as items when it matches its ObjectRef', async () => {
    const { store, ref } = await staged();
    assert.deepEqual(await readTestItems(store, ref), items);
  });

  it('fails evaluateModel with a typed InvalidData when corrupted in the store, before any model is loaded', async () => {
    const { store, ref, path } = await staged();
    corrupt(path);
    const input: EvaluateModelInput = {
      storeUrl: store.url,
      runKey: 'corrupt-test-split',
      onnxPrefix: 'runs/corrupt-test-split/onnx',
      testData: ref,
      modelPath: join(dir, 'no-model'),
      eval: { maxNewTokens: 32, batchSize: 8, engine: 'auto' },
    };
    const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
    await assert.rejects(
      env.run<[EvaluateModelInput], EvaluateModelResult, typeof evaluateModel>(evaluateModel, input),
      (err) => {
        assertTyped(err, ref);
        return true;
      },
    );
  });

  it('reads once more before failing: a body cut short in transit is not a corrupt object', async () => {
    const { store, ref } = await staged();
    let gets = 0;
    const flaky = Object.create(store) as FileObjectStore;
    flaky.get = async (key: string) => {
      const bytes = await store.get(key);
      return ++gets === 1 ? bytes.subarray(0, bytes.length - 10) : bytes;
    };
    assert.deepEqual(await readTestItems(flaky, ref), items);
    assert.equal(gets, 2);

    const { store: s2, ref: r2, path } = await staged();
    corrupt(path);
    await assert.rejects(readTestItems(s2, r2), (err) => {
      assertTyped(err, r2);
      return true;
    });
  });
});
