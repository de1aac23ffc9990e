/**
 * The torch engine's events → the Generation the onnx engine returns (activities/evaluate-torch.ts):
 * the same fields, so scorePredictions and summarizeEvaluation serve both engines unchanged.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { reduceTorchEvent, torchGeneration, type TorchOutcome } from '../../activities/evaluate-torch';
import { summarizeEvaluation, scorePredictions } from '../../activities/evaluate-score';
import { parseTrainerLine, type TrainerEvent } from '../../src/contracts/trainer-events';
import type { TestItem } from '../../src/contracts';

const lines = [
  { event: 'generating', device: 'cpu', precision: 'fp32', items: 2, maxPositions: 512 },
  {
    event: 'sequence',
    index: 1,
    tokens: [],
    finishReason: 'error',
    generatedTokens: 0,
    truncated: false,
    error: 'empty prompt',
  },
  {
    event: 'sequence',
    index: 0,
    tokens: [7, 8],
    finishReason: 'length',
    generatedTokens: 2,
    truncated: true,
    error: '',
  },
  { event: 'batch', size: 1, promptWidth: 5, ttftMs: 10, stepMs: [4], done: 1, total: 1 },
  { event: 'generated', generatedTokens: 2, wallMs: 20, acceptanceRate: null, targetOnlyTokensPerSec: null },
  { event: 'score', index: 1, sumLogProb: 0, tokenCount: 0, truncated: false, error: 'empty prompt' },
  { event: 'score', index: 0, sumLogProb: -1.5, tokenCount: 3, truncated: false, error: '' },
];

function fold(events: object[]): TorchOutcome {
  let o: TorchOutcome = { sequences: [], scores: [], batches: [] };
  for (const e of events) {
    const parsed = parseTrainerLine(JSON.stringify(e));
    assert.ok(parsed.ok, JSON.stringify(parsed));
    o = reduceTorchEvent(o, (parsed as { event: TrainerEvent }).event);
  }
  return o;
}

describe('torch engine events', () => {
  it('fold into the onnx engine’s Generation, which the shared scoring reads', () => {
    const o = fold(lines);
    assert.equal(o.precision, 'fp32');
    const gen = torchGeneration(o, 2, false);
    assert.deepEqual(gen.sequences[0], {
      tokens: [7, 8],
      finishReason: 'length',
      hitLimit: true,
      truncated: true,
      generatedTokens: 2,
    });
    assert.equal(gen.sequences[1]!.error, 'empty prompt');
    assert.deepEqual(gen.scores[0], { sumLogProb: -1.5, tokenCount: 3 });
    assert.deepEqual(gen.batches, [{ size: 1, promptWidth: 5, ttftMs: 10, stepMs: [4] }]);
    const items: TestItem[] = [0, 1].map((i) => ({
      id: `q${i}`,
      dataset: 'boolq',
      format: 'yes_no',
      promptIds: [1, 2],
      answers: ['yes'],
      answerIds: [3],
    }));
    const predictions = scorePredictions(items, gen, { decode: (ids: number[]) => ids.join(' ') });
    const { throughput } = summarizeEvaluation(predictions, gen);
    assert.equal(throughput.tokensPerSec, 100); // 2 tokens in 20 ms
    assert.equal(throughput.ttftMsP50, 10);
    assert.equal(throughput.hitLimitFraction, 1); // the one sequence that ran hit the limit
  });

  it('refuses an outcome with an item missing, naming it', () => {
    assert.throws(() => torchGeneration(fold(lines.slice(0, 5)), 2, false), /without results for items 0, 1/);
    assert.throws(() => torchGeneration(fold(lines.filter((l) => l.event !== 'generated')), 2, false), /totals/);
  });

  it('speculative runs get acceptance and speedup over target-only decoding', () => {
    const spec = lines.map((l) =>
      l.event === 'generated' ? { ...l, acceptanceRate: 0.5, targetOnlyTokensPerSec: 50 } : l,
    );
    assert.deepEqual(torchGeneration(fold(spec), 2, true).speculative, {
      acceptanceRate: 0.5,
      targetOnlyTokensPerSec: 50,
      speedup: 2,
    });
  });
});
