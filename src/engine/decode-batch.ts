/**
 * Greedy decoding of one left-padded batch, with the KV cache (one new column per step) or
 * without it (the whole prefix recomputed per step: the baseline of the KV-cache benchmark).
 *
 * Scoring rides on the same prefill (issue #15: one prefill per item). A row's reference
 * continuation is appended after its prompt, so the columns are
 * `[left pads][prompt][continuation][right pads]`, every prompt ending in the same column. The
 * graph keeps the logits of the last A + 1 positions (A = the longest continuation): the first
 * predicts the first generated token of every row, the others score the continuations. For the
 * decode steps the continuation columns are masked out of the cache, so generation attends to
 * exactly the prompt and its own tokens, as without scoring. Causal attention means the prompt's
 * hidden states never see the continuation either.
 */
import { performance } from 'node:perf_hooks';
import type { Tensor } from 'onnxruntime-node';
import { LOGITS } from './contract';
import { appendMaskColumn, fullInputs, leftPad, logitsToKeep, stepInputs, type PaddedBatch } from './feeds';
import { KvCache } from './kv-cache';
import { argmaxFromEnd, lastPositionArgmax, logitsData, logProbAt } from './logits';
import { SequenceState, type StopRules } from './sequence-state';
import type { EngineModel } from './session';

/** Outcome of one batch: row states in batch order plus its timings. */
export interface BatchOutcome {
  states: SequenceState[];
  /**
   * Σ ln p(continuation token | prompt, earlier continuation tokens) per row, when continuations
   * were given (0 for a row with an empty one).
   */
  sumLogProbs?: number[];
  /** Time from the start of the batch to its first tokens (prefill + argmax), ms. */
  ttftMs: number;
  /** Duration of each later step (each yields one token per active row), ms. */
  stepMs: number[];
}

/** Token fed to each row next: its last token, or the pad token once it has finished. */
function nextFeedTokens(states: readonly SequenceState[], next: readonly number[], padTokenId: number): number[] {
  return states.map((s, i) => (s.done ? padTokenId : next[i]!));
}

/** Prompts left-padded to one end column, then each continuation, right-padded (module comment). */
export function scoringLayout(
  prompts: readonly (readonly number[])[],
  continuations: readonly (readonly number[])[],
  padTokenId: number,
): { batch: PaddedBatch; promptWidth: number; longest: number } {
  const promptWidth = Math.max(0, ...prompts.map((p) => p.length));
  const longest = Math.max(0, ...continuations.map((c) => c.length));
  const rows = prompts.length;
  const width = promptWidth + longest;
  const ids = new Int32Array(rows * width).fill(padTokenId);
  const mask = new Uint8Array(rows * width);
  prompts.forEach((prompt, r) => {
    const start = r * width + promptWidth - prompt.length;
    ids.set(prompt, start);
    ids.set(continuations[r]!, r * width + promptWidth);
    mask.fill(1, start, r * width + promptWidth + continuations[r]!.length);
  });
  return { batch: { rows, width, ids, mask }, promptWidth, longest };
}

/** Σ log p of each row's continuation from logits that end with the A + 1 scoring positions. */
function continuationLogProbs(
  logits: Tensor | undefined,
  continuations: readonly (readonly number[])[],
  longest: number,
  vocabSize: number,
): number[] {
  const { data, seq } = logitsData(logits, continuations.length, vocabSize);
  const first = seq - (longest + 1); // the prompt's last column among the returned positions
  return continuations.map((cont, r) => {
    let sum = 0;
    // The logits at position j − 1 predict token j; the prompt's last column predicts token 0.
    for (let j = 0; j < cont.length; j++)
      sum += logProbAt(data, (r * seq + first + j) * vocabSize, vocabSize, cont[j]!);
    return sum;
  });
}

/**
 * Decodes one batch. With `continuations` (one per prompt, possibly empty), also returns each
 * one's log-likelihood from the same prefill; it needs the KV cache.
 * @throws TypeError when continuations are given without the cache or in another count.
 */
export async function decodeBatch(
  model: EngineModel,
  prompts: readonly (readonly number[])[],
  rules: StopRules,
  useCache: boolean,
  continuations?: readonly (readonly number[])[],
): Promise<BatchOutcome> {
  const { padTokenId, vocabSize } = model.config;
  const rows = prompts.length;
  if (continuations && (!useCache || continuations.length !== rows))
    throw new TypeError(`decodeBatch: continuations need the cache and one per prompt (${rows})`);
  const states = prompts.map(() => new SequenceState(rules));
  const start = performance.now();
  const layout = continuations
    ? scoringLayout(prompts, continuations, padTokenId)
    : { batch: leftPad(prompts, padTokenId), longest: 0 };
  const padded = layout.batch;
  const { inputNames } = model;
  // The prefill's past is empty; without the cache every step is a prefill, so this stays empty.
  const cache = KvCache.empty(model.config, rows);
  const stepMs: number[] = [];
  let outputs: Record<string, Tensor> = await model.run(
    { ...fullInputs(padded), ...cache.feed(), ...logitsToKeep(inputNames, layout.longest + 1) },
    useCache ? undefined : [LOGITS],
  );
  let next = argmaxFromEnd(outputs[LOGITS], rows, vocabSize, layout.longest + 1);
  const sumLogProbs = continuations
    ? continuationLogProbs(outputs[LOGITS], continuations, layout.longest, vocabSize)
    : undefined;
  states.forEach((s, i) => s.accept(next[i]!));
  const ttftMs = performance.now() - start;

  // Cached path state: the mask over past + new columns, and each row's next position id. The
  // continuation columns stay in the cache but leave the mask: generation must not see them.
  let mask = padded.mask;
  if (layout.longest > 0) {
    mask = mask.slice();
    for (let r = 0; r < rows; r++)
      mask.fill(0, r * padded.width + padded.width - layout.longest, (r + 1) * padded.width);
  }
  let width = padded.width;
  const nextPositions = prompts.map((p) => p.length);
  // Uncached path state: each row's full sequence so far (prompt + fed tokens).
  const sequences = prompts.map((p) => [...p]);
  const keepLast = logitsToKeep(inputNames, 1);
  try {
    while (!states.every((s) => s.done)) {
      const stepStart = performance.now();
      const tokens = nextFeedTokens(states, next, padTokenId);
      let stepOutputs: Record<string, Tensor>;
      if (useCache) {
        cache.update(outputs);
        mask = appendMaskColumn(mask, rows, width, 1);
        width++;
        stepOutputs = await model.run({
          ...stepInputs(tokens, mask, rows, width, nextPositions),
          ...cache.feed(),
          ...keepLast,
        });
        for (let i = 0; i < rows; i++) nextPositions[i]!++;
      } else {
        sequences.forEach((seq, i) => seq.push(tokens[i]!));
        stepOutputs = await model.run({ ...fullInputs(leftPad(sequences, padTokenId)), ...cache.feed(), ...keepLast }, [
          LOGITS,
        ]);
      }
      outputs[LOGITS]?.dispose();
      outputs = stepOutputs;
      next = lastPositionArgmax(outputs[LOGITS], rows, vocabSize);
      states.forEach((s, i) => s.accept(next[i]!));
      stepMs.push(performance.now() - stepStart);
    }
  } finally {
    cache.dispose();
    for (const tensor of Object.values(outputs)) tensor.dispose();
  }
  return { states, ...(sumLogProbs ? { sumLogProbs } : {}), ttftMs, stepMs };
}
