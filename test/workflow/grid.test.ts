/**
 * Workflow tier: the real grid → prepare → run chain on a real Temporal dev server (the installed
 * binary), a real worker, the real Python trainer (tiny random-init Llama), a real ONNX export and
 * onnxruntime-node evaluation. Nothing here is mocked.
 */
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Runtime, DefaultLogger } from '@temporalio/worker';
import { SEARCH_ATTRIBUTE_KEYS, TASK_QUEUES } from '../../src/common/constants';
import { validateGrid } from '../../src/config/validate';
import { planRuns } from '../../src/config/plan';
import type { GridResult, RunResult } from '../../src/contracts';
import { REPO, SAMPLES, scratchDir, tinyModel } from '../helpers/fixtures';
import { keysOf } from '../helpers/run-keys';
import { startWorkflowStack, type WorkflowStack } from '../helpers/tiny-grid';

Runtime.install({ logger: new DefaultLogger('WARN') });

describe('experimentGridWorkflow on a real dev server', { timeout: 15 * 60_000 }, () => {
  let env: TestWorkflowEnvironment;
  let stack: WorkflowStack;
  const dir = scratchDir('wf-grid');

  before(async () => {
    stack = await startWorkflowStack(join(dir, 'data'));
    env = stack.env;
  });

  after(async () => {
    await stack?.stop();
  });

  const grid = () =>
    validateGrid(
      {
        name: 'wf-test',
        store: `file://${join(dir, 'store')}`,
        data: {
          baseUrl: `file://${SAMPLES}`,
          datasets: ['boolq', 'squad1_1'],
          testSplit: 'test',
          maxTrainPerDataset: 24,
          testSamples: 8,
          seed: 1,
        },
        models: [{ name: 'tiny-llama', path: tinyModel('llama'), family: 'llama' }],
        methods: [
          { method: 'lora', r: 4, alpha: 8 },
          { method: 'icl', shots: [0] },
        ],
        training: {
          maxSteps: 6,
          warmupSteps: 1,
          lr: 1e-3,
          optimizer: 'adamw',
          batchSize: 4,
          checkpointEverySteps: 3,
          maxLength: 256,
        },
        eval: { maxNewTokens: 8, batchSize: 4 },
      },
      'test',
      REPO,
    );

  it('runs every run to metrics, commits checkpoints, writes the report, and reuses finished runs', async () => {
    const g = grid();
    const runs = planRuns(g);
    const gridId = `wf-test-${Date.now()}`;
    const result = (await env.client.workflow.execute('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: gridId,
      args: [{ gridId, grid: g, runs }],
    })) as GridResult;
    assert.equal(result.runs.length, 2);
    for (const r of result.runs) assert.equal(r.status, 'completed', `${r.runKey}: ${r.error}`);
    const tuned = result.runs.find((r) => r.method === 'lora')!;
    assert.equal(tuned.training?.steps, 6);
    assert.ok(Number.isFinite(tuned.training?.trainLoss));
    assert.equal(tuned.metrics?.overall.n, 8);
    for (const r of result.runs) assert.ok(r.metrics!.overall.metrics.exactMatch !== undefined);

    // Training lives under the training key, evaluation under the evaluation key (docs/contracts.md §3).
    const store = join(dir, 'store');
    const { trainingKey, evalKey } = keysOf(tuned);
    const ck = join(store, 'runs', trainingKey!, 'checkpoints');
    assert.ok(existsSync(join(ck, 'step-3', 'manifest.json')), 'checkpoint at step 3 committed');
    assert.ok(existsSync(join(ck, 'step-6', 'manifest.json')), 'checkpoint at step 6 committed');
    assert.ok(existsSync(join(store, 'runs', trainingKey!, 'final', 'manifest.json')));
    const preds = readFileSync(join(store, 'runs', evalKey, 'eval', 'predictions.jsonl'), 'utf8')
      .trim()
      .split('\n');
    assert.equal(preds.length, 8);
    assert.ok(readFileSync(join(store, 'grids', gridId, 'report.md'), 'utf8').includes('tiny-llama'));

    // The Temporal UI can filter the runs by model and method.
    const child = await env.client.workflow.getHandle(`peftgrid-run-${tuned.runKey}`).describe();
    assert.equal(child.typedSearchAttributes.get(SEARCH_ATTRIBUTE_KEYS.method), 'lora');
    assert.equal(child.typedSearchAttributes.get(SEARCH_ATTRIBUTE_KEYS.status), 'completed');

    // Same grid again: every run is found finished in the store; nothing is retrained or re-evaluated.
    // What is checked first is the content: tokenization (found committed) and the keys derived from it.
    const again = (await env.client.workflow.execute('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: `${gridId}-again`,
      args: [{ gridId: `${gridId}-again`, grid: g, runs }],
    })) as GridResult;
    assert.deepEqual(
      again.runs.map((r) => r.metrics?.overall.metrics.exactMatch?.estimate),
      result.runs.map((r) => r.metrics?.overall.metrics.exactMatch?.estimate),
    );
    for (const r of again.runs) {
      const history = await env.client.workflow.getHandle(`peftgrid-run-${r.runKey}`).fetchHistory();
      const activities = (history.events ?? []).flatMap(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? [],
      );
      assert.deepEqual(
        activities,
        ['tokenizeData', 'deriveRunKeys', 'lookupRunResult'],
        `${r.runKey} re-ran ${activities.join(', ')}`,
      );
    }
  });

  it('continues as new between runs and still reports every run', async () => {
    const g = validateGrid(
      {
        ...grid(),
        name: 'wf-can',
        models: [
          { name: 'tiny-llama', path: tinyModel('llama'), family: 'llama' },
          { name: 'tiny-mistral', path: tinyModel('mistral'), family: 'llama' },
        ],
        methods: [{ method: 'icl', shots: [0, 1, 2] }],
        speculative: [{ target: 'tiny-llama', draft: 'tiny-mistral', gamma: 3 }],
      },
      'test',
      REPO,
    );
    const runs = planRuns(g);
    const gridId = `wf-can-${Date.now()}`;
    const handle = await env.client.workflow.start('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: gridId,
      args: [{ gridId, grid: g, runs, runsPerExecution: 3 }],
    });
    const result = (await handle.result()) as GridResult;
    assert.deepEqual(
      result.runs.map((r) => [r.model, r.label, r.status]),
      [
        ['tiny-llama', 'icl shots=0', 'completed'],
        ['tiny-llama', 'icl shots=1', 'completed'],
        ['tiny-llama', 'icl shots=2', 'completed'],
        ['tiny-mistral', 'icl shots=0', 'completed'],
        ['tiny-mistral', 'icl shots=1', 'completed'],
        ['tiny-mistral', 'icl shots=2', 'completed'],
        ['tiny-llama', 'speculative draft=tiny-mistral gamma=3', 'completed'],
      ],
    );
    // Greedy speculative decoding must reproduce the target's own greedy output exactly.
    const predictions = (r: RunResult) =>
      readFileSync(join(dir, 'store', 'runs', keysOf(r).evalKey, 'eval', 'predictions.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { prediction: string }).prediction);
    const spec = result.runs.at(-1)!;
    assert.deepEqual(predictions(spec), predictions(result.runs[0]!));
    assert.ok(spec.throughput!.acceptanceRate! >= 0 && spec.throughput!.acceptanceRate! <= 1);
    assert.ok(spec.throughput!.speedup! > 0);
    const desc = await handle.describe();
    assert.notEqual(desc.runId, handle.firstExecutionRunId, 'the grid continued as new');
    for (const r of result.runs) {
      assert.match(r.provenance!.codeVersion, /^peftgrid@/);
      assert.match(r.provenance!.modelHash!, /^[0-9a-f]{64}$/);
      assert.equal(r.provenance!.configHash, r.runKey.split('__').pop());
    }
  });
});
