/**
 * The two evaluation engines on one model and one set of prompts: onnxruntime-node on the fp32 ONNX
 * export (on this thread, `threads` intra-op threads) and the torch engine (`python -m trainer
 * generate`, device cpu: fp32). Prints each engine's
 * generation tokens/s (generated tokens ÷ generation wall time, load excluded, as both engines
 * report it) and the share of prompts whose greedy tokens agree.
 *
 *   node --import tsx bench/engine-torch-vs-onnx.ts [--model smollm2|tiny-llama] [--prompts 16] [--length 48]
 *        [--new 32] [--batch 8] [--threads 2]
 *
 * Fixtures (models, LoRA-free exports) come from test/helpers/torch-engine-fixture.ts's cache.
 */
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { generate, loadModel } from '../src/engine';
import { scratchDir, SMOLLM2 } from '../test/helpers/fixtures';
import { onnxExport, runTorchEngine, tinyHf } from '../test/helpers/torch-engine-fixture';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'smollm2' },
    prompts: { type: 'string', default: '16' },
    length: { type: 'string', default: '48' },
    new: { type: 'string', default: '32' },
    batch: { type: 'string', default: '8' },
    threads: { type: 'string', default: '2' },
  },
});

async function main() {
  const hf = values.model === 'smollm2' ? SMOLLM2 : await tinyHf('llama');
  const onnxDir = await onnxExport(values.model === 'smollm2' ? 'smollm2' : 'tiny-llama', hf);
  const model = await loadModel(onnxDir, { runIn: 'main', intraOpNumThreads: Number(values.threads) });
  const vocab = model.config.vocabSize;
  const n = Number(values.prompts);
  const len = Number(values.length);
  const prompts = Array.from({ length: n }, (_, p) =>
    Array.from({ length: len - (p % 9) }, (_, i) => 20 + ((p * 7919 + i * 104729) % (vocab - 20))),
  );
  const maxNewTokens = Number(values.new);
  const batchSize = Number(values.batch);
  const onnx = await generate(model, prompts, { maxNewTokens, batchSize });
  await model.release();
  const torch = await runTorchEngine(
    { modelPath: hf, prompts, answers: prompts.map(() => [100]), maxNewTokens, batchSize },
    join(scratchDir('bench-engines'), 'torch'),
  );
  const agree = prompts.filter(
    (_, i) => JSON.stringify(torch.sequences[i]!.tokens) === JSON.stringify(onnx.sequences[i]!.tokens),
  ).length;
  const torchTps = torch.generatedTokens / (torch.wallMs / 1000);
  console.log(
    JSON.stringify({
      model: values.model,
      prompts: n,
      maxNewTokens,
      batchSize,
      onnx: { tokensPerSec: +onnx.stats.tokensPerSecond.toFixed(1), generatedTokens: onnx.stats.generatedTokens },
      torch: { tokensPerSec: +torchTps.toFixed(1), generatedTokens: torch.generatedTokens, precision: torch.precision },
      tokenAgreement: `${agree}/${n}`,
    }),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
