/**
 * Training throughput through the whole workflow vs the same spec run directly (issue: checkpoint
 * upload must not stall training; goal ≥ 0.95×). For each method: one grid run on a real dev
 * server + in-process worker, then `python -m trainer train` on the identical spec and shard.
 * Two ratios: wall (direct process wall time ÷ train-activity wall time, so it includes model
 * materialization, process start-up and the final upload) and loop (Σ tokens ÷ training-loop time,
 * as the activity reports it, workflow ÷ direct: what an upload stalling training would show up in).
 * The store defaults to SeaweedFS (S3 API, built by `infra/bootstrap.sh --with-s3`); --store file
 * uses a directory.
 *
 *   node --import tsx bench/train-overhead.ts [--model DIR] [--family F] [--methods lora,ia3] [--steps 30] [--every 5] [--store s3|file] [--repeats 1]
 */
import './quiet-logs';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { runWorkflowId, TASK_QUEUES } from '../src/common/constants';
import { planRuns } from '../src/config/plan';
import { validateGrid } from '../src/config/validate';
import { openStore } from '../src/store';
import { createWorkers } from '../workers/create';
import type { GridResult } from '../src/contracts';
import { PYTHON, REPO, SAMPLES, tinyModel } from '../test/helpers/fixtures';
import { localTemporal } from '../test/helpers/tiny-grid';
import { startS3Server, type S3Server } from '../test/helpers/s3-server';

const execFileAsync = promisify(execFile);
const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    family: { type: 'string', default: 'llama' },
    methods: { type: 'string', default: 'lora,adalora,ia3,prompt_tuning,qlora,full' },
    steps: { type: 'string', default: '30' },
    every: { type: 'string', default: '5' },
    store: { type: 'string', default: 's3' },
    repeats: { type: 'string', default: '1' },
  },
});
Runtime.install({ logger: new DefaultLogger('WARN') });

const METHOD: Record<string, Record<string, unknown>> = {
  lora: { method: 'lora', r: 8, alpha: 16 },
  qlora: { method: 'qlora', r: 8, alpha: 16 },
  adalora: { method: 'adalora', initR: 12, targetR: 8, tinit: 4, tfinal: 8, deltaT: 2 },
  ia3: { method: 'ia3' },
  prompt_tuning: { method: 'prompt_tuning', numVirtualTokens: 8 },
  full: { method: 'full' },
};

