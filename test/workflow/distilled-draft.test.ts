/**
 * Workflow tier: `drafting: distilled` on a real dev server with the real trainer. The tiny
 * Mistral is distilled on the tiny Llama's greedy outputs (distillDraft on the gpu queue, before the
 * draft's export), then drafts for it: the pair's predictions are the target-only run's, token for
 * token, and the result says which drafting it used. A second grid that changes only gamma reuses
 * the committed distilled draft (same distill key, nothing trained again).
 */
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { runWorkflowId, TASK_QUEUES } from '../../src/common/constants';
import { planRuns } from '../../src/config/plan';
import type { GridConfigInput } from '../../src/config/schema';
import { validateGrid } from '../../src/config/validate';
import type { GridResult, RunResult, TrainModelResult } from '../../src/contracts';
import { REPO, SAMPLES, scratchDir, tinyModel } from '../helpers/fixtures';
import { keysOf } from '../helpers/run-keys';
import { startWorkflowStack, type WorkflowStack } from '../helpers/tiny-grid';

Runtime.install({ logger: new DefaultLogger('WARN') });

describe('drafting: distilled: distill → export → speculative evaluation', { timeout: 20 * 60_000 }, () => {
  let env: TestWorkflowEnvironment;
  let stack: WorkflowStack;
  const dir = scratchDir('wf-distilled');

  before(async () => {
    stack = await startWorkflowStack(join(dir, 'data'));
    env = stack.env;
  });

  after(async () => {
    await stack?.stop();
  });

  const config = (gamma: number): GridConfigInput => ({
    name: 'wf-distilled',
    store: `file://${join(dir, 'store')}`,
    data: {
      baseUrl: `file://${SAMPLES}`,
      datasets: ['boolq'],
      testSplit: 'test',
      maxTrainPerDataset: 12,
      testSamples: 4,
      seed: 5,
    },
    models: [
      { name: 'tiny-llama', path: tinyModel('llama'), family: 'llama' },
      { name: 'tiny-mistral', path: tinyModel('mistral'), family: 'mistral' },
    ],
    methods: [{ method: 'icl', shots: [0] }],
    training: {
      maxSteps: 2,
      warmupSteps: 1,
      optimizer: 'adamw',
      batchSize: 4,
      checkpointEverySteps: 2,
      maxLength: 256,
      seed: 3,
    },
    eval: { maxNewTokens: 6, batchSize: 4 },
    speculative: [
      { target: 'tiny-llama', draft: 'tiny-mistral', drafting: 'distilled', distill: { steps: 4, lr: 1e-2 }, gamma },
    ],
  });

  async function runGrid(input: GridConfigInput): Promise<RunResult[]> {
    const grid = validateGrid(input, 'test', REPO);
    const gridId = `wf-distilled-${Date.now()}`;
    const result = (await env.client.workflow.execute('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: gridId,
      args: [{ gridId, grid, runs: planRuns(grid) }],
    })) as GridResult;
    for (const r of result.runs) assert.equal(r.status, 'completed', `${r.runKey}: ${r.error}`);
    return result.runs;
  }

  /** Each activity the run scheduled (name, queue) and the results of the completed ones, in order. */
  async function activities(runKey: string): Promise<{ name: string; queue: string; result?: unknown }[]> {
    const history = await env.client.workflow.getHandle(runWorkflowId(runKey)).fetchHistory();
    const scheduled = new Map<string, { name: string; queue: string; result?: unknown }>();
    for (const e of history.events ?? []) {
      const a = e.activityTaskScheduledEventAttributes;
      if (a) scheduled.set(String(e.eventId), { name: a.activityType?.name ?? '', queue: a.taskQueue?.name ?? '' });
      const done = e.activityTaskCompletedEventAttributes;
      const data = done?.result?.payloads?.[0]?.data;
      const entry = done ? scheduled.get(String(done.scheduledEventId)) : undefined;
      if (entry && data) entry.result = JSON.parse(Buffer.from(data).toString('utf8'));
    }
    return [...scheduled.values()];
  }

  const predictions = (r: RunResult) =>
    readFileSync(join(dir, 'store', 'runs', keysOf(r).evalKey, 'eval', 'predictions.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { prediction: string }).prediction);

  it("distills before the draft's export, keeps the target's tokens, and reuses the draft", async () => {
    const runs = await runGrid(config(3));
    assert.deepEqual(
      runs.map((r) => r.label),
      ['icl shots=0', 'icl shots=0', 'speculative distilled draft=tiny-mistral lora steps=4 gamma=3'],
    );
    const [targetOnly, , pair] = runs as [RunResult, RunResult, RunResult];
    assert.match(pair.runKey, /^tiny-llama__spec-distill-tiny-mistral-g3__/);
    const acts = await activities(pair.runKey);
    const names = acts.map((a) => a.name);
    const distill = acts.find((a) => a.name === 'distillDraft');
    assert.equal(distill?.queue, TASK_QUEUES.gpu, JSON.stringify(names));
    // The distillation, then the target's base export, then the distilled draft's export.
    assert.deepEqual(
      names.filter((n) => n === 'exportModel' || n === 'distillDraft'),
      ['distillDraft', 'exportModel', 'exportModel'],
    );
    const distilled = distill!.result as TrainModelResult;
    assert.equal(distilled.steps, 4);
    assert.equal(distilled.resumedFrom, 0, 'trained here');
    const distillKey = pair.provenance?.distillKey;
    assert.match(distillKey ?? '', /^tiny-llama__spec-distill-tiny-mistral__d[0-9a-f]{16}$/);
    const store = join(dir, 'store', 'runs', distillKey!);
    assert.ok(existsSync(join(store, 'final', 'manifest.json')) && existsSync(join(store, 'onnx', 'manifest.json')));
    assert.ok(existsSync(join(store, 'final', 'model.safetensors')), 'the LoRA draft was merged into a plain model');
    assert.ok(!existsSync(join(store, 'final', 'adapter_config.json')));
    // Greedy speculative decoding reproduces the target's own greedy output exactly.
    assert.deepEqual(predictions(pair), predictions(targetOnly));
    const t = pair.throughput!;
    assert.ok(t.acceptanceRate !== null && t.acceptanceRate! >= 0 && t.acceptanceRate! <= 1, JSON.stringify(t));
    assert.ok((t.tokensPerTargetPass ?? 0) >= 1 && (t.speedup ?? 0) > 0, JSON.stringify(t));
    assert.equal(pair.training?.steps, 4, 'the distillation is the pair’s training');

    const again = (await runGrid(config(2))).at(-1)!;
    assert.notEqual(again.runKey, pair.runKey);
    assert.equal(again.provenance?.distillKey, distillKey, 'gamma does not change the distilled draft');
    const reused = (await activities(again.runKey)).find((a) => a.name === 'distillDraft')!.result as TrainModelResult;
    assert.equal(reused.resumedFrom, null, 'the committed draft came back without training');
    assert.deepEqual(predictions(again), predictions(targetOnly));
  });
});
