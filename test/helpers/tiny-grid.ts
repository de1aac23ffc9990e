/**
 * The setup the workflow fault tests (and the benches) share: a local Temporal dev server with
 * peftgrid's search attributes, and a one-dataset LoRA grid on the tiny random-init Llama.
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { SEARCH_ATTRIBUTE_KEYS } from '../../src/common/constants';
import type { GridConfig } from '../../src/config/schema';
import { validateGrid } from '../../src/config/validate';
import { createWorkers } from '../../workers/create';
import { REPO, SAMPLES, TEMPORAL_BIN, tinyModel } from './fixtures';

/** A Temporal dev server (in memory) from the bootstrapped CLI, with the search attributes registered. */
export function localTemporal(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: TEMPORAL_BIN },
      searchAttributes: Object.values(SEARCH_ATTRIBUTE_KEYS),
    },
  });
}

export interface TinyGridOptions {
  name: string;
  /** file:// or s3:// URL. */
  store: string;
  maxSteps: number;
  checkpointEverySteps: number;
  /** LoRA ranks: each is one run. @default 4 */
  r?: number | number[];
  /** @default 8 */
  alpha?: number;
  /** @default the tiny random-init Llama */
  model?: { name: string; path: string; family: 'llama' | 'gemma' | 'mistral' | 'template' };
  /** training.device. @default auto */
  device?: 'auto' | 'cpu' | 'cuda';
  /** data.datasets: UnifiedQA names and custom dataset entries. @default ['boolq'] */
  datasets?: unknown[];
  /** Extra top-level config (concurrency, retention, …). */
  extra?: Record<string, unknown>;
}

/** A validated grid: boolq samples, tiny Llama, LoRA, fixed seeds: runs of it are comparable step by step. */
export function tinyLoraGrid(o: TinyGridOptions): GridConfig {
  return validateGrid(
    {
      name: o.name,
      store: o.store,
      data: {
        baseUrl: `file://${SAMPLES}`,
        datasets: o.datasets ?? ['boolq'],
        testSplit: 'test',
        maxTrainPerDataset: 64,
        testSamples: 4,
        seed: 3,
      },
      models: [o.model ?? { name: 'tiny-llama', path: tinyModel('llama'), family: 'llama' }],
      methods: [{ method: 'lora', r: o.r ?? 4, alpha: o.alpha ?? 8 }],
      training: {
        maxSteps: o.maxSteps,
        warmupSteps: 2,
        lr: 1e-3,
        optimizer: 'adamw',
        batchSize: 4,
        checkpointEverySteps: o.checkpointEverySteps,
        maxLength: 256,
        seed: 7,
        ...(o.device ? { device: o.device } : {}),
      },
      eval: { maxNewTokens: 4, batchSize: 4 },
      ...o.extra,
    },
    'test',
    REPO,
  );
}

/** A dev server and peftgrid's workers polling it: what every workflow-tier test starts. */
export interface WorkflowStack {
  env: TestWorkflowEnvironment;
  workers: Worker[];
  /** Shuts the workers down (waiting for them) and tears the server down. */
  stop(): Promise<void>;
}

/** Starts {@link localTemporal} and the cpu + gpu workers, with PEFTGRID_DATA_DIR set to `dataDir`. */
export async function startWorkflowStack(dataDir: string): Promise<WorkflowStack> {
  const env = await localTemporal();
  process.env.PEFTGRID_DATA_DIR = dataDir;
  const workers = await createWorkers({ connection: env.nativeConnection, namespace: env.namespace ?? 'default' });
  const running = Promise.all(workers.map((w) => w.run()));
  return {
    env,
    workers,
    async stop() {
      for (const w of workers) w.shutdown();
      await running.catch(() => undefined);
      await env.teardown();
    },
  };
}
