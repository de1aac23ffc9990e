/**
 * Training throughput through the whole workflow vs the same spec run directly (issue: checkpoint
 * upload must not stall training; goal ≥ 0.95×). For each method: one grid run on a real dev
 * server + in-process worker, then `python -m trainer train` on the identical spec and shard.
 * Tokens are the same on both sides, so the ratio is direct wall time / train-activity wall time.
 *
 *   node --import tsx bench/train-overhead.ts [--model DIR] [--family F] [--methods lora,ia3] [--steps 30] [--every 5]
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { runWorkflowId, SEARCH_ATTRIBUTE_KEYS, TASK_QUEUES } from '../src/common/constants';
import { planRuns } from '../src/config/plan';
import { validateGrid } from '../src/config/validate';
import { readPgtok } from '../src/data';
import { createWorkers } from '../workers/create';
import type { GridResult } from '../workflows/types';
import { PYTHON, REPO, SAMPLES, TEMPORAL_BIN, tinyModel } from '../test/helpers/fixtures';

const { values } = parseArgs({ options: {
  model: { type: 'string' }, family: { type: 'string', default: 'llama' }, methods: { type: 'string', default: 'lora,adalora,ia3,prompt_tuning,qlora,full' },
  steps: { type: 'string', default: '30' }, every: { type: 'string', default: '5' },
} });
Runtime.install({ logger: new DefaultLogger('WARN') });
process.env.PEFTGRID_LOG_LEVEL ??= 'warn';

const METHOD: Record<string, Record<string, unknown>> = {
  lora: { method: 'lora', r: 8, alpha: 16 }, qlora: { method: 'qlora', r: 8, alpha: 16 },
  adalora: { method: 'adalora', initR: 12, targetR: 8, tinit: 4, tfinal: 8, deltaT: 2 }, ia3: { method: 'ia3' },
  prompt_tuning: { method: 'prompt_tuning', numVirtualTokens: 8 }, full: { method: 'full' },
};

async function main(): Promise<void> {
  const dir = join(REPO, '.data', 'bench', `train-overhead-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  process.env.PEFTGRID_DATA_DIR = join(dir, 'worker');
  const modelPath = values.model ?? tinyModel('llama');
  const steps = Number(values.steps);
  const env = await TestWorkflowEnvironment.createLocal({ server: { executable: { type: 'existing-path', path: TEMPORAL_BIN }, searchAttributes: Object.values(SEARCH_ATTRIBUTE_KEYS) } });
  const workers = await createWorkers({ connection: env.nativeConnection, namespace: 'default' });
  const running = Promise.all(workers.map((w) => w.run()));
  const rows: string[] = [];
  try {
    for (const name of String(values.methods).split(',')) {
      const g = validateGrid({
        name: `bench-${name.replace('_', '-')}`, store: `file://${join(dir, 'store')}`,
        data: { baseUrl: `file://${SAMPLES}`, datasets: ['boolq', 'squad1_1'], testSplit: 'test', maxTrainPerDataset: 120, testSamples: 4 },
        models: [{ name: 'm', path: modelPath, family: values.family }],
        methods: [METHOD[name]],
        training: { maxSteps: steps, warmupSteps: 2, lr: 1e-3, optimizer: 'adamw', batchSize: 8, checkpointEverySteps: Number(values.every), maxLength: 256 },
        eval: { maxNewTokens: 4, batchSize: 4 },
      }, 'bench', REPO);
      const runs = planRuns(g);
      const gridId = `bench-${name}-${Date.now()}`;
      const result = (await env.client.workflow.execute('experimentGridWorkflow', { taskQueue: TASK_QUEUES.cpu, workflowId: gridId, args: [{ gridId, grid: g, runs }] })) as GridResult;
      if (result.runs[0]!.status !== 'completed') throw new Error(`${name}: ${result.runs[0]!.error}`);
      // Train activity wall time from the run's history: started → completed (last attempt).
      const history = await env.client.workflow.getHandle(runWorkflowId(runs[0]!.runKey)).fetchHistory();
      const events = history.events ?? [];
      const sched = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'trainModel');
      const started = events.find((e) => e.activityTaskStartedEventAttributes && String(e.activityTaskStartedEventAttributes.scheduledEventId) === String(sched?.eventId));
      const completed = events.find((e) => e.activityTaskCompletedEventAttributes && String(e.activityTaskCompletedEventAttributes.scheduledEventId) === String(sched?.eventId));
      const ms = (e: typeof started) => Number(e!.eventTime!.seconds) * 1000 + Math.round((e!.eventTime!.nanos ?? 0) / 1e6);
      const workflowMs = ms(completed) - ms(started);

      // The identical spec and shard, run directly.
      const tokDir = join(dir, 'store', 'datasets', 'tokenized');
      const shard = spawnSync('bash', ['-c', `ls ${tokDir}/*/train.pgtok | head -1`], { encoding: 'utf8' }).stdout.trim();
      const examples = readPgtok(readFileSync(shard));
      const spec = {
        runKey: `direct-${name}`, modelPath, family: values.family, method: runs[0]!.method, trainData: shard,
        outputDir: join(dir, `direct-${name}`), training: g.training, device: 'auto',
      };
      writeFileSync(join(dir, `direct-${name}.json`), JSON.stringify(spec));
      const t0 = Date.now();
      const direct = spawnSync(PYTHON, ['-m', 'trainer', 'train', '--spec', join(dir, `direct-${name}.json`)], { cwd: REPO, encoding: 'utf8', maxBuffer: 1 << 26 });
      const directMs = Date.now() - t0;
      if (direct.status !== 0) throw new Error(`direct ${name} failed: ${direct.stderr.slice(-500)}`);
      const tokensPerStep = examples.slice(0, 8).reduce((s, e) => s + e.ids.length, 0);
      rows.push(`| ${name} | ${steps} | ${(directMs / 1000).toFixed(1)} | ${(workflowMs / 1000).toFixed(1)} | ${(steps * tokensPerStep / (directMs / 1000)).toFixed(0)} | ${(steps * tokensPerStep / (workflowMs / 1000)).toFixed(0)} | ${(directMs / workflowMs).toFixed(3)} |`);
      console.error(rows.at(-1));
    }
  } finally {
    for (const w of workers) w.shutdown();
    await running;
    await env.teardown();
  }
  console.log(`\nmodel ${modelPath}, ${steps} steps, checkpoint every ${values.every}, batch 8\n`);
  console.log('| method | steps | direct s | workflow train activity s | direct tok/s (approx) | workflow tok/s (approx) | workflow ÷ direct throughput |');
  console.log('| --- | --: | --: | --: | --: | --: | --: |');
  for (const r of rows) console.log(r);
}

main().catch((err) => { console.error(err); process.exit(1); });
