/**
 * deriveRunKeys: a run's training key and evaluation key (src/config/identity.ts) from the content
 * it will use: the model's (and draft's) bytes and the tokenized splits' sha256. An activity only
 * because the workflow can neither read the model directory nor hash; it is cheap and pure over
 * its inputs (the fingerprint is cached per worker), so a retry returns the same keys.
 */
import { evaluationKey, trainingKey } from '../src/config/identity';
import { modelFingerprint } from './model-fingerprint';
import { localModelDir, revisionOpt } from './model-source';
import type { DeriveRunKeysInput, DeriveRunKeysResult } from '../src/contracts';
// Contracts live in src/contracts; re-exported so callers can keep importing them from here.
export type { DeriveRunKeysInput, DeriveRunKeysResult } from '../src/contracts';

export async function deriveRunKeys({ run, trainData, testData }: DeriveRunKeysInput): Promise<DeriveRunKeysResult> {
  const model = await modelFingerprint(await localModelDir(run.model.path, revisionOpt(run.model.revision)));
  const draft = run.draft
    ? await modelFingerprint(await localModelDir(run.draft.path, revisionOpt(run.draft.revision)))
    : undefined;
  const content = {
    model: model.sha256,
    trainData: run.trains ? (trainData?.sha256 ?? null) : null,
    testData: testData.sha256,
    ...(draft ? { draft: draft.sha256 } : {}),
  };
  return {
    trainingKey: trainingKey(run, content),
    evalKey: evaluationKey(run, content),
    modelHash: model.sha256,
    modelHashBasis: model.basis,
    ...(draft ? { draftModelHash: draft.sha256 } : {}),
    data: { tokenizedTrain: content.trainData, tokenizedTest: testData.sha256 },
  };
}
