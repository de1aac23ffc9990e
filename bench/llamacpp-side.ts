/**
 * The llama.cpp sides of bench/eval-qa.ts: llama-cpp-python built from its PyPI source into its own
 * virtualenv (infra/llamacpp-build.sh, `bash infra/bootstrap.sh --with-llamacpp`), the model
 * converted to GGUF by the `convert_hf_to_gguf.py` of that same source, and bench/eval_llamacpp.py
 * running the prompts one at a time through llama-cpp-python's simple API, or batched through its
 * low-level llama_batch API (the `-batch` sides).
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import type { TestItem } from '../src/contracts';
import { BENCH_ROOT, REPO_ROOT, runPython, sourceKey } from './engine-models';

/** The GGUF weight types compared: F32 against the fp32 engine, Q8_0 against an int8 one. */
export const LLAMACPP_TYPES = ['f32', 'q8_0'] as const;
export type LlamacppType = (typeof LLAMACPP_TYPES)[number];

/** One llama.cpp side: a GGUF type, run one prompt at a time or batched (at eval-qa's --batch). */
export interface LlamacppSpec {
  type: LlamacppType;
  batched: boolean;
}

/** The `--llamacpp` default: every type, both ways. */
export const LLAMACPP_DEFAULT = LLAMACPP_TYPES.flatMap((t) => [t, `${t}-batch`]).join(',');

/** The virtualenv infra/llamacpp-build.sh writes (outside the clone, per machine). */
export const LLAMACPP_VENV = join(process.env.PEFTGRID_CACHE ?? join(homedir(), '.cache', 'peftgrid'), 'llamacpp-venv');
const LLAMACPP_PYTHON = join(LLAMACPP_VENV, 'bin', 'python');
const CONVERTER = join(LLAMACPP_VENV, 'convert', 'convert_hf_to_gguf.py');
/** What builds the virtualenv, for the line printed when it is missing. */
export const LLAMACPP_BUILD_COMMAND = 'bash infra/bootstrap.sh --with-llamacpp';

/**
 * The `--llamacpp` flag's sides: `no` for none, else a comma list of {@link LLAMACPP_TYPES}, each
 * optionally suffixed `-batch` (e.g. `f32,q8_0-batch`).
 * @throws TypeError naming the value and the expected ones.
 */
export function parseLlamacppFlag(value: string): LlamacppSpec[] {
  if (value === 'no') return [];
  return value.split(',').map((raw) => {
    const name = raw.trim();
    const type = name.replace(/-batch$/, '');
    if (!(LLAMACPP_TYPES as readonly string[]).includes(type))
      throw new TypeError(
        `--llamacpp: got ${JSON.stringify(name)}; expected "no" or a comma list of ${LLAMACPP_DEFAULT.replaceAll(',', ', ')}`,
      );
    return { type: type as LlamacppType, batched: name.endsWith('-batch') };
  });
}

/** Why the llama.cpp sides cannot run here (the virtualenv is absent or unfinished), or null when they can. */
export function llamacppMissing(): string | null {
  const key = join(LLAMACPP_VENV, '.key');
  if (existsSync(LLAMACPP_PYTHON) && existsSync(CONVERTER) && existsSync(key)) return null;
  return `llama.cpp sides skipped: no llama-cpp-python build in ${LLAMACPP_VENV}; build it (once, 20+ min on 2 cores) with \`${LLAMACPP_BUILD_COMMAND}\``;
}

/**
 * `hfDir` converted to GGUF at `type` by the virtualenv's convert_hf_to_gguf.py (run with .venv's
 * Python, which has torch and transformers; the script imports its own gguf-py), cached as
 * `.data/bench/<model>-<hash>-<type>.gguf`, the hash over the model directory's contents
 * (sourceKey) and the llama.cpp build's key, so new weights or a new converter convert anew.
 */
export async function ensureGguf(hfDir: string, type: LlamacppType): Promise<string> {
  const abs = resolve(hfDir);
  const hash = createHash('sha256')
    .update(sourceKey(abs))
    .update(readFileSync(join(LLAMACPP_VENV, '.key')))
    .digest('hex')
    .slice(0, 12);
  const out = join(BENCH_ROOT, `${basename(abs)}-${hash}-${type}.gguf`);
  if (existsSync(out)) return out;
  const partial = `${out}.${process.pid}.partial`;
  try {
    await runPython([CONVERTER, abs, '--outtype', type, '--outfile', partial], `convert_hf_to_gguf.py ${type}`);
    renameSync(partial, out);
  } finally {
    rmSync(partial, { force: true });
  }
  return out;
}

/** One llama.cpp side's result, in bench/eval-qa.ts's SideResult shape. */
export interface LlamacppResult {
  side: string;
  wallMs: number;
  /** Including each row's EOS, as the engine counts it. */
  generatedTokens: number;
  /** Greedy tokens per prompt, a trailing EOS removed (the engine's sequences have none). */
  tokens: number[][];
  flops: number;
}

/**
 * Runs `items` through llama.cpp (bench/eval_llamacpp.py): one prompt at a time, or with
 * `spec.batched` `batchSize` sequences at a time; greedy, stops at the first of `eosTokenIds` or
 * after `maxNewTokens`, KV cleared between prompts (batches), `threads` threads; only the pass over
 * the prompts is timed (model load and one warm-up prompt or batch are not).
 * `flopsOf(i, generated)` is the useful FLOPs of item i with that many generated tokens.
 */
export async function llamacppSide(
  hfDir: string,
  spec: LlamacppSpec,
  items: readonly TestItem[],
  o: { maxNewTokens: number; batchSize: number; threads: number; eosTokenIds: number[] },
  flopsOf: (index: number, generated: number) => number,
): Promise<LlamacppResult> {
  const ggufPath = await ensureGguf(hfDir, spec.type);
  const prompts = items.map((t) => t.promptIds);
  const longest = Math.max(...prompts.map((p) => p.length));
  const nCtx = Math.ceil((longest + o.maxNewTokens + 1) / 256) * 256; // per sequence
  const batchSize = spec.batched ? o.batchSize : 1;
  const request = join(tmpdir(), `eval-llamacpp-${process.pid}.json`);
  writeFileSync(request, JSON.stringify({ ggufPath, prompts, nCtx, ...o, batchSize }));
  try {
    const out = JSON.parse(
      await runPython(
        [join(REPO_ROOT, 'bench', 'eval_llamacpp.py'), request],
        `llama.cpp ${spec.type}`,
        // The build uses OpenMP: its default spin-wait starved the threads on this shared machine
        // (111 s instead of 3.3 s for four prompts at load 19); the other sides get the same policy.
        { OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE' },
        LLAMACPP_PYTHON,
      ),
    ) as { tokens: number[][]; wallMs: number; generatedTokens: number; llamaCpp: string };
    const eos = new Set(o.eosTokenIds);
    const how = spec.batched ? `batch ${batchSize}, llama_batch` : 'one prompt at a time';
    return {
      side: `llama.cpp ${spec.type.toUpperCase()} (llama-cpp-python ${out.llamaCpp}, ${how})`,
      wallMs: out.wallMs,
      generatedTokens: out.generatedTokens,
      tokens: out.tokens.map((t) => (t.length > 0 && eos.has(t.at(-1)!) ? t.slice(0, -1) : t)),
      flops: out.tokens.reduce((f, t, i) => f + flopsOf(i, t.length), 0),
    };
  } finally {
    rmSync(request, { force: true });
  }
}
