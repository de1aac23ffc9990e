/**
 * Evaluation on the real workload (issue #15): a run's tokenized QA test prompts, EOS on, the
 * engine as the evaluate activity runs it (engine process, length-bucketed chunks of 64, answer
 * perplexity scored) against HF `generate` on the same model, prompts, batch size and threads.
 *
 *   node --import tsx bench/eval-qa.ts [--quick] [--prompts TEST.jsonl] [--model HF_DIR] [--onnx DIR]
 *        [--engine MODULE] [--threads 2] [--batch 16] [--new 24] [--long 32] [--hf yes|no] [--count N]
 *        [--precision fp32,int8] [--scheme dynamic|smoothquant|per-token|matmul-nbits] [--reps N]
 *        [--llamacpp f32,q8_0,f32-batch,q8_0-batch|no]
 *
 * --prompts: a tokenized test split (`test-<k>shot.jsonl` of a run; default: the newest one under
 * .data/store/datasets/tokenized/, which is the demo's after `peftgrid` ran examples/demo.yaml).
 * A second set, "long", has passages of 400–800 tokens (bench/long-context.ts); --long 0 skips it.
 * --engine: the engine module to load (default this tree's src/engine); pass main's
 * (`/work/main/src/engine`) with its own --onnx export to measure "before". An engine without
 * `lengthBuckets`/`scoreContinuations` is driven as its own activity drove it: input-order chunks,
 * then a separate scoreContinuation pass.
 * Per set and side it prints items/s, generated tokens/s, useful GFLOP/s (matmuls of the prompt
 * and generated tokens, lm_head once per generated token, attention over the real context)
 * against an fp32 peak measured in the same run (torch square matmul, same threads), the ratio to
 * the engine, and the share of items whose greedy tokens equal the engine's. `evaluate ÷ generate`
 * is the activity's engine work (generation + perplexity) over generation alone (target ≤ 1.15).
 * --count N: N of the prompts, evenly spread. --quick: 12 demo prompts, 3 long ones, 8 new tokens, a 1024² peak (under a minute: 16 and 4 took 61 s here).
 * --precision fp32,int8 adds an `engine int8` row: the export's int8 variant (`python -m trainer
 * quantize`, --scheme, cached next to the export as `<onnx>-int8-<scheme>`), run alternately with
 * fp32 --reps times (default 2) on the loaded, shared machine, each side's fastest pass counted,
 * so the ratio is fair; its `greedy = engine` column is the share of items whose greedy tokens
 * equal fp32's.
 * --llamacpp: llama.cpp sides at these GGUF types (bench/llamacpp-side.ts: llama-cpp-python built
 * from its PyPI source, same threads, greedy, EOS on), one prompt at a time through its simple API,
 * or `-batch`: --batch sequences at a time through llama_batch; skipped with a printed line saying
 * how to build it when its virtualenv is missing.
 */
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadTokenizer } from '../src/data';
import type { TestItem } from '../src/contracts';
import type * as Engine from '../src/engine';
import { INT8_SCHEME } from '../src/config/schema';
import {
  benchArgs,
  ensureBenchOnnx,
  exportedFrom,
  intArg,
  recordSource,
  REPO_ROOT,
  runPython,
  SMOLLM2_HF,
} from './engine-models';
import { LLAMACPP_DEFAULT, llamacppMissing, llamacppSide, parseLlamacppFlag } from './llamacpp-side';
import { longContextItems } from './long-context';
import { defaultTestPrompts, readTestItems } from './qa-prompts';

const CHUNK = 64; // activities/evaluate-generate.ts
const OMP_WAIT = process.env.OMP_WAIT_POLICY ?? 'PASSIVE'; // see bench/engine-vs-hf.ts

interface SideResult {
  side: string;
  wallMs: number;
  generatedTokens: number;
  tokens: number[][];
  flops: number;
  /** evaluate pass (generation + perplexity) wall time, engine only. */
  evaluateMs?: number;
}

interface ModelDims {
  layers: number;
  hidden: number;
  ffn: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
}

function modelDims(hfDir: string): ModelDims {
  const c = JSON.parse(readFileSync(join(hfDir, 'config.json'), 'utf8')) as Record<string, number>;
  const heads = c.num_attention_heads!;
  return {
    layers: c.num_hidden_layers!,
    hidden: c.hidden_size!,
    ffn: c.intermediate_size!,
    heads,
    kvHeads: c.num_key_value_heads ?? heads,
    headDim: c.head_dim ?? c.hidden_size! / heads,
    vocab: c.vocab_size!,
  };
}

