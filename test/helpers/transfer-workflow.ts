/**
 * Test workflow: one downloadDataset under a 2 s heartbeat timeout and no retry, so an activity
 * that goes 2 s without a heartbeat fails the workflow (test/activity/transfer-heartbeat.test.ts).
 */
import { proxyActivities } from '@temporalio/workflow';
import type * as activities from '../../activities';
import type { DownloadDatasetInput } from '../../src/contracts';
import type { ObjectRef } from '../../src/store/object-store';

export const TRANSFER_HEARTBEAT_TIMEOUT_MS = 2000;

const { downloadDataset } = proxyActivities<typeof activities>({
  startToCloseTimeout: 5 * 60_000,
  heartbeatTimeout: TRANSFER_HEARTBEAT_TIMEOUT_MS,
  retry: { maximumAttempts: 1 },
});

export async function transferWorkflow(input: DownloadDatasetInput): Promise<ObjectRef> {
  return downloadDataset(input);
}
