/**
 * The graph I/O contract of docs/contracts.md §2, as names and metadata checks. The KV cache is a
 * name → tensor map keyed by these names (`past_key_values.N.key` in, `present.N.key` out), as in
 * transformers.js, so the names are the single source of truth for wiring outputs back to inputs.
 */
import type { InferenceSession } from 'onnxruntime-node';
import type { EngineConfig } from './config';
import { GraphContractError, type TensorMismatch } from './errors';

export const INPUT_IDS = 'input_ids';
export const ATTENTION_MASK = 'attention_mask';
export const POSITION_IDS = 'position_ids';
export const LOGITS = 'logits';
/**
 * Optional int64 scalar input (exports since issue #15): the graph returns logits for the last N
 * positions only (N ≤ 0: all), like HF's `logits_to_keep`. Older exports lack it and return every
 * position; the engine then reads the tail itself, so both kinds load and give the same tokens.
 */
export const LOGITS_TO_KEEP = 'num_logits_to_keep';

/** One layer's cache tensor pair: the graph input it feeds and the graph output it comes from. */
export interface KvName {
  past: string;
  present: string;
}

/** `past_key_values.N.key|value` ↔ `present.N.key|value` for every layer, keys before values. */
export function kvNames(numLayers: number): KvName[] {
  const names: KvName[] = [];
  for (let layer = 0; layer < numLayers; layer++) {
    for (const kind of ['key', 'value']) {
      names.push({ past: `past_key_values.${layer}.${kind}`, present: `present.${layer}.${kind}` });
    }
  }
  return names;
}

interface ExpectedTensor {
  name: string;
  /** May be absent from the graph (an input added later, with a fallback in the engine). */
  optional?: boolean;
  type: 'int64' | 'float32';
  /** Expected dims; a number must match a numeric graph dim, null accepts anything (symbolic). */
  dims: (number | null)[];
}

function expectedTensors(config: EngineConfig): { inputs: ExpectedTensor[]; outputs: ExpectedTensor[] } {
  const kv = kvNames(config.numLayers);
  const kvDims = [null, config.numKvHeads, null, config.headDim];
  return {
    inputs: [
      { name: INPUT_IDS, type: 'int64', dims: [null, null] },
      { name: ATTENTION_MASK, type: 'int64', dims: [null, null] },
      { name: POSITION_IDS, type: 'int64', dims: [null, null] },
      ...kv.map((n) => ({ name: n.past, type: 'float32' as const, dims: kvDims })),
      { name: LOGITS_TO_KEEP, type: 'int64', dims: [], optional: true },
    ],
    outputs: [
      { name: LOGITS, type: 'float32', dims: [null, null, config.vocabSize] },
      ...kv.map((n) => ({ name: n.present, type: 'float32' as const, dims: kvDims })),
    ],
  };
}

function compareMetadata(
  expected: readonly ExpectedTensor[],
  metadata: readonly InferenceSession.ValueMetadata[],
  mismatched: TensorMismatch[],
): void {
  const byName = new Map(metadata.map((m) => [m.name, m]));
  for (const want of expected) {
    const got = byName.get(want.name);
    if (!got) continue; // reported as missing
    if (!got.isTensor) {
      mismatched.push({ name: want.name, problem: 'not a tensor' });
      continue;
    }
    if (got.type !== want.type)
      mismatched.push({ name: want.name, problem: `type ${got.type}, expected ${want.type}` });
    // An empty shape means ORT does not know it: nothing to check.
    if (got.shape.length === 0) continue;
    if (got.shape.length !== want.dims.length) {
      mismatched.push({ name: want.name, problem: `rank ${got.shape.length}, expected ${want.dims.length}` });
      continue;
    }
    want.dims.forEach((dim, i) => {
      const actual = got.shape[i];
      if (dim !== null && typeof actual === 'number' && actual !== dim) {
        mismatched.push({ name: want.name, problem: `dim ${i} is ${actual}, engine.json implies ${dim}` });
      }
    });
  }
}

/**
 * Checks a session's inputs and outputs against the contract for `config.numLayers` layers.
 * @throws GraphContractError naming every missing, unexpected or mismatched tensor.
 */
export function validateGraph(
  session: Pick<InferenceSession, 'inputNames' | 'outputNames' | 'inputMetadata' | 'outputMetadata'>,
  config: EngineConfig,
): void {
  const { inputs, outputs } = expectedTensors(config);
  const diff = (want: readonly ExpectedTensor[], have: readonly string[]) => {
    const wantNames = new Set(want.map((t) => t.name));
    const haveNames = new Set(have);
    return {
      missing: want.filter((t) => !t.optional && !haveNames.has(t.name)).map((t) => t.name),
      unexpected: [...haveNames].filter((n) => !wantNames.has(n)),
    };
  };
  const inDiff = diff(inputs, session.inputNames);
  const outDiff = diff(outputs, session.outputNames);
  const mismatched: TensorMismatch[] = [];
  compareMetadata(inputs, session.inputMetadata, mismatched);
  compareMetadata(outputs, session.outputMetadata, mismatched);
  const problems =
    inDiff.missing.length + inDiff.unexpected.length + outDiff.missing.length + outDiff.unexpected.length;
  if (problems + mismatched.length > 0) {
    throw new GraphContractError(inDiff.missing, inDiff.unexpected, outDiff.missing, outDiff.unexpected, mismatched);
  }
}
