/**
 * Builds the int64 input tensors of a left-padded batch. Left padding keeps every row's last
 * token in the last column, so one decode step appends one column for the whole batch.
 */
import { Tensor } from 'onnxruntime-node';
import { ATTENTION_MASK, INPUT_IDS, LOGITS_TO_KEEP, POSITION_IDS } from './contract';

/** Token ids of a batch, left-padded to one width, with the mask that hides the pads. */
export interface PaddedBatch {
  rows: number;
  width: number;
  /** Row-major [rows, width] token ids; pads hold `padTokenId`. */
  ids: Int32Array;
  /** Row-major [rows, width]: 0 on pads, 1 on real tokens. */
  mask: Uint8Array;
}

/** Left-pads token arrays to the longest one. */
export function leftPad(sequences: readonly (readonly number[])[], padTokenId: number): PaddedBatch {
  const rows = sequences.length;
  const width = Math.max(0, ...sequences.map((s) => s.length));
  const ids = new Int32Array(rows * width).fill(padTokenId);
  const mask = new Uint8Array(rows * width);
  sequences.forEach((seq, r) => {
    const offset = r * width + width - seq.length;
    ids.set(seq, offset);
    mask.fill(1, offset, offset + seq.length);
  });
  return { rows, width, ids, mask };
}

/**
 * Position ids of a left-padded batch: cumulative sum of the mask − 1, clamped at 0, so each row
 * counts positions from its first real token as if it were unpadded (pads get 0, which the
 * mask hides anyway). This is what HF generate computes for left-padded inputs.
 */
export function positionIds(mask: Uint8Array, rows: number, width: number): BigInt64Array {
  const positions = new BigInt64Array(rows * width);
  for (let r = 0; r < rows; r++) {
    let seen = 0;
    for (let c = 0; c < width; c++) {
      seen += mask[r * width + c]!;
      positions[r * width + c] = BigInt(Math.max(0, seen - 1));
    }
  }
  return positions;
}

function int64(values: ArrayLike<number>): BigInt64Array {
  const out = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = BigInt(values[i]!);
  return out;
}

/** input_ids, attention_mask and position_ids tensors for a whole padded batch (prefill). */
export function fullInputs(batch: PaddedBatch): Record<string, Tensor> {
  const dims = [batch.rows, batch.width];
  return {
    [INPUT_IDS]: new Tensor('int64', int64(batch.ids), dims),
    [ATTENTION_MASK]: new Tensor('int64', int64(batch.mask), dims),
    [POSITION_IDS]: new Tensor('int64', positionIds(batch.mask, batch.rows, batch.width), dims),
  };
}

/**
 * Inputs of one cached decode step: one new token per row, the attention mask over past + new
 * columns, and each row's next position. `maskWidth` is past + 1; every row attends to all its
 * non-pad past columns plus the new one.
 */
export function stepInputs(
  tokens: ArrayLike<number>,
  mask: Uint8Array,
  rows: number,
  maskWidth: number,
  nextPositions: ArrayLike<number>,
): Record<string, Tensor> {
  return {
    [INPUT_IDS]: new Tensor('int64', int64(tokens), [rows, 1]),
    [ATTENTION_MASK]: new Tensor('int64', int64(mask), [rows, maskWidth]),
    [POSITION_IDS]: new Tensor('int64', int64(nextPositions), [rows, 1]),
  };
}

/**
 * Appends one column to a row-major [rows, width] mask. Rebuilding the mask costs O(rows·width)
 * bytes per step — negligible next to the KV tensors, which are never copied by the engine.
 */
export function appendMaskColumn(mask: Uint8Array, rows: number, width: number, value: number): Uint8Array {
  const out = new Uint8Array(rows * (width + 1));
  for (let r = 0; r < rows; r++) {
    out.set(mask.subarray(r * width, (r + 1) * width), r * (width + 1));
    out[r * (width + 1) + width] = value;
  }
  return out;
}

/**
 * The `num_logits_to_keep` input asking for the last `count` positions' logits (0: all), or
 * nothing for an export without that input (it returns all positions; readers take the tail).
 */
export function logitsToKeep(inputNames: readonly string[], count: number): Record<string, Tensor> {
  if (!inputNames.includes(LOGITS_TO_KEEP)) return {};
  return { [LOGITS_TO_KEEP]: new Tensor('int64', BigInt64Array.of(BigInt(count)), []) };
}