/**
 * Useful matmul FLOPs of one item: every prompt and generated token through the decoder's
 * projections, attention over its real (unpadded) context, and the lm_head once per generated
 * token (the prefill's other positions need no logits). Pads and post-EOS rows are not useful.
 */
function itemFlops(d: ModelDims, promptLength: number, generated: number): number {
  const perToken =
    d.layers *
    (2 * d.hidden * (d.heads * d.headDim) * 2 + 2 * d.hidden * (d.kvHeads * d.headDim) * 2 + 2 * 3 * d.hidden * d.ffn);
  const fed = promptLength + Math.max(0, generated - 1); // the last generated token is never fed back
  let attention = 0;
  for (let t = 1; t <= fed; t++) attention += 2 * 2 * d.layers * d.heads * d.headDim * t;
  return perToken * fed + attention + 2 * d.hidden * d.vocab * generated;
}

/** Chunks as the engine's own activity makes them: length buckets where it has them, else item order. */
function chunksFor(engine: typeof Engine, items: readonly TestItem[]): number[][] {
  if (typeof engine.lengthBuckets === 'function')
    return engine.lengthBuckets(
      items.map((t) => t.promptIds.length),
      CHUNK,
    );
  return Array.from({ length: Math.ceil(items.length / CHUNK) }, (_, k) =>
    items.slice(k * CHUNK, (k + 1) * CHUNK).map((_, j) => k * CHUNK + j),
  );
}

async function engineSide(
  engine: typeof Engine,
  model: Engine.EngineModel,
  items: readonly TestItem[],
  o: { maxNewTokens: number; batchSize: number },
  dims: ModelDims,
  side = 'engine',
): Promise<SideResult> {
  const chunks = chunksFor(engine, items);
  const pass = async (score: boolean) => {
    const tokens: number[][] = new Array(items.length);
    const generated: number[] = new Array(items.length);
    const t0 = performance.now();
    for (const chunk of chunks) {
      const prompts = chunk.map((i) => items[i]!.promptIds);
      const answers = chunk.map((i) => items[i]!.answerIds);
      const res = await engine.generate(model, prompts, { ...o, ...(score ? { scoreContinuations: answers } : {}) });
      if (score && !('scores' in res && res.scores))
        await engine.scoreContinuation(model, prompts, answers, { batchSize: o.batchSize });
      chunk.forEach((i, j) => {
        tokens[i] = res.sequences[j]!.tokens;
        generated[i] = res.sequences[j]!.generatedTokens;
      });
    }
    return { wallMs: performance.now() - t0, tokens, generated };
  };
  await pass(false); // warm-up: ORT sizes its arenas on the first runs
  const gen = await pass(false);
  const evaluate = await pass(true);
  const generatedTokens = gen.generated.reduce((a, b) => a + b, 0);
  const flops = items.reduce((f, t, i) => f + itemFlops(dims, t.promptIds.length, gen.generated[i]!), 0);
  return {
    side,
    wallMs: gen.wallMs,
    generatedTokens,
    tokens: gen.tokens,
    flops,
    evaluateMs: evaluate.wallMs,
  };
}

async function hfSide(
  hfDir: string,
  items: readonly TestItem[],
  o: { maxNewTokens: number; batchSize: number; threads: number; eosTokenIds: number[] },
  dims: ModelDims,
  repeats: number,
): Promise<SideResult> {
  const request = join(tmpdir(), `eval-qa-${process.pid}.json`);
  const prompts = items.map((t) => t.promptIds);
  // best of `repeats` timed runs, as the engine sides get
  writeFileSync(request, JSON.stringify({ modelDir: hfDir, prompts, repeats, ...o }));
  try {
    const out = JSON.parse(
      await runPython([join(REPO_ROOT, 'bench', 'engine_hf_generate.py'), request], 'HF generate', {
        OMP_WAIT_POLICY: OMP_WAIT,
      }),
    ) as { tokens: number[][]; wallMs: number; generatedTokens: number };
    const eos = new Set(o.eosTokenIds);
    const tokens = out.tokens.map((t) => (t.length > 0 && eos.has(t.at(-1)!) ? t.slice(0, -1) : t));
    const flops = items.reduce((f, t, i) => f + itemFlops(dims, t.promptIds.length, out.tokens[i]!.length), 0);
    return { side: 'HF generate', wallMs: out.wallMs, generatedTokens: out.generatedTokens, tokens, flops };
  } finally {
    rmSync(request, { force: true });
  }
}

