/**
 * Workflows of bench/workflow-task-latency.ts: the real evaluateModel activity, and a trivial
 * workflow (one timer) whose workflow tasks are what the bench times while the evaluation runs.
 */
import { proxyActivities, sleep } from '@temporalio/workflow';
import type * as activities from '../../activities';
import type { EvaluateModelInput, EvaluateModelResult } from '../../activities/evaluate';
import { TASK_QUEUES, TIMEOUTS } from '../../src/common/constants';

const { evaluateModel } = proxyActivities<typeof activities>({
  taskQueue: TASK_QUEUES.cpu,
  startToCloseTimeout: TIMEOUTS.evaluate.startToClose,
  heartbeatTimeout: TIMEOUTS.evaluate.heartbeat,
  // A benchmark measures one attempt; a retry would mix two.
  retry: { maximumAttempts: 1 },
});

export async function latencyEvalWorkflow(input: EvaluateModelInput): Promise<EvaluateModelResult> {
  return evaluateModel(input);
}

/** Two workflow tasks: the first schedules a timer, the second completes when it fires. */
export async function latencyTickWorkflow(): Promise<void> {
  await sleep(50);
}
