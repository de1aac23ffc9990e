/**
 * tokenizeData in two slots at once on the same content (the five methods of one model in one grid,
 * cpu concurrency > 1, as examples/study.yaml runs): both must commit the same, valid training shard.
 * A shared local scratch file per content hash once interleaved two writers and uploaded a corrupt one.
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DefaultLogger } from '@temporalio/worker';
import { MockActivityEnvironment } from '@temporalio/testing';
import { tokenizeData } from '../../activities/tokenize';
import type { TokenizeDataInput, TokenizeDataResult } from '../../src/contracts';
import { readPgtok } from '../../src/data/pgtok';
import { openStore } from '../../src/store';
import { scratchDir, tinyModel } from '../helpers/fixtures';

describe('tokenizeData under concurrency', { timeout: 5 * 60_000 }, () => {
  it('two slots tokenizing the same content commit one valid shard', async () => {
    const dir = scratchDir('tokenize-concurrent');
    process.env.PEFTGRID_DATA_DIR = join(dir, 'worker');
    const storeUrl = `file://${join(dir, 'store')}`;
    const store = openStore(storeUrl);
    const records = Array.from({ length: 400 }, (_, i) => ({
      id: `r${i}`,
      dataset: 'boolq',
      format: 'yes_no',
      question: `is ${i} an even number?`,
      context: `the number ${i} is ${i % 2 ? 'odd' : 'even'}. `.repeat(1 + (i % 7)),
      answers: [i % 2 ? 'no' : 'yes'],
    }));
    const jsonl = (rs: object[]) => rs.map((r) => JSON.stringify(r)).join('\n') + '\n';
    const train = await store.put('prepared/train.jsonl', jsonl(records));
    const test = await store.put('prepared/test.jsonl', jsonl(records.slice(0, 8)));
    const input: TokenizeDataInput = {
      storeUrl,
      prepared: { dataKey: 'k', train, test, stats: { train: {}, test: {}, malformed: 0 } },
      modelPath: tinyModel('llama'),
      family: 'llama',
      maxLength: 256,
      shots: 0,
      seed: 1,
      withTrain: true,
    };
    const run = () =>
      new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') }).run<
        [TokenizeDataInput],
        TokenizeDataResult,
        typeof tokenizeData
      >(tokenizeData, input);
    const [a, b] = await Promise.all([run(), run(), run()]);
    assert.deepEqual(a.train, b.train);
    const shard = await store.get(a.train!.key);
    assert.equal(readPgtok(shard).length, 400, 'every example, readable');
  });
});
