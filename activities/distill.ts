/**
 * distillDraft: a speculative pair's draft fine-tuned on the target's own greedy outputs over the
 * training prompts (`python -m trainer distill`, trainer/distill.py). It is trainModel with another
 * trainer command (activities/train.ts runTrainerJob): the same checkpoints under
 * `runs/<distillKey>/checkpoints/`, heartbeats, resume on any worker, and an idempotent re-run that
 * returns the committed final. The target's outputs travel inside each checkpoint, so a resumed
 * attempt trains on exactly the examples the interrupted one did. The final directory is a plain
 * model (a LoRA draft is merged), exported to ONNX like a full fine-tune's.
 */
import { localModelDir, revisionOpt } from './model-source';
import { runTrainerJob } from './train';
import type { DistillDraftInput, TrainModelResult } from '../src/contracts';
// Contracts live in src/contracts; re-exported so callers can keep importing them from here.
export type { DistillDraftInput } from '../src/contracts';

export async function distillDraft(input: DistillDraftInput): Promise<TrainModelResult> {
  const { target, maxNewTokens, ...train } = input;
  return runTrainerJob(train, {
    command: 'distill',
    activity: 'distillDraft',
    logAs: 'distill',
    // Staged on this worker like the draft itself; the spec's batchSize for generation is the trainer's default.
    extraSpec: async (hb) => ({
      distill: {
        modelPath: await localModelDir(target.modelPath, { ...revisionOpt(target.revision), heartbeat: hb.details }),
        maxNewTokens,
      },
    }),
  });
}
