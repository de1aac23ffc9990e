/**
 * Workflow tier: identity is content, not names (issue 12, point 7), on a real dev server with the
 * real trainer, exporter and evaluator. One grid (a LoRA run and a 0-shot ICL run on a tiny Llama
 * copied to a scratch path, boolq samples copied to a scratch dir) is run four times:
 *   1. as is;
 *   2. with eval.maxNewTokens changed: re-evaluates, does not train (the final adapter is reused);
 *   3. with the file:// training data edited in place: retrains from step 0, nothing reused;
 *   4. with the model replaced at the same path by another seed's: retrains, re-evaluates ICL.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Runtime, DefaultLogger } from '@temporalio/worker';
import { runWorkflowId, TASK_QUEUES } from '../../src/common/constants';
import { planRuns } from '../../src/config/plan';
import type { GridConfigInput } from '../../src/config/schema';
import { validateGrid } from '../../src/config/validate';
import type { TrainModelResult } from '../../activities';
import type { GridResult, RunResult } from '../../src/contracts';
import { PYTHON, REPO, SAMPLES, scratchDir, SMOLLM2, tinyModel } from '../helpers/fixtures';
import { keysOf } from '../helpers/run-keys';
import { startWorkflowStack, type WorkflowStack } from '../helpers/tiny-grid';

Runtime.install({ logger: new DefaultLogger('WARN') });

describe('content keys: what changed decides what is redone', { timeout: 20 * 60_000 }, () => {
  let env: TestWorkflowEnvironment;
  let stack: WorkflowStack;
  const dir = scratchDir('wf-content-keys');
  const samples = join(dir, 'samples');
  const model = join(dir, 'model');
  const store = join(dir, 'store');

  before(async () => {
    // Copies: this test edits the data and replaces the model in place.
    mkdirSync(samples, { recursive: true });
    cpSync(join(SAMPLES, 'boolq'), join(samples, 'boolq'), { recursive: true });
    cpSync(tinyModel('llama'), model, { recursive: true });
    stack = await startWorkflowStack(join(dir, 'data'));
    env = stack.env;
  });

  after(async () => {
    await stack?.stop();
  });

  const config = (evalPatch: Partial<NonNullable<GridConfigInput['eval']>> = {}): GridConfigInput => ({
    name: 'wf-keys',
    store: `file://${store}`,
    data: {
      baseUrl: `file://${samples}`,
      datasets: ['boolq'],
      testSplit: 'test',
      maxTrainPerDataset: 16,
      testSamples: 4,
      seed: 5,
    },
    models: [{ name: 'tiny', path: model, family: 'llama' }],
    methods: [
      { method: 'lora', r: 4, alpha: 8 },
      { method: 'icl', shots: [0] },
    ],
    training: {
      maxSteps: 4,
      warmupSteps: 1,
      lr: 1e-3,
      optimizer: 'adamw',
      batchSize: 4,
      checkpointEverySteps: 2,
      maxLength: 128,
      seed: 3,
    },
    eval: { maxNewTokens: 3, batchSize: 4, ...evalPatch },
  });

  let n = 0;
  async function runGrid(input: GridConfigInput): Promise<{ lora: RunResult; icl: RunResult }> {
    const grid = validateGrid(input, 'test', REPO);
    const runs = planRuns(grid);
    const gridId = `wf-keys-${++n}-${Date.now()}`;
    const result = (await env.client.workflow.execute('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: gridId,
      args: [{ gridId, grid, runs }],
    })) as GridResult;
    for (const r of result.runs) assert.equal(r.status, 'completed', `${r.runKey}: ${r.error}`);
    return { lora: result.runs.find((r) => r.method === 'lora')!, icl: result.runs.find((r) => r.method === 'icl')! };
  }

  /** What trainModel returned in the run's latest execution (resumedFrom: 0 fresh, N resumed, null already finished). */
  async function trainResult(runKey: string): Promise<TrainModelResult | undefined> {
    const history = await env.client.workflow.getHandle(runWorkflowId(runKey)).fetchHistory();
    const events = history.events ?? [];
    const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'trainModel');
    if (!scheduled) return undefined;
    const done = events.find(
      (e) => String(e.activityTaskCompletedEventAttributes?.scheduledEventId) === String(scheduled.eventId),
    );
    const payload = done?.activityTaskCompletedEventAttributes?.result?.payloads?.[0]?.data;
    assert.ok(payload, `${runKey}: trainModel did not complete`);
    return JSON.parse(Buffer.from(payload).toString('utf8')) as TrainModelResult;
  }

  const checkpoints = (trainingKey: string) => readdirSync(join(store, 'runs', trainingKey, 'checkpoints')).sort();

  it('eval change re-evaluates only; edited data and a replaced model retrain from step 0', async () => {
    const first = await runGrid(config());
    const k1 = keysOf(first.lora);
    assert.equal((await trainResult(first.lora.runKey))?.resumedFrom, 0);
    assert.deepEqual(checkpoints(k1.trainingKey!), ['step-2', 'step-4']);
    const icl1 = keysOf(first.icl);
    assert.equal(icl1.trainingKey, null);

    // 2. Only an eval setting changed: same training key, the committed final adapter is reused
    // (trainModel returns at once: resumedFrom null, no tokens/s), a new evaluation is written.
    const second = await runGrid(config({ maxNewTokens: 5 }));
    const k2 = keysOf(second.lora);
    assert.notEqual(second.lora.runKey, first.lora.runKey, 'a new run (workflow id)');
    assert.equal(second.lora.reused, undefined, 'not the old result: the eval setting changed');
    assert.equal(k2.trainingKey, k1.trainingKey);
    assert.notEqual(k2.evalKey, k1.evalKey);
    const retrain = await trainResult(second.lora.runKey);
    assert.equal(retrain?.resumedFrom, null, `trainModel trained again: ${JSON.stringify(retrain)}`);
    assert.equal(second.lora.training?.tokensPerSec, null);
    assert.deepEqual(checkpoints(k1.trainingKey!), ['step-2', 'step-4']);
    assert.ok(existsSync(join(store, 'runs', k2.evalKey, 'eval', 'predictions.jsonl')));
    assert.ok(
      existsSync(join(store, 'runs', k1.evalKey, 'eval', 'predictions.jsonl')),
      'the first evaluation is still there',
    );
    assert.notEqual(keysOf(second.icl).evalKey, icl1.evalKey, 'ICL is re-evaluated too');

    // 3. The file:// training data is edited in place (every answer changes); the config is the
    // first one, so the run key is too. New prepared data → new tokenized shard → new training
    // key: nothing to resume, nothing to reuse.
    const trainTsv = join(samples, 'boolq', 'train.tsv');
    writeFileSync(
      trainTsv,
      readFileSync(trainTsv, 'utf8')
        .split('\n')
        .map((l) => (l.includes('\t') ? `${l} indeed` : l))
        .join('\n'),
    );
    const third = await runGrid(config());
    const k3 = keysOf(third.lora);
    assert.equal(third.lora.runKey, first.lora.runKey, 'same config, same run name');
    assert.equal(third.lora.reused, undefined, 'the old result was not reused');
    assert.notEqual(k3.trainingKey, k1.trainingKey);
    assert.notEqual(k3.evalKey, k1.evalKey);
    assert.equal((await trainResult(third.lora.runKey))?.resumedFrom, 0, 'trained from step 0');
    assert.deepEqual(checkpoints(k3.trainingKey!), ['step-2', 'step-4']);
    assert.notEqual(third.lora.provenance?.data?.preparedTrain, first.lora.provenance?.data?.preparedTrain);
    // The test split did not change, so the ICL run (which reads no training data) is reused.
    assert.equal(third.icl.reused, true);
    assert.equal(keysOf(third.icl).evalKey, icl1.evalKey);

    // 4. Another model (another seed) replaces the first at the same path.
    const other = join(dir, 'model-seed-1');
    execFileSync(
      PYTHON,
      ['-m', 'trainer', 'tiny', '--family', 'llama', '--out', other, '--tokenizer-from', SMOLLM2, '--seed', '1'],
      { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    rmSync(model, { recursive: true, force: true });
    cpSync(other, model, { recursive: true });
    const fourth = await runGrid(config());
    const k4 = keysOf(fourth.lora);
    assert.equal(fourth.lora.runKey, first.lora.runKey);
    assert.equal(fourth.lora.reused, undefined);
    assert.notEqual(fourth.lora.provenance?.modelHash, third.lora.provenance?.modelHash);
    assert.ok(![k1.trainingKey, k3.trainingKey].includes(k4.trainingKey), 'a new training key');
    assert.equal((await trainResult(fourth.lora.runKey))?.resumedFrom, 0, 'trained from step 0');
    assert.equal(fourth.icl.reused, undefined, 'the base model changed: ICL is evaluated again');
    assert.notEqual(keysOf(fourth.icl).evalKey, icl1.evalKey);
    // The base model's ONNX export is addressed by the model's bytes: two exports now, not one.
    assert.equal(readdirSync(join(store, 'models')).length, 2);
  });
});
