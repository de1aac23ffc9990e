/**
 * deriveRunKeys: a run's training key and evaluation key (src/config/identity.ts) from the content
 * it will use: the model's (and draft's) bytes and the tokenized splits' sha256; and the evaluation
 * engine `eval.engine` resolves to (activities/eval-engine.ts), which is part of the evaluation key. An activity only
 * because the workflow can neither read the model directory nor hash; it is cheap and pure over
 * its inputs (the fingerprint is cached per worker), so a retry returns the same keys.
 */
import { distillKey, evaluationKey, trainingKey } from '../src/config/identity';
import { resolveRunEngine } from './eval-engine';
import { modelFingerprint } from './model-fingerprint';
import { localModelDir, revisionOpt } from './model-source';
import { currentActivityHeartbeat } from './transfer-heartbeat';
import type { DeriveRunKeysInput, DeriveRunKeysResult } from '../src/contracts';
// Contracts live in src/contracts; re-exported so callers can keep importing them from here.
export type { DeriveRunKeysInput, DeriveRunKeysResult } from '../src/contracts';

export async function deriveRunKeys({ run, trainData, testData }: DeriveRunKeysInput): Promise<DeriveRunKeysResult> {
  // An s3:// or hub model (and draft) not yet on this worker is fetched whole here: GBs, heartbeated.
  const { details: heartbeat } = currentActivityHeartbeat();
  const modelDir = await localModelDir(run.model.path, { ...revisionOpt(run.model.revision), heartbeat });
  const draftDir = run.draft
    ? await localModelDir(run.draft.path, { ...revisionOpt(run.draft.revision), heartbeat })
    : undefined;
  const model = await modelFingerprint(modelDir);
  const draft = draftDir ? await modelFingerprint(draftDir) : undefined;
  // Resolved here because the model is on disk here; a torch run that cannot load fails now, not on a GPU.
  const choice = resolveRunEngine(run, modelDir, draftDir);
  const content = {
    engine: choice.engine,
    model: model.sha256,
    // A distilled draft learns from the training prompts: they are part of what it evaluates.
    trainData: run.trains || run.distill ? (trainData?.sha256 ?? null) : null,
    testData: testData.sha256,
    ...(draft ? { draft: draft.sha256 } : {}),
  };
  const distilled = distillKey(run, content);
  return {
    trainingKey: trainingKey(run, content),
    ...(distilled ? { distillKey: distilled } : {}),
    evalKey: evaluationKey(run, content),
    modelHash: model.sha256,
    modelHashBasis: model.basis,
    ...(draft ? { draftModelHash: draft.sha256 } : {}),
    engine: choice.engine,
    engineReason: choice.reason,
    data: { tokenizedTrain: content.trainData, tokenizedTest: testData.sha256 },
  };
}
