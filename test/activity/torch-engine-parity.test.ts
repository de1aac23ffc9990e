// The two evaluation engines agree: greedy tokens from `python -m trainer generate` (the torch
// engine: HF generate, adapter unmerged) are identical to onnxruntime-node's on the ONNX export of
// the same model, on the three tiny families, on SmolLM2-135M-Instruct (fp32, CPU), base and with a
// LoRA adapter, and for a speculative pair (HF assisted generation vs the engine's draft/verify);
// the answers' log-likelihoods (held-out perplexity) agree within a small tolerance.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  generate,
  generateSpeculative,
  loadModel,
  scoreContinuation,
  type ContinuationScore,
  type EngineModel,
  type GeneratedSequence,
} from '../../src/engine';
import type { Generation } from '../../activities/evaluate-generate';
import { scratchDir, SMOLLM2 } from '../helpers/fixtures';
import {
  onnxExport,
  randomLora,
  randomPromptTuning,
  runTorchEngine,
  shallowDraft,
  tinyHf,
  type Family,
} from '../helpers/torch-engine-fixture';

const scratch = scratchDir('torch-engine-parity');
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Deterministic prompts of varied lengths (so batches pad), ids away from the special ones. */
function prompts(lengths: number[], vocab: number): number[][] {
  return lengths.map((n, p) =>
    Array.from({ length: n }, (_, i) => 20 + ((p * 7919 + i * 104729 + i * i * 31) % (vocab - 20))),
  );
}
const answersFor = (ps: number[][], vocab: number) => ps.map((_, p) => [100 + p, 2000 + 37 * p, 300 % vocab]);

const view = (s: GeneratedSequence[]) =>
  s.map((x) => ({ tokens: x.tokens, finishReason: x.finishReason, n: x.generatedTokens }));

/** Log-likelihoods equal within 1e-3 relative (fp32 kernels of two runtimes; the torch side sums in float64). */
function assertScoresClose(torch: Generation['scores'], onnx: ContinuationScore[]) {
  assert.equal(torch.length, onnx.length);
  torch.forEach((t, i) => {
    const o = onnx[i]!;
    assert.equal(t.tokenCount, o.tokenCount, `item ${i} token count`);
    const tol = 1e-3 * Math.max(1, Math.abs(o.sumLogProb));
    assert.ok(Math.abs(t.sumLogProb - o.sumLogProb) <= tol, `item ${i}: torch ${t.sumLogProb} vs onnx ${o.sumLogProb}`);
  });
}

interface Case {
  name: string;
  hf: () => Promise<string>;
  adapter?: (hf: string) => Promise<string>;
  /** @default 'lora' */
  method?: 'lora' | 'prompt_tuning';
  lengths: number[];
  maxNewTokens: number;
}

async function onnxModel(dir: string): Promise<EngineModel> {
  return loadModel(dir, { runIn: 'main', intraOpNumThreads: 1 });
}

async function compare(c: Case): Promise<{ torch: Generation; onnx: Awaited<ReturnType<typeof generate>> }> {
  const hf = await c.hf();
  const adapterDir = c.adapter ? await c.adapter(hf) : null;
  const method = c.method ?? 'lora';
  const model = await onnxModel(await onnxExport(c.name, hf, adapterDir, method));
  try {
    const ps = prompts(c.lengths, model.config.vocabSize);
    const answers = answersFor(ps, model.config.vocabSize);
    const onnx = await generate(model, ps, { maxNewTokens: c.maxNewTokens, batchSize: 4 });
    const onnxScores = await scoreContinuation(model, ps, answers, { batchSize: 4 });
    const torch = await runTorchEngine(
      {
        modelPath: hf,
        adapterDir,
        method: adapterDir ? method : null,
        prompts: ps,
        answers,
        maxNewTokens: c.maxNewTokens,
        batchSize: 4,
      },
      join(scratch, c.name),
    );
    assert.equal(torch.precision, 'fp32');
    assert.deepEqual(view(torch.sequences), view(onnx.sequences));
    assert.equal(torch.generatedTokens, onnx.stats.generatedTokens);
    assert.equal(torch.batches.length, onnx.stats.batches.length, 'the same batch plan');
    assertScoresClose(torch.scores, onnxScores);
    return { torch, onnx };
  } finally {
    await model.release();
  }
}

