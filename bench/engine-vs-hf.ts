/**
 * Engine (ONNX Runtime, this repo's generate) vs PyTorch HF `model.generate` on the same model,
 * same prompts, same batch size, same thread count, greedy, EOS off (every row yields exactly
 * --new tokens on both sides). Each side: one warm-up run, then the best of --repeats runs.
 *
 *   node --import tsx bench/engine-vs-hf.ts [--quick] [--model HF_DIR] [--threads 1]
 *        [--batch 1,8] [--prompts 8] [--new 64] [--repeats 2]
 *
 * --model defaults to SmolLM2-135M-Instruct (.data/models/smollm2-135m-instruct); its ONNX
 * export is cached under .data/bench/. --quick: 4 prompts, 16 new tokens, batch 1 and 4, one run.
 * --threads defaults to 1: on a shared 2-core machine a second thread mostly measures contention.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate, loadModel, type EngineModel } from '../src/engine';
import {
  benchArgs,
  ensureBenchOnnx,
  intArg,
  runPython,
  SMOLLM2_HF,
  syntheticPrompts,
  REPO_ROOT,
} from './engine-models';

/**
 * PyTorch's OpenMP threads spin-wait by default; on a shared, oversubscribed machine that turned a
 * 60 ms decode step into 1.1 s with 2 threads (measured here). PASSIVE gives torch its best case;
 * set OMP_WAIT_POLICY yourself to compare otherwise.
 */
const OMP_WAIT = process.env.OMP_WAIT_POLICY ?? 'PASSIVE';

interface HfResult {
  tokens: number[][];
  wallMs: number;
  generatedTokens: number;
  torch: string;
  transformers: string;
}

interface Row {
  batch: number;
  engineTps: number;
  hfTps: number;
  identical: number;
}

async function engineRun(
  model: EngineModel,
  prompts: number[][],
  maxNewTokens: number,
  batchSize: number,
  repeats: number,
) {
  const options = { maxNewTokens, batchSize, eosTokenIds: [] };
  await generate(model, prompts, options); // warm-up: ORT sizes its arenas on the first runs
  let best = await generate(model, prompts, options);
  for (let i = 1; i < repeats; i++) {
    const next = await generate(model, prompts, options);
    if (next.stats.wallMs < best.stats.wallMs) best = next;
  }
  return best;
}

async function hfRun(
  modelDir: string,
  prompts: number[][],
  maxNewTokens: number,
  batchSize: number,
  threads: number,
  repeats: number,
): Promise<HfResult> {
  const request = join(tmpdir(), `engine-vs-hf-${process.pid}.json`);
  writeFileSync(request, JSON.stringify({ modelDir, prompts, maxNewTokens, batchSize, threads, repeats }));
  try {
    const stdout = await runPython([join(REPO_ROOT, 'bench', 'engine_hf_generate.py'), request], 'HF generate', {
      OMP_WAIT_POLICY: OMP_WAIT,
    });
    return JSON.parse(stdout) as HfResult;
  } finally {
    rmSync(request, { force: true });
  }
}

async function main(): Promise<void> {
  const { quick, values } = benchArgs(process.argv.slice(2), [
    'model',
    'threads',
    'batch',
    'prompts',
    'new',
    'repeats',
  ]);
  const hfDir = values.model ?? SMOLLM2_HF;
  const threads = intArg(values.threads, 1, 'threads');
  const batches = (values.batch ?? (quick ? '1,4' : '1,8')).split(',').map((b) => intArg(b, 1, 'batch'));
  const count = intArg(values.prompts, quick ? 4 : 8, 'prompts');
  const maxNew = intArg(values.new, quick ? 16 : 64, 'new');
  const repeats = intArg(values.repeats, quick ? 1 : 2, 'repeats');
  const onnxDir = await ensureBenchOnnx(hfDir);
  const model = await loadModel(onnxDir, { intraOpNumThreads: threads });
  // Lengths 16 … 58: batches mix lengths, so both sides pad.
  const prompts = syntheticPrompts(
    Array.from({ length: count }, (_, i) => 16 + ((i * 23) % 43)),
    model.config.vocabSize,
  );
  console.log(
    `model ${hfDir} (ONNX ${onnxDir}); ${count} prompts of ${Math.min(...prompts.map((p) => p.length))}-${Math.max(...prompts.map((p) => p.length))} tokens, ` +
      `${maxNew} new tokens each, EOS off, ${threads} thread(s) each side (torch OMP_WAIT_POLICY=${OMP_WAIT}), best of ${repeats} after a warm-up`,
  );
  const rows: Row[] = [];
  try {
    for (const batch of batches) {
      const engine = await engineRun(model, prompts, maxNew, batch, repeats);
      const hf = await hfRun(hfDir, prompts, maxNew, batch, threads, repeats);
      if (hf.generatedTokens !== engine.stats.generatedTokens)
        throw new Error(`token counts differ: HF ${hf.generatedTokens}, engine ${engine.stats.generatedTokens}`);
      const hfTps = hf.generatedTokens / (hf.wallMs / 1000);
      const identical = engine.sequences.filter(
        (s, i) => JSON.stringify(s.tokens) === JSON.stringify(hf.tokens[i]),
      ).length;
      rows.push({ batch, engineTps: engine.stats.tokensPerSecond, hfTps, identical });
      console.log(
        `  batch ${batch}: engine ${engine.stats.wallMs.toFixed(0)} ms, HF (torch ${hf.torch}, transformers ${hf.transformers}) ${hf.wallMs.toFixed(0)} ms`,
      );
    }
  } finally {
    await model.release();
  }
  console.log('\n| batch | engine tok/s | HF generate tok/s | engine ÷ HF | same tokens |');
  console.log('| ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    console.log(
      `| ${r.batch} | ${r.engineTps.toFixed(1)} | ${r.hfTps.toFixed(1)} | ${(r.engineTps / r.hfTps).toFixed(2)}x | ${r.identical}/${count} |`,
    );
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