async function main(): Promise<void> {
  const dir = join(REPO, '.data', 'bench', `train-overhead-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  process.env.PEFTGRID_DATA_DIR = join(dir, 'worker');
  const modelPath = values.model ?? tinyModel('llama');
  if (values.store !== 's3' && values.store !== 'file')
    throw new TypeError(`--store: got ${values.store}, expected s3 or file`);
  let s3: S3Server | undefined;
  let store = `file://${join(dir, 'store')}`;
  if (values.store === 's3') {
    s3 = await startS3Server(join(dir, 'weed'), 29800);
    Object.assign(process.env, s3.env);
    store = `s3://${s3.bucket}/bench-train-overhead`;
  }
  const steps = Number(values.steps);
  const env = await localTemporal();
  const workers = await createWorkers({ connection: env.nativeConnection, namespace: 'default' });
  const running = Promise.all(workers.map((w) => w.run()));
  const rows: string[] = [];
  const repeats = Number(values.repeats);
  const median = (xs: number[]) => {
    const s = [...xs].sort((p, q) => p - q);
    return (s[Math.floor((s.length - 1) / 2)]! + s[Math.ceil((s.length - 1) / 2)]!) / 2;
  };
  try {
    for (const name of String(values.methods).split(',')) {
      const sides: Record<'direct' | 'workflow', { wallMs: number; loop: number }[]> = { direct: [], workflow: [] };
      for (let rep = 0; rep < repeats; rep++) {
        // A different seed per repeat gives a new run key (a repeat is a new run, not a reused one).
        const g = validateGrid(
          {
            name: `bench-${name.replace('_', '-')}`,
            store,
            data: {
              baseUrl: `file://${SAMPLES}`,
              datasets: ['boolq', 'squad1_1'],
              testSplit: 'test',
              maxTrainPerDataset: 120,
              testSamples: 4,
            },
            models: [{ name: 'm', path: modelPath, family: values.family }],
            methods: [METHOD[name]],
            training: {
              maxSteps: steps,
              warmupSteps: 2,
              lr: 1e-3,
              optimizer: 'adamw',
              batchSize: 8,
              checkpointEverySteps: Number(values.every),
              maxLength: 256,
              seed: 100 + rep,
            },
            eval: { maxNewTokens: 4, batchSize: 4 },
          },
          'bench',
          REPO,
        );
        const runs = planRuns(g);
        const viaWorkflow = async () => {
          const gridId = `bench-${name}-${Date.now()}`;
          const result = (await env.client.workflow.execute('experimentGridWorkflow', {
            taskQueue: TASK_QUEUES.cpu,
            workflowId: gridId,
            args: [{ gridId, grid: g, runs }],
          })) as GridResult;
          if (result.runs[0]!.status !== 'completed') throw new Error(`${name}: ${result.runs[0]!.error}`);
          // Train activity wall time from the run's history: started → completed.
          const events =
            (await env.client.workflow.getHandle(runWorkflowId(runs[0]!.runKey)).fetchHistory()).events ?? [];
          const sched = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'trainModel');
          const started = events.find(
            (e) =>
              e.activityTaskStartedEventAttributes &&
              String(e.activityTaskStartedEventAttributes.scheduledEventId) === String(sched?.eventId),
          );
          const completed = events.find(
            (e) =>
              e.activityTaskCompletedEventAttributes &&
              String(e.activityTaskCompletedEventAttributes.scheduledEventId) === String(sched?.eventId),
          );
          const ms = (e: typeof started) =>
            Number(e!.eventTime!.seconds) * 1000 + Math.round((e!.eventTime!.nanos ?? 0) / 1e6);
          sides.workflow.push({ wallMs: ms(completed) - ms(started), loop: result.runs[0]!.training!.tokensPerSec! });
        };
        const direct = async () => {
          // The identical spec and shard (tokenized by the workflow; tokenization is deterministic).
          const shard = join(dir, `direct-${name}.train.pgtok`);
          const objects = openStore(store);
          const shardKey = (await objects.list('datasets/tokenized/')).find((o) => o.key.endsWith('/train.pgtok'));
          if (!shardKey) throw new Error('no tokenized train shard in the store');
          await objects.getFile(shardKey.key, shard);
          const specPath = join(dir, `direct-${name}-${rep}.json`);
          writeFileSync(
            specPath,
            JSON.stringify({
              runKey: `direct-${name}`,
              modelPath,
              family: values.family,
              method: runs[0]!.method,
              trainData: shard,
              outputDir: join(dir, `direct-${name}-${rep}`),
              training: g.training,
              device: g.training.device,
            }),
          );
          // Asynchronous, like the activity's spawn: a blocked event loop would starve the
          // in-process worker's threads differently than a running one does.
          const t0 = Date.now();
          const { stdout } = await execFileAsync(PYTHON, ['-m', 'trainer', 'train', '--spec', specPath], {
            cwd: REPO,
            maxBuffer: 1 << 26,
          });
          const wallMs = Date.now() - t0;
          // Training-loop throughput, defined as the train activity defines it: Σ tokens / loop time.
          const stepEvents = stdout
            .split('\n')
            .filter((l) => l.startsWith('{'))
            .map((l) => JSON.parse(l) as { event: string; tokens: number; elapsedMs: number })
            .filter((e) => e.event === 'step');
          sides.direct.push({
            wallMs,
            loop: stepEvents.reduce((t, e) => t + e.tokens, 0) / (stepEvents.at(-1)!.elapsedMs / 1000),
          });
        };
        // Alternate the order (the first run must be the workflow: it tokenizes the shard) so that
        // warm caches and drift favour neither side.
        if (rep % 2 === 0) {
          await viaWorkflow();
          await direct();
        } else {
          await direct();
          await viaWorkflow();
        }
        console.error(
          `${name} #${rep + 1}: direct ${JSON.stringify(sides.direct.at(-1))} workflow ${JSON.stringify(sides.workflow.at(-1))}`,
        );
      }
      const dWall = median(sides.direct.map((x) => x.wallMs));
      const wWall = median(sides.workflow.map((x) => x.wallMs));
      const dLoop = median(sides.direct.map((x) => x.loop));
      const wLoop = median(sides.workflow.map((x) => x.loop));
      rows.push(
        `| ${name} | ${steps} | ${(dWall / 1000).toFixed(1)} | ${(wWall / 1000).toFixed(1)} | ${(dWall / wWall).toFixed(3)} | ${dLoop.toFixed(0)} | ${wLoop.toFixed(0)} | ${(wLoop / dLoop).toFixed(3)} |`,
      );
      console.error(rows.at(-1));
    }
  } finally {
    for (const w of workers) w.shutdown();
    await running;
    await env.teardown();
    await s3?.stop();
  }
  console.log(
    `\nmodel ${modelPath}, ${steps} steps, checkpoint every ${values.every}, batch 8, store ${values.store}, median of ${repeats} repeat(s), order alternating\n`,
  );
  console.log(
    '| method | steps | direct wall s | train activity wall s | wall ratio (direct ÷ activity) | direct loop tok/s | workflow loop tok/s | loop ratio (workflow ÷ direct) |',
  );
  console.log('| --- | --: | --: | --: | --: | --: | --: | --: |');
  for (const r of rows) console.log(r);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
