/**
 * examples/custom-jsonl.yaml through a whole grid, cut to a minute or two with `--set`: the shipped
 * JSONL samples (qa and chat layouts) and the boolq sample, a tiny random-init Llama instead of
 * SmolLM2, zero-shot ICL and LoRA for a few steps, on a local Temporal dev server (ephemeral port)
 * with the real workers. Prints each run's status and metrics by format and the per-dataset table,
 * so one sees custom datasets reach evaluation and the report under their declared formats.
 *
 *   node --import tsx bench/custom-jsonl-grid.ts
 */
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { TASK_QUEUES } from '../src/common/constants';
import { planRuns } from '../src/config/plan';
import { loadGridConfig } from '../src/config/validate';
import type { GridResult } from '../src/contracts';
import { createWorkers } from '../workers/create';
import { REPO, scratchDir, tinyModel } from '../test/helpers/fixtures';
import { localTemporal } from '../test/helpers/tiny-grid';

Runtime.install({ logger: new DefaultLogger('WARN') });

async function main(): Promise<void> {
  const dir = scratchDir('bench-custom-jsonl');
  const grid = loadGridConfig(join(REPO, 'examples', 'custom-jsonl.yaml'), REPO, [
    `store=file://${join(dir, 'store')}`,
    `models.0.path=${tinyModel('llama')}`,
    'models.0.family=llama',
    'data.maxTrainPerDataset=16',
    'data.testSamples=12',
    'training.maxSteps=4',
    'training.warmupSteps=1',
    'training.checkpointEverySteps=2',
    'training.batchSize=4',
    'training.maxLength=128',
    'eval.maxNewTokens=4',
    'eval.batchSize=4',
  ]);
  const env = await localTemporal();
  process.env.PEFTGRID_DATA_DIR = join(dir, 'data');
  const workers = await createWorkers({ connection: env.nativeConnection, namespace: env.namespace ?? 'default' });
  const running = Promise.all(workers.map((w) => w.run()));
  const t0 = Date.now();
  try {
    const gridId = `bench-custom-jsonl-${Date.now()}`;
    const result = (await env.client.workflow.execute('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: gridId,
      args: [{ gridId, grid, runs: planRuns(grid) }],
    })) as GridResult;
    console.log(`grid ${gridId}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    for (const r of result.runs) console.log(JSON.stringify({ runKey: r.runKey, status: r.status, error: r.error }));
    console.log(result.markdown);
  } finally {
    for (const w of workers) w.shutdown();
    await running.catch(() => undefined);
    await env.teardown();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
