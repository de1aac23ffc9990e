/**
 * Waits until a workflow execution is closed. The grid uses it when starting a run's child finds
 * the deterministic run id still taken: typically a run of a cancelled or terminated grid that is
 * still cancelling (its trainer checkpointing), or the same run started by another grid. Child
 * workflows cannot say "use the existing one" (SDK 1.24 ChildWorkflowOptions omit
 * workflowIdConflictPolicy), so the grid waits here and then starts the child again, which reuses
 * the old run's result (lookupRunResult) or resumes from its checkpoints.
 */
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import { runLogger } from '../src/common/logger';
import type {
  AwaitWorkflowClosedInput,
  AwaitWorkflowClosedResult,
  AwaitWorkflowClosedHeartbeat,
} from '../src/contracts';
// Contracts live in src/contracts; re-exported so callers can keep importing them from here.
export type {
  AwaitWorkflowClosedInput,
  AwaitWorkflowClosedResult,
  AwaitWorkflowClosedHeartbeat,
} from '../src/contracts';

/**
 * Polls `describe` on the latest execution of `workflowId` until it is no longer RUNNING.
 * Read-only, so any number of retries is safe. Heartbeats every poll: that is how a cancelled grid
 * stops waiting (ctx.sleep rejects with CancelledFailure once the cancellation arrives).
 */
export async function awaitWorkflowClosed(input: AwaitWorkflowClosedInput): Promise<AwaitWorkflowClosedResult> {
  const ctx = Context.current();
  const interval = input.pollIntervalMs ?? 1000;
  if (!Number.isFinite(interval) || interval <= 0)
    throw new TypeError(`pollIntervalMs: got ${input.pollIntervalMs}, expected a positive number of ms`);
  const log = runLogger({ activity: 'awaitWorkflowClosed', workflowId: input.workflowId });
  const handle = ctx.client.workflow.getHandle(input.workflowId);
  const t0 = Date.now();
  let logged = false;
  for (;;) {
    let status: string;
    try {
      status = (await handle.describe()).status.name;
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      status = 'NOT_FOUND';
    }
    const waitedMs = Date.now() - t0;
    if (status !== 'RUNNING') {
      log.info({ status, waitedMs }, 'workflow closed');
      return { workflowId: input.workflowId, status, waitedMs };
    }
    if (!logged) log.info('workflow still running; waiting for it to close');
    logged = true;
    ctx.heartbeat({ status, waitedMs } satisfies AwaitWorkflowClosedHeartbeat);
    await ctx.sleep(interval);
  }
}
