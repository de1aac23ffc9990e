/** Reading the `logits` output [rows, seq, vocab] without copying it. */
import type { Tensor } from 'onnxruntime-node';
import { EngineError } from './errors';

/** The logits tensor's data as float32, with its dims checked. */
export function logitsData(
  logits: Tensor | undefined,
  rows: number,
  vocabSize: number,
): { data: Float32Array; seq: number } {
  if (!logits || logits.type !== 'float32' || logits.dims.length !== 3) {
    throw new EngineError(
      `expected logits float32 [${rows}, seq, ${vocabSize}], got ${logits ? `${logits.type} [${logits.dims.join(',')}]` : 'none'}`,
    );
  }
  const [b, seq, vocab] = logits.dims as [number, number, number];
  if (b !== rows || vocab !== vocabSize) {
    throw new EngineError(`expected logits [${rows}, seq, ${vocabSize}], got [${logits.dims.join(',')}]`);
  }
  return { data: logits.data as Float32Array, seq };
}

/** Index of the largest logit in `data[offset, offset + vocab)`; the first one on ties, like torch.argmax. */
export function argmax(data: Float32Array, offset: number, vocab: number): number {
  let best = 0;
  let bestValue = data[offset]!;
  for (let i = 1; i < vocab; i++) {
    const v = data[offset + i]!;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

/** Greedy next token of each row: argmax over the logits of the row's last position. */
export function lastPositionArgmax(logits: Tensor | undefined, rows: number, vocabSize: number): number[] {
  return argmaxFromEnd(logits, rows, vocabSize, 1);
}

/**
 * Greedy token of each row at the `fromEnd`-th position from the end (1 = the last). Counting from
 * the end reads a graph that kept only the last positions' logits and one that returned all alike.
 */
export function argmaxFromEnd(logits: Tensor | undefined, rows: number, vocabSize: number, fromEnd: number): number[] {
  const { data, seq } = logitsData(logits, rows, vocabSize);
  if (fromEnd < 1 || fromEnd > seq) throw new EngineError(`logits have ${seq} positions; position −${fromEnd} asked`);
  const next: number[] = [];
  for (let r = 0; r < rows; r++) next.push(argmax(data, (r * seq + seq - fromEnd) * vocabSize, vocabSize));
  return next;
}

/** log softmax(logits)[token] at one position, in float64 with the max subtracted for stability. */
export function logProbAt(data: Float32Array, offset: number, vocab: number, token: number): number {
  let max = -Infinity;
  for (let i = 0; i < vocab; i++) if (data[offset + i]! > max) max = data[offset + i]!;
  let sum = 0;
  for (let i = 0; i < vocab; i++) sum += Math.exp(data[offset + i]! - max);
  return data[offset + token]! - max - Math.log(sum);
}
