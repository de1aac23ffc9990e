/** `engine.json`, written by `python -m trainer export` next to `model.onnx` (docs/contracts.md §2). */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { EngineConfigError } from './errors';

const count = z.number().int().positive();
const tokenId = z.number().int().nonnegative();

const engineConfigSchema = z.object({
  numLayers: count,
  numKvHeads: count,
  headDim: count,
  vocabSize: count,
  bosTokenId: tokenId.nullable(),
  eosTokenIds: z.array(tokenId).min(1),
  padTokenId: tokenId,
  maxPositions: count,
  // The engine reads logits and KV tensors as Float32Array; a float16 export would need conversion
  // it does not have yet, so it is refused here rather than producing garbage tokens.
  dtype: z.literal('float32'),
});

/** Model facts the engine needs that the graph itself does not state. */
export type EngineConfig = z.infer<typeof engineConfigSchema>;

/**
 * Reads and validates `engine.json`.
 * @throws EngineConfigError when the file is missing, is not JSON, or a field is invalid; the
 *   message names the field path, the value and what was expected.
 */
export async function readEngineConfig(path: string): Promise<EngineConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new EngineConfigError(`cannot read engine config ${path}: ${(cause as Error).message}`, path, undefined, {
      cause,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new EngineConfigError(
      `engine config ${path} is not valid JSON: ${(cause as Error).message}`,
      path,
      undefined,
      { cause },
    );
  }
  return parseEngineConfig(json, path);
}

/** Validates an already-parsed engine config; `path` only labels errors. */
export function parseEngineConfig(json: unknown, path = 'engine.json'): EngineConfig {
  const result = engineConfigSchema.safeParse(json);
  if (result.success) {
    const config = result.data;
    if (config.padTokenId >= config.vocabSize || config.eosTokenIds.some((id) => id >= config.vocabSize)) {
      throw new EngineConfigError(
        `engine config ${path}: token ids must be < vocabSize ${config.vocabSize}`,
        path,
        'vocabSize',
      );
    }
    return config;
  }
  const issue = result.error.issues[0]!;
  const field = issue.path.join('.') || '(root)';
  const value = issue.path.reduce<unknown>(
    (obj, key) => (obj !== null && typeof obj === 'object' ? (obj as Record<PropertyKey, unknown>)[key] : undefined),
    json,
  );
  throw new EngineConfigError(
    `engine config ${path}: field ${field} = ${JSON.stringify(value)}: ${issue.message}`,
    path,
    field,
  );
}
