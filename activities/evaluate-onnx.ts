/**
 * evaluateModel's onnx engine: the committed export copied to this worker, then onnxruntime-node in
 * its engine process (evaluate-generate.ts). The precision is the export's weights' (engine.json).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Context } from '@temporalio/activity';
import { contentHash } from '../src/common/hash';
import { FailureType } from '../src/contracts/failures';
import { getDirectory, type ObjectStore } from '../src/store';
import type { EvaluateModelInput, PrecisionParity, TestItem } from '../src/contracts';
import { generateAll, type Generation } from './evaluate-generate';
import { failure } from './failure';
import { workDir } from './paths';
import type { ActivityHeartbeat } from './transfer-heartbeat';

export interface EngineGeneration {
  gen: Generation;
  precision: string;
  /** int8 exports: their greedy-token agreement with fp32, recorded at quantization. */
  precisionParity?: PrecisionParity;
}

export async function generateOnnx(
  ctx: Context,
  input: EvaluateModelInput,
  store: ObjectStore,
  items: TestItem[],
  hb: ActivityHeartbeat,
): Promise<EngineGeneration> {
  if (!input.onnxPrefix) throw failure(FailureType.InvalidSpec, 'evaluateModel: engine onnx needs an onnxPrefix');
  // Exports are immutable once committed, so a local copy keyed by prefix can be reused.
  const onnxDir = workDir('onnx', contentHash({ store: input.storeUrl, prefix: input.onnxPrefix }));
  await getDirectory(store, input.onnxPrefix, onnxDir, hb.transfer('download-onnx'));
  const gen = await generateAll(ctx, { input, store, items, onnxDir, transfer: hb.transfer('download-onnx') });
  return { gen, ...(await exportPrecision(onnxDir)) };
}

const PRECISIONS: Record<string, string> = { float16: 'fp16', int8: 'int8' };

/**
 * The export's weight precision (engine.json `weightDtype`, written since float16 exports on GPU):
 * graph inputs and outputs are float32 either way, the weights are what the row's numbers came from.
 * An int8 export also carries its parity against fp32 (trainer/quantize.py), passed on to the result.
 */
async function exportPrecision(onnxDir: string): Promise<Omit<EngineGeneration, 'gen'>> {
  const engine = JSON.parse(await readFile(join(onnxDir, 'engine.json'), 'utf8')) as {
    weightDtype?: string;
    precisionParity?: PrecisionParity;
  };
  const precision = PRECISIONS[engine.weightDtype ?? ''] ?? 'fp32';
  const p = engine.precisionParity;
  return p
    ? {
        precision,
        precisionParity: {
          agreement: p.agreement,
          threshold: p.threshold,
          belowThreshold: p.belowThreshold,
          tokens: p.tokens,
        },
      }
    : { precision };
}
