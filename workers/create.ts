/**
 * Builds the workers of one process: `cpu` (workflows + data/eval/report activities) and `gpu`
 * (train/export and torch-engine evaluation, one at a time per GPU). Tests build them the same way against their own server.
 */
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import * as activities from '../activities';
import { TASK_QUEUES, type QueueKind } from '../src/common/constants';
import { workerShutdownMs } from '../src/common/shutdown';
import { deploymentOptions, type ResolvedDeployment } from './versioning';

export interface WorkerSetOptions {
  connection: NativeConnection;
  namespace: string;
  /** Which queues this process polls. @default ['cpu', 'gpu'] */
  queues?: QueueKind[];
  /** Concurrent train/export activities (one per GPU). @default 1 */
  gpuSlots?: number;
  /** Concurrent cpu activities. @default 4 */
  cpuSlots?: number;
  /**
   * Worker Deployment Versioning (workers/versioning.ts `resolveDeployment`): both workers announce
   * this version and workflows are pinned to it. @default unversioned
   */
  deployment?: ResolvedDeployment;
  /** The workflow code of the cpu worker (ignored when `deployment` carries its bundle). @default workflows/ */
  workflowsPath?: string;
  /** Extra options for every worker (tests pass shorter shutdown times). */
  overrides?: Partial<WorkerOptions>;
}

// evaluateModel too: the torch engine (eval.engine) evaluates on the gpu queue, where the model fits.
const gpuActivities = {
  trainModel: activities.trainModel,
  distillDraft: activities.distillDraft,
  exportModel: activities.exportModel,
  evaluateModel: activities.evaluateModel,
  // A gpu-only worker stages its own copy of a hub model (its cache is per worker).
  stageModel: activities.stageModel,
};

export async function createWorkers(opts: WorkerSetOptions): Promise<Worker[]> {
  const queues = opts.queues ?? ['cpu', 'gpu'];
  // Read (and validated) before any worker exists: a bad PEFTGRID_WORKER_SHUTDOWN_MS fails start-up.
  const shutdownMs = workerShutdownMs();
  const versioned = opts.deployment ? deploymentOptions(opts.deployment.version) : {};
  const workflowCode = opts.deployment?.workflowBundle
    ? { workflowBundle: opts.deployment.workflowBundle }
    : { workflowsPath: opts.workflowsPath ?? require.resolve('../workflows') };
  const workers: Worker[] = [];
  if (queues.includes('cpu')) {
    workers.push(
      await Worker.create({
        connection: opts.connection,
        namespace: opts.namespace,
        taskQueue: TASK_QUEUES.cpu,
        ...workflowCode,
        activities,
        maxConcurrentActivityTaskExecutions: opts.cpuSlots ?? 4,
        ...versioned,
        ...opts.overrides,
      }),
    );
  }
  if (queues.includes('gpu')) {
    workers.push(
      await Worker.create({
        connection: opts.connection,
        namespace: opts.namespace,
        taskQueue: TASK_QUEUES.gpu,
        activities: gpuActivities,
        // One training, export or torch evaluation per GPU: two would fight over its memory.
        maxConcurrentActivityTaskExecutions: opts.gpuSlots ?? 1,
        // On SIGTERM (spot notice, rolling upgrade) cancel training at once rather than waiting for
        // it to finish: the trainer then checkpoints and exits 75, the activity uploads that
        // checkpoint, and another worker resumes with zero steps lost. The force time bounds how
        // long that checkpoint + upload may take; the trainer's SIGKILL grace is derived from it
        // (src/common/constants.ts), and so are the k8s/Compose grace periods (infra tests).
        shutdownGraceTime: '1s',
        shutdownForceTime: shutdownMs,
        // Step/loss heartbeats feed live progress (`grid status --watch`); the SDK would otherwise
        // batch them for up to 80% of the heartbeat timeout.
        maxHeartbeatThrottleInterval: '5s',
        defaultHeartbeatThrottleInterval: '5s',
        // The same version as the workflows: a pinned grid's training goes to its own release's gpu
        // workers, whose activities take the inputs that release's workflows send.
        ...versioned,
        ...opts.overrides,
      }),
    );
  }
  return workers;
}
