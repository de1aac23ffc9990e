/**
 * Model directories for the engine benchmarks and the speculative-decoding test, built with the
 * real trainer CLI (`python -m trainer tiny|export`, docs/contracts.md §2) plus
 * `python -m trainer truncate` for shallow drafts. Every builder is idempotent: an HF directory
 * with config.json and tokenizer.json is complete (both writers rename it into place last), and an
 * export is reused while its HF directory is unchanged. Delete a directory to rebuild it.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const REPO_ROOT = resolve(__dirname, '..');
export const PYTHON = join(REPO_ROOT, '.venv', 'bin', 'python');
/** SmolLM2-135M-Instruct as an HF directory (infra/bootstrap.sh materializes it). */
export const SMOLLM2_HF = join(REPO_ROOT, '.data', 'models', 'smollm2-135m-instruct');
/** Where the benchmarks cache their exports. */
export const BENCH_ROOT = join(REPO_ROOT, '.data', 'bench');
/** Exports and truncations take minutes on a loaded 2-core machine; more means a hung process. */
const PYTHON_TIMEOUT_MS = 20 * 60_000;

/**
 * Runs the venv's Python (or `python`) in the repo root; `env` adds variables; the error carries
 * the tail of stderr.
 */
export async function runPython(
  args: readonly string[],
  what: string,
  env: Record<string, string> = {},
  python: string = PYTHON,
): Promise<string> {
  if (!existsSync(python)) throw new Error(`${python} missing; run \`npm run setup\` first`);
  try {
    const { stdout } = await execFileAsync(python, [...args], {
      cwd: REPO_ROOT,
      timeout: PYTHON_TIMEOUT_MS,
      maxBuffer: 64 << 20,
      env: { ...process.env, ...env },
    });
    return stdout;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`${what} failed: ${e.message}\n${(e.stderr ?? '').split('\n').slice(-30).join('\n')}`);
  }
}

const isExported = (dir: string) => existsSync(join(dir, 'engine.json')) && existsSync(join(dir, 'model.onnx'));
const isHfDir = (dir: string) => existsSync(join(dir, 'config.json')) && existsSync(join(dir, 'tokenizer.json'));

/** What an export was made from: the HF directory's config, the size and mtime of its weights, the graph code. */
export function sourceKey(hfDir: string): string {
  const hash = createHash('sha256').update(readFileSync(join(hfDir, 'config.json')));
  // The exported graph's own code: a change there (e.g. its attention) re-exports.
  hash.update(readFileSync(join(REPO_ROOT, 'trainer', 'onnx_graph.py')));
  for (const file of readdirSync(hfDir)
    .filter((f) => f.endsWith('.safetensors'))
    .sort()) {
    const { size, mtimeMs } = statSync(join(hfDir, file));
    hash.update(`${file}:${size}:${mtimeMs}`);
  }
  return hash.digest('hex');
}

/**
 * `python -m trainer export` of a base model (no adapter) into `onnxDir`, unless an export of the
 * same HF directory contents is already there (recorded in the sibling `<onnxDir>.source`).
 */
export async function ensureExport(hfDir: string, onnxDir: string): Promise<string> {
  const key = sourceKey(hfDir);
  if (exportedFrom(onnxDir, key)) return onnxDir;
  mkdirSync(dirname(onnxDir), { recursive: true });
  const spec = `${onnxDir}.export.json`;
  writeFileSync(
    spec,
    JSON.stringify({ modelPath: hfDir, adapterDir: null, method: null, outputDir: onnxDir, dtype: 'float32' }),
  );
  await runPython(['-m', 'trainer', 'export', '--spec', spec], `python -m trainer export ${hfDir}`);
  rmSync(spec, { force: true });
  recordSource(onnxDir, key);
  return onnxDir;
}

/** Whether `dir` holds an export made from `key`, as recorded in its sibling `<dir>.source`. */
export function exportedFrom(dir: string, key: string): boolean {
  const record = `${dir}.source`;
  return isExported(dir) && existsSync(record) && readFileSync(record, 'utf8').trim() === key;
}

/** Records what the export in `dir` was made from (read back by {@link exportedFrom}). */
export function recordSource(dir: string, key: string): void {
  writeFileSync(`${dir}.source`, `${key}\n`);
}

/** A tiny random-init Llama (`python -m trainer tiny --seed`), SmolLM2's tokenizer. */
export async function ensureTinyHf(out: string, seed: number): Promise<string> {
  if (isHfDir(out)) return out;
  await runPython(
    [
      '-m',
      'trainer',
      'tiny',
      '--family',
      'llama',
      '--out',
      out,
      '--tokenizer-from',
      SMOLLM2_HF,
      '--seed',
      String(seed),
    ],
    'python -m trainer tiny',
  );
  return out;
}

/** `src` with only the decoder layers `layers` kept (`python -m trainer truncate`). */
export async function ensureTruncatedHf(src: string, out: string, layers: readonly number[]): Promise<string> {
  if (isHfDir(out)) return out;
  await runPython(
    ['-m', 'trainer', 'truncate', '--src', src, '--out', out, '--layers', layers.join(',')],
    `truncating ${src}`,
  );
  return out;
}

