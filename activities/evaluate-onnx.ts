/**
 * evaluateModel's onnx engine: the committed export copied to this worker, then onnxruntime-node in
 * its engine process (evaluate-generate.ts). fp32: the exporter writes float32 graphs only.
 */
import type { Context } from '@temporalio/activity';
import { contentHash } from '../src/common/hash';
import { FailureType } from '../src/contracts/failures';
import { getDirectory, type ObjectStore } from '../src/store';
import type { EvaluateModelInput, TestItem } from '../src/contracts';
import { generateAll, type Generation } from './evaluate-generate';
import { failure } from './failure';
import { workDir } from './paths';

export interface EngineGeneration {
  gen: Generation;
  precision: string;
}

export async function generateOnnx(
  ctx: Context,
  input: EvaluateModelInput,
  store: ObjectStore,
  items: TestItem[],
): Promise<EngineGeneration> {
  if (!input.onnxPrefix) throw failure(FailureType.InvalidSpec, 'evaluateModel: engine onnx needs an onnxPrefix');
  // Exports are immutable once committed, so a local copy keyed by prefix can be reused.
  const onnxDir = workDir('onnx', contentHash({ store: input.storeUrl, prefix: input.onnxPrefix }));
  await getDirectory(store, input.onnxPrefix, onnxDir);
  return { gen: await generateAll(ctx, { input, store, items, onnxDir }), precision: 'fp32' };
}
