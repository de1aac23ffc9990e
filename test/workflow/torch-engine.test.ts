/**
 * Workflow tier: `eval.engine: torch` on a real dev server with the real trainer. A LoRA run and a
 * 0-shot ICL run on the tiny Llama complete without an exportModel activity in their histories,
 * evaluate on the gpu queue, and say engine torch (fp32 on this CPU). The same grid with
 * `eval.engine: onnx` then reuses the trained adapter (same training key), exports, and writes a
 * new evaluation under another evaluation key, with the same result shape.
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { runWorkflowId, TASK_QUEUES } from '../../src/common/constants';
import { planRuns } from '../../src/config/plan';
import type { GridConfigInput } from '../../src/config/schema';
import { validateGrid } from '../../src/config/validate';
import type { GridResult, RunResult } from '../../src/contracts';
import { REPO, SAMPLES, scratchDir, tinyModel } from '../helpers/fixtures';
import { keysOf } from '../helpers/run-keys';
import { startWorkflowStack, type WorkflowStack } from '../helpers/tiny-grid';

Runtime.install({ logger: new DefaultLogger('WARN') });

describe('eval.engine torch: no export, evaluation on the gpu queue', { timeout: 20 * 60_000 }, () => {
  let env: TestWorkflowEnvironment;
  let stack: WorkflowStack;
  const dir = scratchDir('wf-torch-engine');

  before(async () => {
    stack = await startWorkflowStack(join(dir, 'data'));
    env = stack.env;
  });

  after(async () => {
    await stack?.stop();
  });

  const config = (engine: 'torch' | 'onnx'): GridConfigInput => ({
    name: 'wf-torch',
    store: `file://${join(dir, 'store')}`,
    data: {
      baseUrl: `file://${SAMPLES}`,
      datasets: ['boolq'],
      testSplit: 'test',
      maxTrainPerDataset: 16,
      testSamples: 4,
      seed: 5,
    },
    models: [{ name: 'tiny', path: tinyModel('llama'), family: 'llama' }],
    methods: [
      { method: 'lora', r: 4, alpha: 8 },
      { method: 'icl', shots: [0] },
    ],
    training: {
      maxSteps: 2,
      warmupSteps: 1,
      lr: 1e-3,
      optimizer: 'adamw',
      batchSize: 4,
      checkpointEverySteps: 2,
      maxLength: 128,
      seed: 3,
    },
    eval: { maxNewTokens: 4, batchSize: 4, engine },
  });

  async function runGrid(input: GridConfigInput): Promise<RunResult[]> {
    const grid = validateGrid(input, 'test', REPO);
    const gridId = `wf-torch-${input.eval?.engine}-${Date.now()}`;
    const result = (await env.client.workflow.execute('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: gridId,
      args: [{ gridId, grid, runs: planRuns(grid) }],
    })) as GridResult;
    for (const r of result.runs) assert.equal(r.status, 'completed', `${r.runKey}: ${r.error}`);
    return result.runs;
  }

  /** Each activity the run's latest execution scheduled, with its task queue. */
  async function activities(runKey: string): Promise<{ name: string; queue: string }[]> {
    const history = await env.client.workflow.getHandle(runWorkflowId(runKey)).fetchHistory();
    return (history.events ?? []).flatMap((e) => {
      const a = e.activityTaskScheduledEventAttributes;
      return a ? [{ name: a.activityType?.name ?? '', queue: a.taskQueue?.name ?? '' }] : [];
    });
  }

  it('completes without an export, on the gpu queue, saying engine torch; onnx then re-evaluates only', async () => {
    const torchRuns = await runGrid(config('torch'));
    assert.equal(torchRuns.length, 2);
    for (const r of torchRuns) {
      const acts = await activities(r.runKey);
      assert.ok(!acts.some((a) => a.name === 'exportModel'), `${r.runKey} exported: ${JSON.stringify(acts)}`);
      assert.deepEqual(
        acts.filter((a) => a.name === 'evaluateModel').map((a) => a.queue),
        [TASK_QUEUES.gpu],
      );
      assert.equal(r.engine, 'torch');
      assert.equal(r.precision, 'fp32');
      assert.equal(r.metrics?.overall.n, 4);
      assert.ok((r.throughput?.tokensPerSec ?? 0) > 0);
    }

    const onnxRuns = await runGrid(config('onnx'));
    for (const r of onnxRuns) {
      const twin = torchRuns.find((t) => t.method === r.method)!;
      assert.equal(r.engine, 'onnx');
      assert.equal(r.reused, undefined, 'another engine is another evaluation');
      assert.equal(keysOf(r).trainingKey, keysOf(twin).trainingKey, 'the adapter is not trained again');
      assert.notEqual(keysOf(r).evalKey, keysOf(twin).evalKey);
      assert.ok((await activities(r.runKey)).some((a) => a.name === 'exportModel'));
      // One result shape for both engines.
      assert.deepEqual(Object.keys(r.throughput!).sort(), Object.keys(twin.throughput!).sort());
      assert.deepEqual(Object.keys(r.metrics!).sort(), Object.keys(twin.metrics!).sort());
    }
  });
});
