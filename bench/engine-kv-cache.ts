/**
 * KV cache vs recomputing the whole prefix at every step, same model, same prompts, same tokens
 * (EOS off), via benchmarkKvCache (bench/engine-kv-benchmark.ts): one warm-up, then the best of
 * --repeats runs per mode.
 *
 *   node --import tsx bench/engine-kv-cache.ts [--quick] [--model HF_DIR] [--threads 1]
 *        [--batch 1] [--prompt-length 32,128] [--new 64] [--repeats 1]
 *
 * --model defaults to SmolLM2-135M-Instruct; its ONNX export is cached under .data/bench/.
 * --prompt-length takes a list: the cache saves more the longer the prefix, so the table shows
 * the ratio at a short and at a QA-passage-like prompt. --quick: prompt 16, 16 new tokens (a
 * smaller ratio: less prefix to recompute).
 */
import { loadModel, type GenerationStats } from '../src/engine';
import { benchmarkKvCache } from './engine-kv-benchmark';
import { benchArgs, ensureBenchOnnx, intArg, SMOLLM2_HF } from './engine-models';

async function main(): Promise<void> {
  const { quick, values } = benchArgs(process.argv.slice(2), [
    'model',
    'threads',
    'batch',
    'prompt-length',
    'new',
    'repeats',
  ]);
  const hfDir = values.model ?? SMOLLM2_HF;
  const threads = intArg(values.threads, 1, 'threads');
  const batchSize = intArg(values.batch, 1, 'batch');
  const promptLengths = (values['prompt-length'] ?? (quick ? '16' : '32,128'))
    .split(',')
    .map((n) => intArg(n, 32, 'prompt-length'));
  const maxNewTokens = intArg(values.new, quick ? 16 : 64, 'new');
  const repeats = intArg(values.repeats, 1, 'repeats');
  const onnxDir = await ensureBenchOnnx(hfDir);
  const model = await loadModel(onnxDir, { intraOpNumThreads: threads });
  console.log(
    `model ${hfDir} (ONNX ${onnxDir}); batch ${batchSize}, ${maxNewTokens} new tokens, EOS off, ` +
      `${threads} thread(s), best of ${repeats} after a warm-up`,
  );
  const lines: string[] = [];
  try {
    for (const promptLength of promptLengths) {
      const result = await benchmarkKvCache(model, { batchSize, maxNewTokens, promptLength, repeats });
      const cells = (s: GenerationStats) =>
        `${s.tokensPerSecond.toFixed(1)} | ${s.perTokenP50Ms?.toFixed(1)} | ${s.wallMs.toFixed(0)}`;
      lines.push(
        `| ${promptLength} | ${cells(result.cached)} | ${cells(result.uncached)} | ${result.speedup.toFixed(2)}x | ${result.identicalTokens} |`,
      );
      if (!result.identicalTokens) process.exitCode = 1;
    }
  } finally {
    await model.release();
  }
  console.log(
    '\n| prompt tokens | cached tok/s | cached per-token p50 ms | cached wall ms | recompute tok/s | recompute per-token p50 ms | recompute wall ms | cache ÷ recompute | same tokens |',
  );
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const line of lines) console.log(line);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
