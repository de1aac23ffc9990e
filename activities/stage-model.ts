/**
 * stageModel: put a run's model on this worker before any other step needs it, and pin what it got.
 * For a hub id the configured revision (a branch by default) resolves to a commit sha here, once;
 * later activities receive that sha as `revision`, so every worker (cpu for tokenize and keys, gpu for
 * train and export) stages the same commit even if the branch moves mid-run. Idempotent: a completed
 * stage is reused (activities/hub-stage.ts). Runs on both queues, so a gpu worker can pre-stage too.
 */
import { Context } from '@temporalio/activity';
import type { StageModelInput, StageModelResult } from '../src/contracts';
import { stageModelFiles } from './model-source';

export type { StageModelInput, StageModelResult, StageModelHeartbeat } from '../src/contracts';

export async function stageModel(input: StageModelInput): Promise<StageModelResult> {
  const ctx = Context.current();
  const staged = await stageModelFiles(input.modelPath, {
    ...(input.revision ? { revision: input.revision } : {}),
    heartbeat: (p) => ctx.heartbeat(p),
    signal: ctx.cancellationSignal,
  });
  return { ...(staged.revision ? { revision: staged.revision } : {}), bytes: staged.bytes, files: staged.files };
}
