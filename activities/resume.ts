/**
 * The resume loop of one train attempt: start the trainer from the newest usable checkpoint and,
 * when the trainer refuses it (`CheckpointRejected`, exit 3: a changed state version, a
 * torch.load/safetensors failure after a library upgrade, mismatched parameters or run identity),
 * mark it rejected and start again from the previous committed one, then from scratch — all
 * within the same attempt. Each refusal removes one candidate, so the loop ends after at most
 * (committed checkpoints + 1) trainer starts: never 20 identical Temporal retries, never a
 * permanent failure because one checkpoint cannot be loaded.
 */
import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { ObjectStore, TransferOptions } from '../src/store';
import { markRejected, restoreCheckpoint, type RestoredCheckpoint } from './checkpoints';
import { FailureType, TRAINER_EXIT } from '../src/contracts/failures';
import type { TrainerRunResult } from './trainer-process';

export interface ResumeLoopInput {
  store: ObjectStore;
  runKey: string;
  /** Local directory the candidates are downloaded into. */
  localRoot: string;
  /** The heartbeat's checkpoint key, if any. */
  hinted?: string;
  /** This worker's code version (recorded in and matched against rejection markers). */
  codeVersion: string;
  log: Logger;
  /** Progress of each checkpoint download. */
  transfer?: TransferOptions;
  /** Runs the trainer once, from `resume` (null: from scratch), to its exit. */
  run: (resume: RestoredCheckpoint | null) => Promise<TrainerRunResult>;
}

export interface ResumeLoopResult {
  /** The last trainer run's result (never a rejection of a checkpoint). */
  result: TrainerRunResult;
  /** Where that run started from. */
  resume: RestoredCheckpoint | null;
  /** Steps whose checkpoints the trainer refused in this attempt, in order. */
  rejected: number[];
}

export async function runWithCheckpointFallback(input: ResumeLoopInput): Promise<ResumeLoopResult> {
  const { store, runKey, log } = input;
  const rejected: number[] = [];
  for (;;) {
    const resume = await restoreCheckpoint(
      store,
      runKey,
      input.localRoot,
      { hinted: input.hinted, skip: new Set(rejected), codeVersion: input.codeVersion, transfer: input.transfer },
      log,
    );
    const result = await input.run(resume);
    // A rejection without --resume-from is the trainer's bug, not the checkpoint's: the caller
    // turns it into a failure rather than looping.
    if (result.code !== TRAINER_EXIT.checkpointRejected || !resume) return { result, resume, rejected };
    const reason = result.error?.message ?? result.stderrTail.slice(-500);
    log.warn(
      { checkpoint: resume.prefix, step: resume.step, type: result.error?.type, reason },
      'trainer rejected the checkpoint; falling back to the previous one',
    );
    rejected.push(resume.step);
    try {
      await markRejected(store, resume.prefix, {
        codeVersion: input.codeVersion,
        type: result.error?.type ?? FailureType.CheckpointRejected,
        reason,
        at: Date.now(),
      });
    } catch (err) {
      // The in-attempt skip list still holds; a later attempt would try it once more and re-mark it.
      log.warn({ checkpoint: resume.prefix, err: (err as Error).message }, 'could not write the rejection marker');
    }
    await rm(resume.dir, { recursive: true, force: true });
  }
}
