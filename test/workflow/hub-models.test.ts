/**
 * Workflow tier: a grid whose model is a gated hub id, served by a local hub (HF_ENDPOINT), on a real
 * dev server with the real trainer, exporter and evaluator. stageModel runs first on the cpu queue
 * and pins the commit; every later activity receives that sha; each file crosses the network once
 * (the cpu and gpu workers of this process share one cache); the sha lands in the provenance. The
 * same grid without HF_TOKEN fails at staging, typed, after one attempt, with no training.
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Runtime, DefaultLogger } from '@temporalio/worker';
import { runWorkflowId, TASK_QUEUES } from '../../src/common/constants';
import { planRuns } from '../../src/config/plan';
import type { GridResult } from '../../src/contracts';
import { modelFingerprint } from '../../activities/model-fingerprint';
import { scratchDir, tinyModel } from '../helpers/fixtures';
import { startHubServer, type HubServer } from '../helpers/hub-server';
import { tinyLoraGrid, startWorkflowStack, type WorkflowStack } from '../helpers/tiny-grid';

Runtime.install({ logger: new DefaultLogger('WARN') });

const REPO_ID = 'meta-llama/Llama-2-7b-hf';

describe('a grid with a hub model', { timeout: 20 * 60_000 }, () => {
  let env: TestWorkflowEnvironment;
  let stack: WorkflowStack;
  let hub: HubServer;
  const dir = scratchDir('wf-hub-models');

  before(async () => {
    hub = await startHubServer({ [REPO_ID]: { revisions: { main: tinyModel('llama') }, gated: true } });
    Object.assign(process.env, { HF_ENDPOINT: hub.endpoint, HF_HOME: join(dir, 'hf-home') });
    stack = await startWorkflowStack(join(dir, 'data'));
    env = stack.env;
  });
  after(async () => {
    await stack?.stop();
    await hub?.stop();
  });

  let n = 0;
  const runGrid = async (name: string) => {
    const grid = tinyLoraGrid({
      name,
      store: `file://${join(dir, 'store')}`,
      maxSteps: 2,
      checkpointEverySteps: 2,
      model: { name: 'llama-2-7b', path: REPO_ID, family: 'llama' },
      device: 'cpu',
    });
    const gridId = `wf-hub-${++n}-${Date.now()}`;
    const result = (await env.client.workflow.execute('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: gridId,
      args: [{ gridId, grid, runs: planRuns(grid) }],
    })) as GridResult;
    return result.runs[0]!;
  };
  const activities = async (runKey: string) => {
    const history = await env.client.workflow.getHandle(runWorkflowId(runKey)).fetchHistory();
    return (history.events ?? [])
      .map((e) => e.activityTaskScheduledEventAttributes)
      .filter((a) => !!a)
      .map((a) => ({
        type: a.activityType?.name ?? '',
        queue: a.taskQueue?.name ?? '',
        input: JSON.parse(Buffer.from(a.input?.payloads?.[0]?.data ?? '{}').toString('utf8')) as { revision?: string },
      }));
  };

  it('without HF_TOKEN the run fails at staging: ModelGated, one attempt, nothing trained', async () => {
    delete process.env.HF_TOKEN;
    const run = await runGrid('wf-hub-gated');
    assert.equal(run.status, 'failed');
    assert.match(run.error ?? '', /meta-llama\/Llama-2-7b-hf.*HF_TOKEN is not set/);
    const acts = await activities(run.runKey);
    assert.deepEqual(
      acts.map((a) => a.type),
      ['stageModel'],
    );
    const history = await env.client.workflow.getHandle(runWorkflowId(run.runKey)).fetchHistory();
    const failed = history.events?.find((e) => e.activityTaskFailedEventAttributes)?.activityTaskFailedEventAttributes;
    assert.equal(failed?.failure?.applicationFailureInfo?.type, 'ModelGated');
    assert.equal(failed?.failure?.applicationFailureInfo?.nonRetryable, true);
  });

  it('with HF_TOKEN: staged once on the cpu queue, the sha pinned for every step and into the provenance', async () => {
    process.env.HF_TOKEN = hub.token;
    hub.gets.clear();
    const run = await runGrid('wf-hub-ok');
    assert.equal(run.status, 'completed', run.error);
    const sha = hub.sha(REPO_ID);
    assert.equal(run.provenance?.modelRevision, sha);
    // The content key is the staged files' fingerprint: the same as the served directory's own.
    assert.equal(run.provenance?.modelHash, (await modelFingerprint(tinyModel('llama'))).sha256);
    assert.equal(run.provenance?.modelHashBasis, 'content');
    const acts = await activities(run.runKey);
    assert.deepEqual(acts[0], { type: 'stageModel', queue: TASK_QUEUES.cpu, input: { modelPath: REPO_ID } });
    for (const a of acts.filter((x) => ['tokenizeData', 'trainModel', 'exportModel', 'evaluateModel'].includes(x.type)))
      assert.equal(a.input.revision, sha, a.type);
    assert.ok(
      [...hub.gets.values()].every((c) => c === 1),
      JSON.stringify([...hub.gets]),
    );
    assert.equal(hub.gets.get(`${REPO_ID}/model.safetensors`), 1);
  });
});
