/**
 * evaluateModel's score and summarize steps: pure functions of the test items and what the engine
 * generated (no I/O), so they are the same for the onnx and the torch engine's predictions.
 */
import { percentile } from '../src/engine/stats';
import type { TokenizerWrapper } from '../src/data/tokenizer';
import {
  exactMatch,
  jaccardSet,
  jaccardStudy,
  officialScore,
  rougeL,
  summarize,
  tokenF1,
  type EvalItem,
  type Summary,
} from '../src/metrics';
import type { EvaluateModelResult, TestItem } from '../src/contracts';
import type { Generation } from './evaluate-generate';

/** One line of predictions.jsonl. */
export interface Prediction {
  id: string;
  dataset: string;
  format: string;
  prediction: string;
  references: string[];
  scores: Record<'exactMatch' | 'jaccardStudy' | 'jaccardSet' | 'tokenF1' | 'rougeL' | 'official', number>;
  tokens: number;
  finishReason: Generation['sequences'][number]['finishReason'];
  hitLimit: boolean;
  truncated: boolean;
  error?: string;
  sumLogProb: number;
  answerTokens: number;
}

/** Score step: decode each item's sequence and score it against the item's references. */
export function scorePredictions(
  items: TestItem[],
  gen: Generation,
  tokenizer: Pick<TokenizerWrapper, 'decode'>,
): Prediction[] {
  return items.map((item, i) => {
    const seq = gen.sequences[i]!;
    const prediction = tokenizer.decode(seq.tokens, { skipSpecialTokens: true }).trim();
    const s = gen.scores[i]!;
    return {
      id: item.id,
      dataset: item.dataset,
      format: item.format,
      prediction,
      references: item.answers,
      scores: {
        exactMatch: exactMatch(prediction, item.answers),
        jaccardStudy: jaccardStudy(prediction, item.answers),
        jaccardSet: jaccardSet(prediction, item.answers),
        tokenF1: tokenF1(prediction, item.answers),
        rougeL: rougeL(prediction, item.answers),
        official: officialScore(item.format, prediction, item.answers, item.choices),
      },
      tokens: seq.generatedTokens,
      finishReason: seq.finishReason,
      hitLimit: seq.hitLimit,
      truncated: seq.truncated,
      ...(seq.error ? { error: seq.error } : {}),
      sumLogProb: s.sumLogProb,
      answerTokens: s.tokenCount,
    };
  });
}

/** Summarize step: metrics with bootstrap intervals (fixed seed) and honest throughput. */
export function summarizeEvaluation(
  predictions: Prediction[],
  gen: Generation,
): { metrics: Summary; throughput: EvaluateModelResult['throughput'] } {
  const evalItems: EvalItem[] = predictions.map((p) => ({
    dataset: p.dataset,
    scores: p.scores,
    sumLogProb: p.sumLogProb,
    tokenCount: p.answerTokens,
  }));
  const metrics = summarize(evalItems, { seed: 42 });
  const ran = gen.sequences.filter((s) => s.finishReason !== 'error');
  const throughput = {
    tokensPerSec: gen.wallMs > 0 ? gen.generatedTokens / (gen.wallMs / 1000) : 0,
    ttftMsP50:
      percentile(
        gen.batches.map((b) => b.ttftMs),
        50,
      ) ?? 0,
    tokenLatencyMsP50:
      percentile(
        gen.batches.flatMap((b) => b.stepMs),
        50,
      ) ?? 0,
    tokenLatencyMsP95:
      percentile(
        gen.batches.flatMap((b) => b.stepMs),
        95,
      ) ?? 0,
    hitLimitFraction: ran.length ? ran.filter((s) => s.hitLimit).length / ran.length : 0,
    // Counted, never silent: prompts cut to the context (eval.longPrompt truncate) and items not
    // run (too long under longPrompt error, empty, or ids outside the vocabulary).
    truncatedPrompts: gen.sequences.filter((s) => s.truncated).length,
    failedItems: gen.sequences.length - ran.length,
    ...(gen.speculative ?? {}),
  };
  return { metrics, throughput };
}