/** `onnxDir`'s int8 variant (`python -m trainer quantize`), built once per scheme. */
/**
 * The int8 variant of `onnxDir` by `scheme`, quantized again when the fp32 graph or the quantizer's
 * code changed since (the key is recorded in the sibling `<out>.source`, as for ensureExport).
 */
async function ensureInt8(onnxDir: string, hfDir: string, scheme: string): Promise<string> {
  const out = `${onnxDir}-int8-${scheme}`;
  const hash = createHash('sha256').update(scheme);
  hash.update(`${statSync(join(onnxDir, 'model.onnx')).mtimeMs}`);
  for (const file of QUANTIZER_SOURCES) hash.update(readFileSync(join(REPO_ROOT, 'trainer', file)));
  const key = hash.digest('hex');
  if (exportedFrom(out, key)) return out;
  rmSync(out, { recursive: true, force: true });
  const spec = `${out}.quantize.json`;
  writeFileSync(spec, JSON.stringify({ onnxDir, outputDir: out, tokenizerDir: hfDir, scheme }));
  await runPython(['-m', 'trainer', 'quantize', '--spec', spec], `python -m trainer quantize ${onnxDir}`);
  rmSync(spec, { force: true });
  recordSource(out, key);
  return out;
}

/** The trainer files an int8 export is made by (trainer/quantize.py and what it calls). */
const QUANTIZER_SOURCES = ['quantize.py', 'pertoken.py', 'smoothquant.py'];

/**
 * `sides` run in turn `reps` times; each side's fastest pass (the least disturbed by other load),
 * and its fastest evaluate pass, which may come from another rep (the ratio is fastest over fastest).
 */
async function alternate(reps: number, sides: (() => Promise<SideResult>)[]): Promise<SideResult[]> {
  const best: (SideResult | undefined)[] = sides.map(() => undefined);
  const evaluateMs: (number | undefined)[] = sides.map(() => undefined);
  for (let r = 0; r < reps; r++)
    for (const [i, run] of sides.entries()) {
      const s = await run();
      if (!best[i] || s.wallMs < best[i]!.wallMs) best[i] = s;
      if (s.evaluateMs !== undefined) evaluateMs[i] = Math.min(evaluateMs[i] ?? Infinity, s.evaluateMs);
    }
  return best.map((s, i) => ({ ...s!, ...(evaluateMs[i] === undefined ? {} : { evaluateMs: evaluateMs[i] }) }));
}

const PEAK = `
import sys, time, torch
n, threads = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
a, b = torch.randn(n, n), torch.randn(n, n)
a @ b
best = float("inf")
for _ in range(5):
    t0 = time.perf_counter()
    a @ b
    best = min(best, time.perf_counter() - t0)
print(2 * n ** 3 / best / 1e9)
`;

