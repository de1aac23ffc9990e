/**
 * KV-cache benchmark: the same greedy generation with and without the cache, on the same prompts.
 *
 *   node --import tsx bench/engine-kv-benchmark.ts <export-dir> [batch=8] [newTokens=32] [promptLength=32] [threads=1]
 *
 * Prompts are deterministic pseudo-random ids, all of one length, so both runs do identical work;
 * EOS is disabled so that every row generates exactly `newTokens` tokens and the token counts of
 * the two runs are comparable.
 */
import { generate, type GenerationStats } from '../src/engine/generate';
import { loadModel, type EngineModel } from '../src/engine/session';

/** Options of {@link benchmarkKvCache}. */
export interface KvBenchmarkOptions {
  /** Prompts per batch (one batch is run). @default 8 */
  batchSize?: number;
  /** Tokens generated per prompt. @default 32 */
  maxNewTokens?: number;
  /** Tokens per prompt. @default 32 */
  promptLength?: number;
  /** Timed runs per mode after one warm-up run; the fastest is reported (least disturbed by other load). @default 3 */
  repeats?: number;
}

/** Result of {@link benchmarkKvCache}. */
export interface KvBenchmarkResult {
  cached: GenerationStats;
  uncached: GenerationStats;
  /** cached tokens/s ÷ uncached tokens/s. */
  speedup: number;
  /** Whether both modes produced the same tokens (they must). */
  identicalTokens: boolean;
}

function benchmarkPrompts(count: number, length: number, vocabSize: number): number[][] {
  return Array.from({ length: count }, (_, p) =>
    Array.from({ length }, (_, i) => 20 + ((p * 7919 + i * 104729) % (vocabSize - 20))),
  );
}

export async function benchmarkKvCache(
  model: EngineModel,
  options: KvBenchmarkOptions = {},
): Promise<KvBenchmarkResult> {
  const { batchSize = 8, maxNewTokens = 32, promptLength = 32, repeats = 3 } = options;
  const prompts = benchmarkPrompts(batchSize, promptLength, model.config.vocabSize);
  const run = async (useCache: boolean) => {
    const opts = { batchSize, maxNewTokens, useCache, eosTokenIds: [] };
    await generate(model, prompts, opts); // warm-up: ORT allocates its arenas on the first runs
    let best = await generate(model, prompts, opts);
    for (let i = 1; i < repeats; i++) {
      const next = await generate(model, prompts, opts);
      if (next.stats.tokensPerSecond > best.stats.tokensPerSecond) best = next;
    }
    return best;
  };
  const cached = await run(true);
  const uncached = await run(false);
  const tokens = (r: typeof cached) => JSON.stringify(r.sequences.map((s) => s.tokens));
  return {
    cached: cached.stats,
    uncached: uncached.stats,
    speedup: cached.stats.tokensPerSecond / uncached.stats.tokensPerSecond,
    identicalTokens: tokens(cached) === tokens(uncached),
  };
}

async function main(argv: string[]): Promise<void> {
  const [dir, batch = '8', newTokens = '32', promptLength = '32', threads = '1'] = argv;
  if (!dir)
    throw new TypeError('usage: engine-kv-benchmark.ts <export-dir> [batch] [newTokens] [promptLength] [threads]');
  const model = await loadModel(dir, { intraOpNumThreads: Number(threads) });
  try {
    const result = await benchmarkKvCache(model, {
      batchSize: Number(batch),
      maxNewTokens: Number(newTokens),
      promptLength: Number(promptLength),
    });
    const line = (name: string, s: GenerationStats) =>
      `${name}: ${s.tokensPerSecond.toFixed(1)} tok/s (${s.generatedTokens} tokens in ${s.wallMs.toFixed(1)} ms; ` +
      `TTFT ${s.ttftP50Ms?.toFixed(2)} ms; per-token p50 ${s.perTokenP50Ms?.toFixed(2)} ms, p95 ${s.perTokenP95Ms?.toFixed(2)} ms)`;
    console.log(line('with KV cache   ', result.cached));
    console.log(line('without KV cache', result.uncached));
    console.log(`speedup ${result.speedup.toFixed(2)}x; identical tokens: ${result.identicalTokens}`);
  } finally {
    await model.release();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
