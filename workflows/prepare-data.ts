/**
 * Download every raw split the data config names (in parallel), then preprocess them into the
 * prepared train/test JSONL. Keys are content-addressed, so a second preparation of the same
 * inputs finds everything committed and returns at once.
 */
import { proxyActivities } from '@temporalio/workflow';
import type * as activities from '../activities';
import { TASK_QUEUES, TIMEOUTS } from '../src/common/constants';
import { nonRetryableTypes } from '../src/contracts/failures';
import type { PrepareDataWorkflowInput, PreparedData } from '../src/contracts';

// From the registry (see fine-tune-run.ts). `ChecksumMismatch` is retryable there: a truncated
// transfer is worth another download.
const NON_RETRYABLE = nonRetryableTypes('prepareData');

const downloads = proxyActivities<typeof activities>({
  taskQueue: TASK_QUEUES.cpu,
  startToCloseTimeout: TIMEOUTS.download.startToClose,
  heartbeatTimeout: TIMEOUTS.download.heartbeat,
  // Downloads land in a temp object and are renamed into place: a retry never sees half a file.
  retry: {
    maximumAttempts: 8,
    initialInterval: 2000,
    backoffCoefficient: 2,
    maximumInterval: 120_000,
    nonRetryableErrorTypes: NON_RETRYABLE,
  },
});

const data = proxyActivities<typeof activities>({
  taskQueue: TASK_QUEUES.cpu,
  startToCloseTimeout: TIMEOUTS.data.startToClose,
  heartbeatTimeout: TIMEOUTS.data.heartbeat,
  // Pure function of its (content-addressed) inputs: retrying rewrites the same bytes.
  retry: { maximumAttempts: 5, initialInterval: 1000, nonRetryableErrorTypes: NON_RETRYABLE },
});

export async function prepareDataWorkflow(input: PrepareDataWorkflowInput): Promise<PreparedData> {
  const { datasets } = await data.resolveDatasets({ data: input.data });
  const splits = [input.data.trainSplit, input.data.testSplit];
  const raw = await Promise.all(
    datasets.flatMap((dataset) =>
      splits.map(async (split) => ({
        dataset,
        split,
        ref: await downloads.downloadDataset({ storeUrl: input.storeUrl, baseUrl: input.data.baseUrl, dataset, split }),
      })),
    ),
  );
  return data.prepareData({ storeUrl: input.storeUrl, dataKey: input.dataKey, data: input.data, raw });
}
