/**
 * Download every raw split the data config names (in parallel; the splits of a custom hfDisk or hub
 * dataset are exported to JSONL instead), then preprocess them into the prepared train/test JSONL. Keys are content-addressed, so a second preparation of the same
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
  const { storeUrl } = input;
  const catalog = datasets.flatMap((dataset) =>
    splits.map(async (split) => ({
      dataset,
      split,
      ref: await downloads.downloadDataset({ storeUrl, baseUrl: input.data.baseUrl, dataset, split }),
    })),
  );
  // Custom datasets come after the catalog's, so a UnifiedQA-only config schedules exactly the
  // commands it always did (replayed histories stay valid). Their raw splits carry the config's
  // trainSplit/testSplit labels, which is what prepareData reads for every dataset.
  const custom = (input.data.datasets ?? []).flatMap((d) => {
    if (typeof d === 'string') return [];
    return (['train', 'test'] as const).map(async (role) => {
      const split = role === 'train' ? splits[0]! : splits[1]!;
      const ref =
        d.hfDisk || d.hub
          ? await data.exportHfDataset({
              storeUrl,
              ...(d.hub
                ? { hub: { repoId: d.hub, ...(d.revision ? { revision: d.revision } : {}) } }
                : { path: d.hfDisk }),
              split: d.splits?.[role] ?? role,
              dataset: d.name,
              label: split,
            })
          : await downloads.downloadDataset({
              storeUrl,
              baseUrl: input.data.baseUrl,
              dataset: d.name,
              split,
              url: d[role],
            });
      return { dataset: d.name, split, ref };
    });
  });
  const raw = await Promise.all([...catalog, ...custom]);
  return data.prepareData({ storeUrl: input.storeUrl, dataKey: input.dataKey, data: input.data, raw });
}