async function main(): Promise<void> {
  const { quick, values } = benchArgs(process.argv.slice(2), [
    'prompts',
    'model',
    'onnx',
    'engine',
    'threads',
    'batch',
    'new',
    'long',
    'hf',
    'count',
    'precision',
    'scheme',
    'reps',
    'llamacpp',
  ]);
  const hfDir = values.model ?? SMOLLM2_HF;
  const threads = intArg(values.threads, 2, 'threads');
  const batchSize = intArg(values.batch, 16, 'batch');
  const maxNewTokens = intArg(values.new, quick ? 8 : 24, 'new');
  const longCount = values.long === '0' ? 0 : intArg(values.long, quick ? 3 : 32, 'long');
  const withHf = (values.hf ?? 'yes') !== 'no';
  const precisions = (values.precision ?? 'fp32').split(',');
  if (precisions.some((p) => p !== 'fp32' && p !== 'int8') || !precisions.includes('fp32'))
    throw new TypeError(`--precision: got ${values.precision}; expected fp32 or fp32,int8`);
  const scheme = values.scheme ?? INT8_SCHEME; // what the exportModel activity quantizes with
  const reps = intArg(values.reps, precisions.length > 1 ? 2 : 1, 'reps');
  const requested = parseLlamacppFlag(values.llamacpp ?? LLAMACPP_DEFAULT);
  const missing = requested.length > 0 ? llamacppMissing() : null;
  if (missing) console.log(missing);
  const llamacppSides = missing ? [] : requested;
  const engineModule = resolve(values.engine ?? join(REPO_ROOT, 'src', 'engine'));
  const engine = (await import(engineModule)) as typeof Engine;
  const onnxDir = values.onnx ?? (await ensureBenchOnnx(hfDir));
  const promptsFile = values.prompts ?? defaultTestPrompts();
  const tok = await loadTokenizer(hfDir);
  const all = readTestItems(promptsFile);
  // --count N: N items evenly spread over the file (its datasets come in blocks), not the first N.
  const count = Math.min(all.length, intArg(values.count, quick ? 12 : all.length, 'count'));
  const demo = Array.from({ length: count }, (_, i) => all[Math.floor((i * all.length) / count)]!);
  const sets: [string, TestItem[]][] = [['demo', demo]];
  if (longCount > 0) sets.push(['long', longContextItems(tok, 'template', longCount)]);
  const dims = modelDims(hfDir);
  const peak = Number(
    (await runPython(['-c', PEAK, String(quick ? 1024 : 2048), String(threads)], 'matmul peak')).trim(),
  );

  const int8Dir = precisions.includes('int8') ? await ensureInt8(onnxDir, hfDir, scheme) : undefined;
  const model = await engine.loadModel(onnxDir, { intraOpNumThreads: threads });
  const int8 = int8Dir ? await engine.loadModel(int8Dir, { intraOpNumThreads: threads }) : undefined;
  const keeps = model.inputNames.includes('num_logits_to_keep');
  console.log(
    `model ${hfDir}; ONNX ${onnxDir} (${keeps ? 'keeps only the logits it is asked for' : 'returns every position’s logits'}); ` +
      `engine ${engineModule}; prompts ${promptsFile}; batch ${batchSize}, ≤ ${maxNewTokens} new tokens, EOS on, ` +
      `${threads} thread(s) each side; fp32 matmul peak ${peak.toFixed(1)} GFLOP/s`,
  );
  const rows: string[] = [];
  try {
    for (const [name, items] of sets) {
      const lengths = items.map((t) => t.promptIds.length);
      const promptTokens = lengths.reduce((a, b) => a + b, 0);
      const o = { maxNewTokens, batchSize };
      const [mine, ...quantized] = await alternate(reps, [
        () => engineSide(engine, model, items, o, dims),
        ...(int8 ? [() => engineSide(engine, int8, items, o, dims, `engine int8 (${scheme})`)] : []),
      ]);
      const sides = [mine!, ...quantized];
      if (withHf)
        sides.push(await hfSide(hfDir, items, { ...o, threads, eosTokenIds: model.config.eosTokenIds }, dims, reps));
      for (const spec of llamacppSides)
        sides.push(
          await llamacppSide(hfDir, spec, items, { ...o, threads, eosTokenIds: model.config.eosTokenIds }, (i, g) =>
            itemFlops(dims, items[i]!.promptIds.length, g),
          ),
        );
      const label = `${name} (${items.length} prompts, ${Math.min(...lengths)}–${Math.max(...lengths)} tokens, ${promptTokens} in all)`;
      for (const s of sides) {
        const ips = items.length / (s.wallMs / 1000);
        const gflops = s.flops / (s.wallMs / 1000) / 1e9;
        const match = s.tokens.filter((t, i) => JSON.stringify(t) === JSON.stringify(mine!.tokens[i])).length;
        rows.push(
          `| ${label} | ${s.side} | ${ips.toFixed(2)} | ${(s.generatedTokens / (s.wallMs / 1000)).toFixed(1)} | ` +
            `${gflops.toFixed(1)} (${((100 * gflops) / peak).toFixed(0)}%) | ${(mine!.wallMs / s.wallMs).toFixed(2)}× | ` +
            `${s === mine ? '—' : `${match}/${items.length}`} | ${s.evaluateMs ? `${(s.evaluateMs / s.wallMs).toFixed(2)}` : ''} |`,
        );
      }
    }
  } finally {
    await model.release();
    await int8?.release();
  }
  console.log(
    '\n| set | side | items/s | generated tok/s | useful GFLOP/s (of peak) | items/s ÷ engine’s | greedy = engine | evaluate ÷ generate |',
  );
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) console.log(r);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
