/**
 * Resolves a run's `eval.engine` where the model is on disk (deriveRunKeys calls it): `auto` reads
 * the parameter count from config.json (src/config/engine.ts). A run that will be evaluated by the
 * torch engine is checked here, on the cpu queue, before any GPU time is spent: a directory without
 * a config.json and weights transformers can read (an ONNX-only or GGUF-only directory) is a
 * non-retryable `EngineUnsupported` naming the model and the cause. What the check cannot see (an
 * architecture transformers does not know) the trainer reports with the same type when it loads.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chooseEvalEngine, estimateParameters, type EngineChoice, type ModelShape } from '../src/config/engine';
import type { RunSpec } from '../src/config/plan';
import { FailureType } from '../src/contracts/failures';
import { failure } from './failure';

/** Weight files transformers' from_pretrained reads. */
const WEIGHTS =
  /^(model|pytorch_model)(-\d+-of-\d+)?\.(safetensors|bin)$|\.safetensors\.index\.json$|\.bin\.index\.json$/;

function readShape(dir: string): ModelShape | null {
  try {
    return JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as ModelShape;
  } catch {
    return null;
  }
}

/** Why the torch engine cannot load `dir`, or null when it has what from_pretrained needs. */
export function torchLoadProblem(dir: string): string | null {
  if (!existsSync(dir)) return null; // a hub id not staged here: the trainer resolves it and reports
  if (!existsSync(join(dir, 'config.json'))) return 'it has no config.json';
  const files = readdirSync(dir);
  if (!files.some((f) => WEIGHTS.test(f))) {
    const onnx = files.some((f) => f.endsWith('.onnx'))
      ? ' (it holds an ONNX graph, which only the onnx engine runs)'
      : '';
    return `it has no safetensors or PyTorch weights${onnx}`;
  }
  return null;
}

/** The engine evaluating `run`, given the local directories of its model and draft. */
export function resolveRunEngine(run: RunSpec, modelDir: string, draftDir?: string): EngineChoice {
  const shape = readShape(modelDir);
  const choice = chooseEvalEngine(run.eval, run.training, shape ? estimateParameters(shape) : null);
  if (choice.engine !== 'torch') return choice;
  for (const [name, path, dir] of [
    [run.model.name, run.model.path, modelDir],
    ...(run.draft && draftDir ? [[run.draft.name, run.draft.path, draftDir]] : []),
  ] as [string, string, string][]) {
    const problem = torchLoadProblem(dir);
    if (problem) {
      throw failure(
        FailureType.EngineUnsupported,
        `eval.engine: "torch" (${choice.reason}) cannot evaluate model ${name} (${path}): ${problem}; ` +
          `expected an HF causal-LM directory, or eval.engine: onnx`,
        { model: name, path, cause: problem },
      );
    }
  }
  return choice;
}