describe('torch engine vs onnx engine: identical greedy tokens', { concurrency: 1 }, () => {
  for (const family of ['llama', 'gemma', 'mistral'] as Family[]) {
    test(`tiny ${family}, base model`, async () => {
      await compare({
        name: `tiny-${family}`,
        hf: () => tinyHf(family),
        lengths: [5, 9, 14, 20, 3, 11],
        maxNewTokens: 12,
      });
    });
  }

  test('tiny llama with a LoRA adapter (unmerged in torch, merged in the export), and the adapter changes the tokens', async () => {
    const { torch } = await compare({
      name: 'tiny-llama-lora',
      hf: () => tinyHf('llama'),
      adapter: (hf) => randomLora('tiny-llama', hf),
      lengths: [5, 9, 14, 20, 3, 11],
      maxNewTokens: 12,
    });
    const base = await runTorchEngine(
      {
        modelPath: await tinyHf('llama'),
        prompts: prompts([5, 9, 14, 20, 3, 11], 49152),
        answers: answersFor(prompts([5, 9, 14, 20, 3, 11], 49152), 49152),
        maxNewTokens: 12,
        batchSize: 4,
      },
      join(scratch, 'tiny-llama-base-again'),
    );
    assert.notDeepEqual(
      view(base.sequences),
      view(torch.sequences),
      'a test of the adapter needs an adapter that matters',
    );
  });

  test('tiny llama with prompt tuning (PEFT soft prompt in torch, constant prefix in the graph)', async () => {
    await compare({
      name: 'tiny-llama-prompt',
      hf: () => tinyHf('llama'),
      adapter: (hf) => randomPromptTuning('tiny-llama', hf),
      method: 'prompt_tuning',
      lengths: [5, 9, 14, 20, 3, 11],
      maxNewTokens: 12,
    });
  });

  test('speculative pair: assisted generation gives the onnx engine’s speculative tokens (the target’s greedy ones)', async () => {
    const target = await tinyHf('llama');
    const draft = await shallowDraft();
    const model = await onnxModel(await onnxExport('tiny-llama', target));
    const draftModel = await onnxModel(await onnxExport('tiny-llama-l0', draft));
    try {
      const ps = prompts([5, 9, 14, 7], model.config.vocabSize);
      const onnx = await generateSpeculative(model, draftModel, ps, { maxNewTokens: 12, gamma: 3 });
      const torch = await runTorchEngine(
        {
          modelPath: target,
          draftModelPath: draft,
          gamma: 3,
          prompts: ps,
          answers: answersFor(ps, model.config.vocabSize),
          maxNewTokens: 12,
          batchSize: 4,
        },
        join(scratch, 'speculative'),
      );
      assert.deepEqual(
        torch.sequences.map((s) => s.tokens),
        onnx.sequences.map((s) => s.tokens),
      );
      assert.ok(torch.speculative && torch.speculative.targetOnlyTokensPerSec > 0, 'speedup measured');
      const a = torch.speculative.acceptanceRate;
      assert.ok(a !== null && a >= 0 && a <= 1, `acceptance ${a}`);
    } finally {
      await model.release();
      await draftModel.release();
    }
  });

  test('SmolLM2-135M-Instruct at fp32 on CPU, base model', async () => {
    await compare({ name: 'smollm2', hf: async () => SMOLLM2, lengths: [6, 17, 11, 24], maxNewTokens: 10 });
  });

  test('SmolLM2-135M-Instruct at fp32 on CPU, with a LoRA adapter', async () => {
    await compare({
      name: 'smollm2-lora',
      hf: async () => SMOLLM2,
      adapter: (hf) => randomLora('smollm2', hf),
      lengths: [6, 17, 11, 24],
      maxNewTokens: 10,
    });
  });
});