/** The cached export directory of an HF directory: `.data/bench/<name>-<hash of its path>-onnx`. */
export function benchExportDir(hfDir: string): string {
  const abs = resolve(hfDir);
  return join(BENCH_ROOT, `${basename(abs)}-${createHash('sha256').update(abs).digest('hex').slice(0, 8)}-onnx`);
}

/** `hfDir` exported to ONNX under .data/bench/ (SmolLM2-135M: about 650 MB, a minute or two). */
export async function ensureBenchOnnx(hfDir: string): Promise<string> {
  if (!isHfDir(hfDir))
    throw new Error(
      `${hfDir} is not an HF model directory (config.json + tokenizer.json); for SmolLM2 run \`npm run setup\``,
    );
  return ensureExport(hfDir, benchExportDir(hfDir));
}

/** A shallow copy of `hfDir` keeping decoder `layers`, as an HF directory under .data/bench/. */
export async function ensureBenchTruncatedHf(hfDir: string, layers: readonly number[]): Promise<string> {
  const name = `${basename(benchExportDir(hfDir)).replace(/-onnx$/, '')}-layers-${layers.join('-')}-hf`;
  return ensureTruncatedHf(hfDir, join(BENCH_ROOT, name), layers);
}

/**
 * Deterministic token-id prompts of the given lengths, spread over the vocabulary (avoiding the
 * special ids below 20), different per prompt: the same work for every system compared.
 */
export function syntheticPrompts(lengths: readonly number[], vocabSize: number): number[][] {
  return lengths.map((length, p) =>
    Array.from({ length }, (_, i) => 20 + ((p * 7919 + i * 104729 + i * i * 31) % (vocabSize - 20))),
  );
}

/** `--name value` flags of a bench script, with `--quick` as a boolean; unknown flags are errors. */
export function benchArgs<K extends string>(
  argv: readonly string[],
  names: readonly K[],
): { quick: boolean; values: Partial<Record<K, string>> } {
  const values: Partial<Record<K, string>> = {};
  let quick = false;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--quick') {
      quick = true;
      continue;
    }
    const name = flag.replace(/^--/, '') as K;
    if (!flag.startsWith('--') || !names.includes(name) || argv[i + 1] === undefined) {
      throw new TypeError(
        `unknown or incomplete flag ${flag}; expected --quick or ${names.map((n) => `--${n} VALUE`).join(', ')}`,
      );
    }
    values[name] = argv[++i]!;
  }
  return { quick, values };
}

/** A positive integer flag value, or `fallback` when absent. */
export function intArg(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new TypeError(`--${name}: got ${JSON.stringify(value)}; expected a positive integer`);
  return n;
}

/** sha256 over the trainer's sources: the test fixtures' cache key. */
export function builderHash(): string {
  const hash = createHash('sha256');
  const trainer = join(REPO_ROOT, 'trainer');
  for (const file of readdirSync(trainer)
    .filter((f) => f.endsWith('.py'))
    .sort())
    hash.update(file).update(readFileSync(join(trainer, file)));
  return hash.digest('hex');
}

/**
 * Runs `build` into `root` once while `root/.complete` holds `key`, across processes: a lock
 * directory makes one process build while the others wait (two exports at once would only double
 * the minutes on a shared machine).
 */
export async function buildOnce(root: string, key: string, build: () => Promise<void>): Promise<void> {
  const marker = join(root, '.complete');
  const lock = `${root}.lock`;
  const current = () => existsSync(marker) && readFileSync(marker, 'utf8').trim() === key;
  mkdirSync(dirname(root), { recursive: true });
  for (;;) {
    if (current()) return;
    try {
      mkdirSync(lock);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = (() => {
        try {
          return Date.now() - statSync(lock).mtimeMs;
        } catch {
          return 0;
        }
      })();
      if (age > PYTHON_TIMEOUT_MS) rmSync(lock, { recursive: true, force: true }); // its builder died
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    try {
      if (!current()) {
        rmSync(root, { recursive: true, force: true });
        mkdirSync(root, { recursive: true });
        await build();
        writeFileSync(marker, `${key}\n`);
      }
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
}

/** The speculative test's models: target and two drafts, all exported. */
export interface SpeculativeFixture {
  /** Tiny random Llama (2 layers, seed 0). */
  target: string;
  /** The target's first layer only: same embeddings, lm_head and tokenizer. */
  shallowDraft: string;
  /** An unrelated tiny random Llama (seed 1): same vocabulary, low agreement. */
  randomDraft: string;
}

/** Builds (once) and returns the export directories of the speculative-decoding test. */
export async function ensureSpeculativeFixture(): Promise<SpeculativeFixture> {
  const root = join(REPO_ROOT, '.data', 'test-fixtures', 'speculative');
  const dirs = {
    target: join(root, 'target-onnx'),
    shallowDraft: join(root, 'shallow-draft-onnx'),
    randomDraft: join(root, 'random-draft-onnx'),
  };
  await buildOnce(root, builderHash(), async () => {
    const targetHf = await ensureTinyHf(join(root, 'target-hf'), 0);
    await ensureExport(targetHf, dirs.target);
    await ensureExport(await ensureTruncatedHf(targetHf, join(root, 'shallow-draft-hf'), [0]), dirs.shallowDraft);
    await ensureExport(await ensureTinyHf(join(root, 'random-draft-hf'), 1), dirs.randomDraft);
  });
  return dirs;
}
