/**
 * A distilled draft against the undistilled one (issue #15 item 5b), end to end on a dev stack:
 * SmolLM2-135M-Instruct as target, its 10-layer cut (.data/models/smollm2-135m-l10) as draft, on
 * study-small's data (the shipped samples, 48 test items, eval.maxNewTokens 24). One grid: 0-shot
 * ICL of both models (the target-only reference), the plain pair and the `drafting: distilled` pair,
 * both at gamma 3. Prints each run's acceptance, tokens per target pass, tokens/s, speedup and
 * whether its predictions equal the target-only run's (they must; exit 1 when not).
 *
 *   node --import tsx bench/distilled-draft.ts [--steps 200] [--per-dataset 120] [--method full|lora]
 *        [--lr 1e-4] [--gamma 3] [--quick]
 *
 * --per-dataset: training prompts per dataset the target answers (study-small's 120 by default);
 * --quick: 10 per dataset and 20 steps. The distillation runs on the gpu queue's device (CUDA when
 * there is one): on a 2-core CPU shared with other work, decoding 480 prompts alone takes most of an hour.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { TASK_QUEUES } from '../src/common/constants';
import { planRuns } from '../src/config/plan';
import { validateGrid } from '../src/config/validate';
import type { GridResult, RunResult } from '../src/contracts';
import { SAMPLES, scratchDir } from '../test/helpers/fixtures';
import { startWorkflowStack } from '../test/helpers/tiny-grid';
import { benchArgs, intArg, REPO_ROOT } from './engine-models';

Runtime.install({ logger: new DefaultLogger('WARN') });

async function main(): Promise<void> {
  const { quick, values } = benchArgs(process.argv.slice(2), ['steps', 'per-dataset', 'method', 'lr', 'gamma']);
  const steps = intArg(values.steps, quick ? 20 : 200, 'steps');
  const perDataset = intArg(values['per-dataset'], quick ? 10 : 120, 'per-dataset');
  const gamma = intArg(values.gamma, 3, 'gamma');
  const method = values.method ?? 'full';
  if (method !== 'full' && method !== 'lora')
    throw new TypeError(`--method: got ${JSON.stringify(method)}; expected full or lora`);
  const lr = values.lr === undefined ? undefined : Number(values.lr);
  const dir = scratchDir('bench-distilled-draft');
  const stack = await startWorkflowStack(join(dir, 'data'));
  try {
    const grid = validateGrid(
      {
        name: 'bench-distilled-draft',
        store: `file://${join(dir, 'store')}`,
        data: {
          baseUrl: `file://${SAMPLES}`,
          datasets: ['boolq', 'arc_easy', 'squad1_1', 'narrativeqa'],
          testSplit: 'test',
          maxTrainPerDataset: perDataset,
          testSamples: 48,
          seed: 42,
        },
        models: [
          { name: 'smollm2-135m', path: join(REPO_ROOT, '.data/models/smollm2-135m-instruct'), family: 'template' },
          { name: 'smollm2-135m-l10', path: join(REPO_ROOT, '.data/models/smollm2-135m-l10'), family: 'template' },
        ],
        methods: [{ method: 'icl', shots: [0] }],
        training: { warmupSteps: 3, optimizer: 'adamw', batchSize: 8, checkpointEverySteps: 25, maxLength: 256 },
        eval: { maxNewTokens: 24, batchSize: 16 },
        speculative: [
          { target: 'smollm2-135m', draft: 'smollm2-135m-l10', gamma },
          {
            target: 'smollm2-135m',
            draft: 'smollm2-135m-l10',
            drafting: 'distilled',
            distill: { steps, method, ...(lr === undefined ? {} : { lr }) },
            gamma,
          },
        ],
        concurrency: { gpu: 1, cpu: 1 },
      },
      'bench',
      REPO_ROOT,
    );
    const gridId = `bench-distilled-draft-${Date.now()}`;
    const started = Date.now();
    const result = (await stack.env.client.workflow.execute('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: gridId,
      args: [{ gridId, grid, runs: planRuns(grid) }],
    })) as GridResult;
    const predictions = (r: RunResult): string[] =>
      readFileSync(join(dir, 'store', 'runs', r.provenance!.evalKey!, 'eval', 'predictions.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { prediction: string }).prediction);
    const reference = result.runs.find((r) => r.model === 'smollm2-135m' && r.method === 'icl')!;
    let identical = true;
    for (const r of result.runs.filter((run) => run.method === 'speculative')) {
      const same = r.status === 'completed' && predictions(r).join('\0') === predictions(reference).join('\0');
      identical &&= same;
      const t = r.throughput;
      console.log(
        `${r.label}: ${r.status}${r.error ? ` (${r.error})` : ''}; acceptance ${t?.acceptanceRate}, ` +
          `tokens/target pass ${t?.tokensPerTargetPass}, ${t?.tokensPerSec?.toFixed(1)} tokens/s vs target-only ` +
          `${t?.targetOnlyTokensPerSec?.toFixed(1)}: speedup ${t?.speedup?.toFixed(2)}×; same tokens as target-only: ${same}` +
          (r.training ? `; distilled ${r.training.steps} steps, train loss ${r.training.trainLoss.toFixed(3)}` : ''),
      );
    }
    console.log(`${((Date.now() - started) / 1000).toFixed(0)} s; store ${dir}`);
    if (!identical) process.exitCode = 1;
  } finally {
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
