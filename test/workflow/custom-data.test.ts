/**
 * Workflow tier: custom datasets through prepareDataWorkflow on a real dev server, with the real
 * store, the trainer's `export-dataset` (datasets.load_from_disk) and the TypeScript tokenizer.
 * One JSONL dataset (qa layout) with a missing-field line, a non-UTF-8 line and a 1 MB line, and a
 * train line whose input is a test item's; one save_to_disk DatasetDict (alpaca layout, its
 * `validation` split as test) with a row lacking its output; one hub dataset repo (chat layout) on a
 * local hub (HF_ENDPOINT), staged like hub models. Checks the counts by dataset and by
 * reason, that the test input stayed out of training, that a second preparation reuses the
 * content-addressed result, and that tokenizeData writes the training shard and the test items.
 * No training: a few seconds of data work.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment, TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { TASK_QUEUES } from '../../src/common/constants';
import { contentHash } from '../../src/common/hash';
import { validateGrid } from '../../src/config/validate';
import { tokenizeData } from '../../activities/tokenize';
import type { PreparedManifest } from '../../activities/prepare';
import type { PreparedData, TestItem, TokenizeDataInput, TokenizeDataResult } from '../../src/contracts';
import { readPgtok } from '../../src/data/pgtok';
import { openStore } from '../../src/store';
import { prepareDataWorkflow } from '../../workflows';
import { PYTHON, REPO, scratchDir, tinyModel } from '../helpers/fixtures';
import { startHubServer, type HubServer } from '../helpers/hub-server';
import { startWorkflowStack, type WorkflowStack } from '../helpers/tiny-grid';

const HUB_DATASET = 'acme/chats';

Runtime.install({ logger: new DefaultLogger('WARN') });

// The context does not depend on the answer: a train line with a test line's question is the same input.
const qa = (question: string, answer: string) => JSON.stringify({ question, answer, context: `about: ${question}` });

describe('custom datasets: prepare and tokenize through prepareDataWorkflow', { timeout: 5 * 60_000 }, () => {
  let env: TestWorkflowEnvironment;
  let hub: HubServer;
  let stack: WorkflowStack;
  const dir = scratchDir('wf-custom-data');
  const storeUrl = `file://${join(dir, 'store')}`;

  before(async () => {
    const good = Array.from({ length: 10 }, (_, i) => qa(`who made thing ${i}?`, `maker ${i}`));
    writeFileSync(
      join(dir, 'train.jsonl'),
      Buffer.concat([
        Buffer.from([...good.slice(0, 5), qa('who made test thing 0?', 'someone'), ''].join('\n')),
        Buffer.from(JSON.stringify({ answer: 'no question' }) + '\n'), // missing-field
        Buffer.from([0x7b, 0x22, 0x71, 0xc3, 0x28, 0x22, 0x7d, 0x0a]), // invalid UTF-8
        Buffer.from(qa('huge?', 'x'.repeat(1 << 20)) + '\n'), // a 1 MB line
        Buffer.from(good.slice(5).join('\n') + '\n'),
      ]),
    );
    const test = Array.from({ length: 4 }, (_, i) => qa(`who made test thing ${i}?`, `tester ${i}`));
    writeFileSync(join(dir, 'test.jsonl'), [...test, '{"question": "cut'].join('\n') + '\n');
    execFileSync(
      PYTHON,
      [
        '-c',
        `import sys
from datasets import Dataset, DatasetDict
rows = lambda n, p: {"instruction": [f"is {p} {i} even?" for i in range(n)], "input": ["" for _ in range(n)],
                     "output": ["yes" if i % 2 == 0 else "no" for i in range(n)]}
train = rows(6, "train")
train["output"][5] = None
DatasetDict(train=Dataset.from_dict(train), validation=Dataset.from_dict(rows(3, "val"))).save_to_disk(sys.argv[1])`,
        join(dir, 'hf'),
      ],
      { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    // A hub dataset repo (chat layout, JSON lines named by split), staged as hub models are.
    const repo = join(dir, 'hub-chats');
    mkdirSync(join(repo, 'data'), { recursive: true });
    const chat = (i: number) =>
      JSON.stringify({
        messages: [
          { role: 'user', content: `say the word number ${i}` },
          { role: 'assistant', content: `word ${i}` },
        ],
      });
    writeFileSync(join(repo, 'data', 'train.jsonl'), [0, 1, 2, 3].map(chat).join('\n') + '\n');
    writeFileSync(join(repo, 'data', 'test.jsonl'), [10, 11, 12].map(chat).join('\n') + '\n');
    hub = await startHubServer({ [HUB_DATASET]: { revisions: { main: repo }, type: 'dataset' } });
    Object.assign(process.env, { HF_ENDPOINT: hub.endpoint, HF_HOME: join(dir, 'hf-home') });
    stack = await startWorkflowStack(join(dir, 'data'));
    env = stack.env;
  });

  after(async () => {
    await stack?.stop();
    await hub?.stop();
  });

  const grid = () =>
    validateGrid({
      name: 'wf-custom',
      store: storeUrl,
      data: {
        datasets: [
          { name: 'makers', format: 'extractive', train: join(dir, 'train.jsonl'), test: join(dir, 'test.jsonl') },
          {
            name: 'parity',
            format: 'yes_no',
            layout: 'alpaca',
            hfDisk: join(dir, 'hf'),
            splits: { test: 'validation' },
          },
          { name: 'chats', format: 'abstractive', layout: 'chat', hub: HUB_DATASET },
        ],
        testSplit: 'test',
        testSamples: 10,
        maxTrainPerDataset: 100,
        seed: 3,
      },
      models: [{ name: 'tiny', path: tinyModel('llama'), family: 'llama' }],
      methods: [{ method: 'lora' }],
    });

  const prepare = async (id: string): Promise<PreparedData> => {
    const { data } = grid();
    return env.client.workflow.execute(prepareDataWorkflow, {
      args: [{ storeUrl, dataKey: contentHash(data), data }],
      taskQueue: TASK_QUEUES.cpu,
      workflowId: `${id}-${process.pid}`,
    });
  };

  let prepared: PreparedData;

  it('counts records by dataset and bad lines by reason, and keeps test inputs out of training', async () => {
    prepared = await prepare('custom-prepare');
    // makers: 11 good train lines, one of them a test input; parity: 5 of 6 rows have an output;
    // chats: the hub repo's 4 train rows.
    assert.deepEqual(prepared.stats.train, { makers: 10, parity: 5, chats: 4 });
    // 10 test items stratified over 3 datasets: 4 + 3 + 3 (every usable test line of each).
    assert.deepEqual(prepared.stats.test, { makers: 4, parity: 3, chats: 3 });
    assert.equal(prepared.stats.malformed, 5);
    const store = openStore(storeUrl);
    const manifestKey = prepared.train.key.replace(/train\.jsonl$/, 'manifest.json');
    const m = JSON.parse((await store.get(manifestKey)).toString('utf8')) as PreparedManifest;
    assert.deepEqual(m.malformed['makers/train']!.byReason, {
      'missing-field': 1,
      'invalid-utf8': 1,
      'line-too-long': 1,
    });
    assert.deepEqual(
      m.malformed['makers/train']!.first.map((l) => l.line),
      [7, 8, 9],
    );
    assert.deepEqual(m.malformed['makers/test']!.byReason, { 'invalid-json': 1 });
    assert.deepEqual(m.malformed['parity/train']!.byReason, { 'missing-field': 1 });
    assert.deepEqual(m.excludedFromTrain, { makers: 1, parity: 0, chats: 0 });
    const lines = (await store.get(prepared.test.key)).toString('utf8').trim().split('\n');
    const records = lines.map((l) => JSON.parse(l) as { dataset: string; format: string; question: string });
    assert.deepEqual([...new Set(records.map((r) => `${r.dataset}:${r.format}`))].sort(), [
      'chats:abstractive',
      'makers:extractive',
      'parity:yes_no',
    ]);
    const train = (await store.get(prepared.train.key)).toString('utf8');
    assert.ok(!train.includes('who made test thing 0?'), 'the test input is not in train');
  });

  it('a second preparation of the same content finds the committed result', async () => {
    const again = await prepare('custom-prepare-again');
    assert.deepEqual(again, prepared);
  });

  it('tokenizeData writes the training shard and the test items of the custom data', async () => {
    const input: TokenizeDataInput = {
      storeUrl,
      prepared,
      modelPath: tinyModel('llama'),
      family: 'llama',
      maxLength: 128,
      shots: 0,
      seed: 3,
      withTrain: true,
    };
    const out = await new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') }).run<
      [TokenizeDataInput],
      TokenizeDataResult,
      typeof tokenizeData
    >(tokenizeData, input);
    const store = openStore(storeUrl);
    assert.ok(out.train, 'a training shard');
    assert.equal(readPgtok(await store.get(out.train.key)).length, 19 - out.skipped);
    const items = (await store.get(out.test.key))
      .toString('utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as TestItem);
    assert.equal(items.length, 10);
    assert.ok(items.every((t) => t.promptIds.length > 0 && t.answers.length > 0));
    assert.deepEqual(
      items.filter((t) => t.dataset === 'parity').map((t) => t.format),
      ['yes_no', 'yes_no', 'yes_no'],
    );
  });
});
