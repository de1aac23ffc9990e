/** evaluateModel's score and summarize steps (activities/evaluate-score.ts), without an engine. */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { TestItem } from '../../activities/evaluate';
import type { Generation } from '../../activities/evaluate-generate';
import { scorePredictions, summarizeEvaluation } from '../../activities/evaluate-score';

const WORDS = ['', 'paris', 'london', 'is', 'the', 'answer'];
const tokenizer = { decode: (ids: number[]) => ` ${ids.map((i) => WORDS[i]).join(' ')} ` };

const item = (id: string, answers: string[]): TestItem => ({
  id,
  dataset: 'ds',
  format: 'abstractive',
  promptIds: [1],
  answers,
  answerIds: [1, 0],
});
const items = [item('a', ['paris']), item('b', ['london']), item('c', ['the answer'])];

const gen: Generation = {
  sequences: [
    { tokens: [1], finishReason: 'eos', hitLimit: false, truncated: false, generatedTokens: 2 },
    { tokens: [2, 3, 4], finishReason: 'length', hitLimit: true, truncated: true, generatedTokens: 3 },
    {
      tokens: [],
      finishReason: 'error',
      hitLimit: false,
      truncated: false,
      generatedTokens: 0,
      error: 'prompt too long',
    },
  ],
  batches: [{ size: 3, promptWidth: 4, ttftMs: 10, stepMs: [1, 2, 3] } as Generation['batches'][number]],
  generatedTokens: 5,
  wallMs: 500,
  scores: [
    { sumLogProb: -1, tokenCount: 2 },
    { sumLogProb: -2, tokenCount: 2 },
    { sumLogProb: -3, tokenCount: 2 },
  ],
};

describe('evaluate: score and summarize', () => {
  it('decodes, trims and scores each prediction against its references, in item order', () => {
    const p = scorePredictions(items, gen, tokenizer);
    assert.deepEqual(
      p.map((x) => [x.id, x.prediction, x.scores.exactMatch]),
      [
        ['a', 'paris', 1],
        ['b', 'london is the', 0],
        ['c', '', 0],
      ],
    );
    assert.equal(p[1]!.hitLimit, true);
    assert.equal(p[1]!.truncated, true);
    assert.equal(p[2]!.error, 'prompt too long');
    assert.ok(!('error' in p[0]!), 'no error field on a sequence that ran');
    assert.deepEqual(
      p.map((x) => [x.sumLogProb, x.answerTokens, x.tokens]),
      [
        [-1, 2, 2],
        [-2, 2, 3],
        [-3, 2, 0],
      ],
    );
  });

  it('summarizes throughput over the sequences that ran, and carries speculative stats', () => {
    const { metrics, throughput } = summarizeEvaluation(scorePredictions(items, gen, tokenizer), gen);
    assert.equal(metrics.overall.n, 3);
    assert.equal(throughput.tokensPerSec, 10);
    assert.equal(throughput.ttftMsP50, 10);
    assert.equal(throughput.hitLimitFraction, 0.5, 'the errored sequence is not in the denominator');
    assert.equal(throughput.speedup, undefined);
    const spec = summarizeEvaluation([], {
      ...gen,
      wallMs: 0,
      speculative: { acceptanceRate: 0.5, speedup: 2, targetOnlyTokensPerSec: 3 },
    });
    assert.equal(spec.throughput.tokensPerSec, 0);
    assert.equal(spec.throughput.speedup, 2);
  });
});
