/**
 * Greedy decoding of one left-padded batch, with the KV cache (one new column per step) or
 * without it (the whole prefix recomputed per step: the baseline of the KV-cache benchmark).
 */
import { performance } from 'node:perf_hooks';
import type { Tensor } from 'onnxruntime-node';
import { LOGITS } from './contract';
import { appendMaskColumn, fullInputs, leftPad, stepInputs } from './feeds';
import { KvCache } from './kv-cache';
import { lastPositionArgmax } from './logits';
import { SequenceState, type StopRules } from './sequence-state';
import type { EngineModel } from './session';

/** Outcome of one batch: row states in batch order plus its timings. */
export interface BatchOutcome {
  states: SequenceState[];
  /** Time from the start of the batch to its first tokens (prefill + argmax), ms. */
  ttftMs: number;
  /** Duration of each later step (each yields one token per active row), ms. */
  stepMs: number[];
}

/** Token fed to each row next: its last token, or the pad token once it has finished. */
function nextFeedTokens(states: readonly SequenceState[], next: readonly number[], padTokenId: number): number[] {
  return states.map((s, i) => (s.done ? padTokenId : next[i]!));
}

export async function decodeBatch(
  model: EngineModel,
  prompts: readonly (readonly number[])[],
  rules: StopRules,
  useCache: boolean,
): Promise<BatchOutcome> {
  const { padTokenId, vocabSize } = model.config;
  const rows = prompts.length;
  const states = prompts.map(() => new SequenceState(rules));
  const start = performance.now();
  const padded = leftPad(prompts, padTokenId);
  // The prefill's past is empty; without the cache every step is a prefill, so this stays empty.
  const cache = KvCache.empty(model.config, rows);
  const stepMs: number[] = [];
  let outputs: Record<string, Tensor> = await model.run(
    { ...fullInputs(padded), ...cache.feed() },
    useCache ? undefined : [LOGITS],
  );
  let next = lastPositionArgmax(outputs[LOGITS], rows, vocabSize);
  states.forEach((s, i) => s.accept(next[i]!));
  const ttftMs = performance.now() - start;

  // Cached path state: the mask over past + new columns, and each row's next position id.
  let mask = padded.mask;
  let width = padded.width;
  const nextPositions = prompts.map((p) => p.length);
  // Uncached path state: each row's full sequence so far (prompt + fed tokens).
  const sequences = prompts.map((p) => [...p]);
  try {
    while (!states.every((s) => s.done)) {
      const stepStart = performance.now();
      const tokens = nextFeedTokens(states, next, padTokenId);
      let stepOutputs: Record<string, Tensor>;
      if (useCache) {
        cache.update(outputs);
        mask = appendMaskColumn(mask, rows, width, 1);
        width++;
        stepOutputs = await model.run({ ...stepInputs(tokens, mask, rows, width, nextPositions), ...cache.feed() });
        for (let i = 0; i < rows; i++) nextPositions[i]!++;
      } else {
        sequences.forEach((seq, i) => seq.push(tokens[i]!));
        stepOutputs = await model.run({ ...fullInputs(leftPad(sequences, padTokenId)), ...cache.feed() }, [LOGITS]);
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
  return { states, ttftMs, stepMs };
}
