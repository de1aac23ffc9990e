/**
 * Experiment tracking against a real MLflow server (`mlflow server`, SQLite backend, artifacts
 * served) and a real dev Temporal: a tiny LoRA grid on UnifiedQA's boolq sample plus the shipped
 * JSONL dataset datasets/samples/custom/category_mc (multiple choice) with `tracking.mlflow` logs
 * one MLflow run per grid run, with its params, per-step metrics, final metrics and artifacts
 * (predictions of both datasets); the worker training it is SIGKILLed mid-run and a fresh one
 * resumes, and the MLflow run stays one run whose step metrics continue (each step once, equal to
 * the store's loss history). A run that fails closes its MLflow run as FAILED with the failure.
 * A tracker on a closed port costs a warning, never the run.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { runWorkflowId, TASK_QUEUES } from '../../src/common/constants';
import { planRuns } from '../../src/config/plan';
import type { GridConfig } from '../../src/config/schema';
import type { GridResult } from '../../src/contracts';
import { REPO, scratchDir } from '../helpers/fixtures';
import {
  experimentRuns,
  listArtifacts,
  metricHistory,
  readArtifact,
  startMlflowServer,
  type MlflowRunView,
  type MlflowServer,
} from '../helpers/mlflow-server';
import { keysOf } from '../helpers/run-keys';
import { localTemporal, tinyLoraGrid } from '../helpers/tiny-grid';
import {
  logRecords,
  pendingHeartbeat,
  startWorkerProcess,
  waitForPollers,
  type WorkerProcess,
} from '../helpers/worker-process';

const MAX_STEPS = 24;
// A shipped JSONL sample in the qa layout (the config shape of examples/custom-jsonl.yaml).
const CUSTOM = {
  name: 'category_mc',
  format: 'multiple_choice',
  layout: 'qa',
  train: 'datasets/samples/custom/category_mc/train.jsonl',
  test: 'datasets/samples/custom/category_mc/test.jsonl',
} as const;
const EVERY = 4;
// Nothing listens here (this suite's range is 27500-27509; the server takes 27500).
const CLOSED_URI = 'http://127.0.0.1:27509';

describe('MLflow tracking on a real server', { timeout: 20 * 60_000 }, () => {
  let env: TestWorkflowEnvironment;
  let mlflow: MlflowServer;
  const workers: WorkerProcess[] = [];
  const dir = scratchDir('mlflow-tracking');

  before(async () => {
    [env, mlflow] = await Promise.all([localTemporal(), startMlflowServer(join(dir, 'mlflow'), 27500)]);
  });
  after(async () => {
    for (const w of workers) w.child.kill('SIGKILL');
    await env?.teardown();
    await mlflow?.stop();
  });

  const address = () => env.connection.options.address;
  const startGrid = (g: GridConfig, id: string) => {
    const runs = planRuns(g);
    const handle = env.client.workflow.start('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: id,
      args: [{ gridId: id, grid: g, runs }],
    });
    return { handle, runKey: runs[0]!.runKey };
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('one MLflow run per grid run with params, step and final metrics, artifacts; a killed run resumes into the same MLflow run', async () => {
    const g = tinyLoraGrid({
      name: 'mlflow-acc',
      store: `file://${join(dir, 'store')}`,
      maxSteps: MAX_STEPS,
      checkpointEverySteps: EVERY,
      datasets: ['boolq', CUSTOM],
      extra: { tracking: { mlflow: { uri: mlflow.uri, experiment: 'peftgrid-acceptance' } } },
    });
    const a = startWorkerProcess(address(), join(dir, 'worker-a'), 'a', 'cpu,gpu', 'debug');
    workers.push(a);
    await waitForPollers(env.client);
    const { handle: started, runKey } = startGrid(g, 'mlflow-acc');
    const handle = await started;

    // Kill once the attempt has committed a checkpoint and logged steps past it to MLflow: the
    // resumed trainer then repeats steps the tracker already holds, which must not be logged twice.
    let logged = 0;
    for (;;) {
      const hb = await pendingHeartbeat<{ step?: number; checkpointKey?: string }>(env.client, runWorkflowId(runKey));
      const ckpt = Number(/step-(\d+)/.exec(hb?.details.checkpointKey ?? '')?.[1] ?? 0);
      const runs = await experimentRuns(mlflow.uri, 'peftgrid-acceptance');
      logged = runs.length ? (await metricHistory(mlflow.uri, runs[0]!.info.run_id, 'loss')).length : 0;
      if (ckpt >= EVERY && logged > ckpt) break;
      assert.ok((hb?.details.step ?? 0) < MAX_STEPS - EVERY, `the run got too far before the kill (logged ${logged})`);
      await sleep(100);
    }
    a.child.kill('SIGKILL');
    await a.exited;
    const b = startWorkerProcess(address(), join(dir, 'worker-b'), 'b', 'cpu,gpu', 'info');
    workers.push(b);
    const result = (await handle.result()) as GridResult;
    const run = result.runs[0]!;
    assert.equal(run.status, 'completed', run.error);
    const resumed = Number(logRecords(b.output(), 'resuming from checkpoint')[0]?.step ?? NaN);
    const continued = logRecords(b.output(), 'continuing the MLflow run of an earlier attempt')[0];
    assert.ok(Number.isFinite(resumed), `worker b resumed the killed training:\n${b.output().slice(-2000)}`);
    assert.ok(
      Number(continued?.lastLoggedStep) > resumed,
      `worker b found the MLflow run with steps past its checkpoint ${resumed} (${JSON.stringify(continued)})`,
    );

    const all = await experimentRuns(mlflow.uri, 'peftgrid-acceptance');
    const kind = (r: MlflowRunView) => r.data.tags?.find((t) => t.key === 'peftgrid.kind')?.value;
    const runs = all.filter((r) => kind(r) !== 'grid');
    assert.equal(runs.length, 1, `one MLflow run, not one per attempt: ${runs.map((r) => r.info.run_id).join(', ')}`);
    const mr = runs[0]!;
    const tags = Object.fromEntries((mr.data.tags ?? []).map((t) => [t.key, t.value]));
    const { trainingKey, evalKey } = keysOf(run);
    assert.equal(tags['peftgrid.key'], trainingKey);
    assert.equal(tags['peftgrid.evalKey'], evalKey);
    assert.equal(tags['mlflow.runName'], runKey);
    assert.equal(mr.info.status, 'FINISHED');

    const params = Object.fromEntries((mr.data.params ?? []).map((p) => [p.key, p.value]));
    assert.equal(params['method.method'], 'lora');
    assert.equal(params['method.r'], '4');
    assert.equal(params['training.maxSteps'], String(MAX_STEPS));
    assert.equal(params['training.lr'], '0.001');
    const datasets = JSON.parse(params['data.datasets']!) as (
      string | { name: string; format: string; train: string }
    )[];
    assert.equal(datasets[0], 'boolq');
    const custom = datasets[1] as { name: string; format: string; train: string };
    assert.equal(custom.name, 'category_mc');
    assert.equal(custom.format, 'multiple_choice');
    assert.match(custom.train, /datasets\/samples\/custom\/category_mc\/train\.jsonl$/);
    assert.equal(params['model.name'], 'tiny-llama');

    // Step metrics continue across the kill: every step exactly once, and equal to the store's
    // loss history (the resumed trainer repeats steps after its checkpoint; those are not re-logged).
    const loss = await metricHistory(mlflow.uri, mr.info.run_id, 'loss');
    assert.deepEqual(
      loss.map((m) => m.step),
      Array.from({ length: MAX_STEPS }, (_, i) => i + 1),
    );
    const storeLosses = (
      JSON.parse(readFileSync(join(dir, 'store', 'runs', trainingKey!, 'final', 'training_log.json'), 'utf8')) as {
        losses: number[];
      }
    ).losses;
    for (const m of loss) assert.ok(Math.abs(m.value - storeLosses[m.step - 1]!) < 1e-6, `loss at step ${m.step}`);
    for (const key of ['lr', 'tokens_per_sec']) {
      assert.equal((await metricHistory(mlflow.uri, mr.info.run_id, key)).length, MAX_STEPS, key);
    }

    const latest = Object.fromEntries((mr.data.metrics ?? []).map((m) => [m.key, m.value]));
    const overall = run.metrics!.overall;
    assert.equal(latest['eval.exactMatch'], overall.metrics.exactMatch!.estimate);
    assert.equal(latest['eval.jaccardStudy'], overall.metrics.jaccardStudy!.estimate);
    assert.equal(latest['eval.tokens_per_sec'], run.throughput!.tokensPerSec);
    assert.equal(latest['train.final_loss'], run.training!.trainLoss);
    assert.equal(latest['train.perplexity'], run.training!.trainPerplexity);
    assert.equal(latest['eval.perplexity'], overall.perplexity!.estimate);
    assert.equal(latest['train.steps'], MAX_STEPS);

    assert.deepEqual(await listArtifacts(mlflow.uri, mr.info.run_id), [
      'eval/metrics.json',
      'eval/predictions.jsonl',
      'result.json',
    ]);
    const predictions = (await readArtifact(mlflow.uri, mr.info.artifact_uri, 'eval/predictions.jsonl'))
      .trim()
      .split('\n');
    assert.equal(predictions.length, overall.n);
    // The custom dataset's test items, scored as multiple choice: each prediction's references are
    // its line's answer in the shipped test file.
    const shipped = new Map(
      readFileSync(join(REPO, CUSTOM.test), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { question: string; answer: string })
        .map((r) => [r.answer, r]),
    );
    const items = predictions.map((l) => JSON.parse(l) as { dataset: string; format: string; references: string[] });
    const customItems = items.filter((p) => p.dataset === 'category_mc');
    assert.ok(customItems.length > 0 && customItems.length < items.length, `both datasets: ${JSON.stringify(items)}`);
    for (const p of customItems) {
      assert.equal(p.format, 'multiple_choice');
      assert.ok(shipped.has(p.references[0]!), `reference ${p.references[0]} is an answer of ${CUSTOM.test}`);
    }
    assert.ok(items.some((p) => p.dataset === 'boolq'));
    // The grid's report: an MLflow run of its own with the report's files.
    const gridRuns = all.filter((r) => kind(r) === 'grid');
    assert.equal(gridRuns.length, 1);
    const gr = gridRuns[0]!;
    const reportFiles = await listArtifacts(mlflow.uri, gr.info.run_id);
    for (const f of ['report/report.md', 'report/results.csv', 'report/results.json'])
      assert.ok(reportFiles.includes(f), `${f} in ${reportFiles.join(', ')}`);
    assert.equal(await readArtifact(mlflow.uri, gr.info.artifact_uri, 'report/report.md'), result.markdown);
    assert.equal(gr.info.status, 'FINISHED');
    const saved = JSON.parse(await readArtifact(mlflow.uri, mr.info.artifact_uri, 'result.json')) as { runKey: string };
    assert.equal(saved.runKey, runKey);
    console.log(
      `MLflow run ${mr.info.run_id}: ${loss.length} loss steps (${logged} logged before the SIGKILL), ` +
        `resumed from ${resumed}; ${Object.keys(params).length} params, EM ${overall.metrics.exactMatch!.estimate}`,
    );
    b.child.kill('SIGTERM');
    await b.exited;
  });

  it('a run that fails closes its MLflow run as FAILED, with the failure as tags', async () => {
    // LoRA on a module the model does not have: the trainer refuses it (InvalidSpec, not retried)
    // right after loading the model, which is the cheapest failure after the run has its keys.
    const g = tinyLoraGrid({
      name: 'mlflow-failed',
      store: `file://${join(dir, 'store-failed')}`,
      maxSteps: 4,
      checkpointEverySteps: 2,
      datasets: [CUSTOM],
      extra: {
        methods: [{ method: 'lora', r: 4, targetModules: ['no_such_proj'] }],
        tracking: { mlflow: { uri: mlflow.uri, experiment: 'peftgrid-failed' } },
      },
    });
    const d = startWorkerProcess(address(), join(dir, 'worker-d'), 'd', 'cpu,gpu', 'info');
    workers.push(d);
    await waitForPollers(env.client);
    const t0 = Date.now();
    const result = (await (await startGrid(g, 'mlflow-failed').handle).result()) as GridResult;
    const run = result.runs[0]!;
    assert.equal(run.status, 'failed');
    const runs = (await experimentRuns(mlflow.uri, 'peftgrid-failed')).filter(
      (r) => !r.data.tags?.some((t) => t.key === 'peftgrid.kind' && t.value === 'grid'),
    );
    assert.equal(runs.length, 1);
    const mr = runs[0]!;
    assert.equal(mr.info.status, 'FAILED');
    const tags = Object.fromEntries((mr.data.tags ?? []).map((t) => [t.key, t.value]));
    assert.equal(tags['mlflow.runName'], run.runKey);
    assert.equal(tags['peftgrid.errorType'], 'InvalidSpec');
    assert.match(tags['peftgrid.error'] ?? '', /method\.targetModules: got \['no_such_proj'\]/);
    const params = Object.fromEntries((mr.data.params ?? []).map((p) => [p.key, p.value]));
    assert.equal(params['method.targetModules'], '["no_such_proj"]');
    console.log(
      `failed run: MLflow run ${mr.info.run_id} ${mr.info.status} (${tags['peftgrid.errorType']}) ` +
        `in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
    );
    d.child.kill('SIGTERM');
    await d.exited;
  });

  it('a tracking server that cannot be reached: the run completes and the worker warns, naming the uri', async () => {
    const g = tinyLoraGrid({
      name: 'mlflow-down',
      store: `file://${join(dir, 'store-down')}`,
      maxSteps: 4,
      checkpointEverySteps: 2,
      extra: { tracking: { mlflow: { uri: CLOSED_URI } } },
    });
    const c = startWorkerProcess(address(), join(dir, 'worker-c'), 'c', 'cpu,gpu', 'info');
    workers.push(c);
    await waitForPollers(env.client);
    const t0 = Date.now();
    const result = (await (await startGrid(g, 'mlflow-down').handle).result()) as GridResult;
    assert.equal(result.runs[0]!.status, 'completed', result.runs[0]!.error);
    const warnings = c
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: number; msg: string; trackingUri?: string; skipped?: unknown })
      .filter((r) => r.level === 40 && r.trackingUri === CLOSED_URI);
    const msgs = warnings.map((w) => w.msg).join('\n');
    assert.match(msgs, /MLflow tracker http:\/\/127\.0\.0\.1:27509 did not take step metrics 1-4/);
    assert.match(msgs, /could not log the whole run; the run's result is saved/);
    assert.match(msgs, /could not log the grid report; the report is in the store regardless/);
    console.log(
      `closed tracking port: run completed in ${((Date.now() - t0) / 1000).toFixed(0)} s with ${warnings.length} warnings`,
    );
    c.child.kill('SIGTERM');
    await c.exited;
  });
});
