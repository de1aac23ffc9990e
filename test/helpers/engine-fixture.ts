/**
 * Test fixture for the engine: a tiny random-init Llama built and exported by the real trainer
 * CLI (`python -m trainer tiny` + `python -m trainer export`, docs/contracts.md §2), cached under
 * `.data/test-fixtures/tiny-llama-onnx/` and reused while its `.complete` marker holds the hash of
 * the trainer's sources (so a changed exporter rebuilds the fixture instead of hiding behind it).
 *
 * References come from PyTorch: `referenceGreedy` runs HF `model.generate(do_sample=False)` one
 * prompt at a time (no padding involved), `referenceLogProbs` scores continuations with a plain
 * forward pass. The model is seeded, so the references are deterministic.
 *
 * Node's test runner starts test files in parallel processes; a lock directory makes exactly one
 * of them build the fixture while the others wait for the marker, because two exports at once
 * would double minutes of CPU on a shared machine.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  rmSync,
  writeFileSync,
  readFileSync,
  statSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const REPO_ROOT = resolve(__dirname, '..', '..');
export const PYTHON = join(REPO_ROOT, '.venv', 'bin', 'python');
export const FIXTURE_ROOT = join(REPO_ROOT, '.data', 'test-fixtures', 'tiny-llama-onnx');
/** The tiny HF model directory (PyTorch reference). */
export const HF_DIR = join(FIXTURE_ROOT, 'hf');
/** The exported model directory the engine loads. */
export const ONNX_DIR = join(FIXTURE_ROOT, 'onnx');
const TOKENIZER_DIR = join(REPO_ROOT, '.data', 'models', 'smollm2-135m-instruct');
const MARKER = join(FIXTURE_ROOT, '.complete');
const LOCK = `${FIXTURE_ROOT}.lock`;
/** Building takes well under this on 2 cores; past it, a waiting process assumes the builder died. */
const BUILD_TIMEOUT_MS = 15 * 60_000;

/** sha256 over the trainer's Python sources: the fixture's cache key. */
function trainerHash(): string {
  const dir = join(REPO_ROOT, 'trainer');
  const hash = createHash('sha256');
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.py'))
    .sort()) {
    hash.update(file).update(readFileSync(join(dir, file)));
  }
  return hash.digest('hex');
}

function fixtureIsCurrent(): boolean {
  try {
    return readFileSync(MARKER, 'utf8').trim() === trainerHash();
  } catch {
    return false;
  }
}

async function python(args: string[], what: string, timeoutMs = BUILD_TIMEOUT_MS): Promise<string> {
  try {
    const { stdout } = await run(PYTHON, args, { cwd: REPO_ROOT, timeout: timeoutMs, maxBuffer: 64 << 20 });
    return stdout;
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string };
    const tail = (s?: string) => (s ?? '').split('\n').slice(-30).join('\n');
    throw new Error(
      `${what} failed: ${e.message}\n--- stdout ---\n${tail(e.stdout)}\n--- stderr ---\n${tail(e.stderr)}`,
    );
  }
}

async function build(): Promise<void> {
  if (!existsSync(PYTHON)) throw new Error(`engine fixture: ${PYTHON} missing; run \`npm run setup\` first`);
  rmSync(FIXTURE_ROOT, { recursive: true, force: true });
  mkdirSync(FIXTURE_ROOT, { recursive: true });
  await python(
    ['-m', 'trainer', 'tiny', '--family', 'llama', '--out', HF_DIR, '--tokenizer-from', TOKENIZER_DIR, '--seed', '0'],
    'python -m trainer tiny',
  );
  const spec = join(FIXTURE_ROOT, 'export.json');
  writeFileSync(
    spec,
    JSON.stringify({ modelPath: HF_DIR, adapterDir: null, method: null, outputDir: ONNX_DIR, dtype: 'float32' }),
  );
  await python(['-m', 'trainer', 'export', '--spec', spec], 'python -m trainer export');
  writeFileSync(MARKER, `${trainerHash()}\n`);
}

function lockAge(): number {
  try {
    return Date.now() - statSync(LOCK).mtimeMs;
  } catch {
    return 0;
  }
}

/** Builds the fixture once (across parallel test processes) and returns the ONNX directory. */
export async function ensureTinyOnnx(): Promise<string> {
  for (;;) {
    if (fixtureIsCurrent()) return ONNX_DIR;
    mkdirSync(dirname(LOCK), { recursive: true });
    try {
      mkdirSync(LOCK, { recursive: false });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (lockAge() > BUILD_TIMEOUT_MS) rmSync(LOCK, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    try {
      if (!fixtureIsCurrent()) await build();
    } finally {
      rmSync(LOCK, { recursive: true, force: true });
    }
  }
}

/**
 * A copy of the exported model whose graph I/O breaks the contract: input
 * `past_key_values.0.key` renamed to `past.0.key` and output `present.1.value` to `present_1_value`
 * (edited with the onnx package, which renames every node reference too). Cached beside the fixture.
 */
export async function ensureRenamedOnnx(): Promise<string> {
  const source = await ensureTinyOnnx();
  const dir = join(FIXTURE_ROOT, 'renamed');
  if (existsSync(join(dir, '.complete'))) return dir;
  mkdirSync(dir, { recursive: true });
  const script = `
import sys, onnx
src, dst = sys.argv[1], sys.argv[2]
m = onnx.load(src)
renames = {"past_key_values.0.key": "past.0.key", "present.1.value": "present_1_value"}
for v in list(m.graph.input) + list(m.graph.output):
    if v.name in renames: v.name = renames[v.name]
for n in m.graph.node:
    n.input[:] = [renames.get(x, x) for x in n.input]
    n.output[:] = [renames.get(x, x) for x in n.output]
onnx.save(m, dst, save_as_external_data=False)
onnx.checker.check_model(dst)
`;
  await python(['-c', script, join(source, 'model.onnx'), join(dir, 'model.onnx')], 'renaming graph I/O', 120_000);
  copyFileSync(join(source, 'engine.json'), join(dir, 'engine.json'));
  writeFileSync(join(dir, '.complete'), 'ok\n');
  return dir;
}

/**
 * A copy of the export as exports were before issue #15: no `num_logits_to_keep` input (it becomes
 * a constant 0 inside the graph, so every position's logits come back). Cached beside the fixture.
 */
export async function ensurePreLogitsCountOnnx(): Promise<string> {
  const source = await ensureTinyOnnx();
  const dir = join(FIXTURE_ROOT, 'pre-logits-count');
  if (existsSync(join(dir, '.complete'))) return dir;
  mkdirSync(dir, { recursive: true });
  const script = `
import sys, onnx, numpy as np
from onnx import numpy_helper
src, dst = sys.argv[1], sys.argv[2]
m = onnx.load(src)
name = "num_logits_to_keep"
keep = [i for i in m.graph.input if i.name != name]
assert len(keep) == len(m.graph.input) - 1, "the source export has no " + name
del m.graph.input[:]
m.graph.input.extend(keep)
m.graph.initializer.append(numpy_helper.from_array(np.array(0, np.int64), name))
onnx.save(m, dst, save_as_external_data=False)
onnx.checker.check_model(dst)
`;
  await python(
    ['-c', script, join(source, 'model.onnx'), join(dir, 'model.onnx')],
    'dropping num_logits_to_keep',
    120_000,
  );
  copyFileSync(join(source, 'engine.json'), join(dir, 'engine.json'));
  writeFileSync(join(dir, '.complete'), 'ok\n');
  return dir;
}

/** A directory holding a valid engine.json and a model.onnx cut to its first 1000 bytes. */
export async function makeCorruptModelDir(into: string): Promise<string> {
  const source = await ensureTinyOnnx();
  mkdirSync(into, { recursive: true });
  copyFileSync(join(source, 'engine.json'), join(into, 'engine.json'));
  writeFileSync(join(into, 'model.onnx'), readFileSync(join(source, 'model.onnx')).subarray(0, 1000));
  return into;
}

const REFERENCE_GREEDY = `
import json, sys, torch
from transformers import AutoModelForCausalLM
req = json.load(sys.stdin)
torch.manual_seed(0)
model = AutoModelForCausalLM.from_pretrained(req["modelDir"], dtype=torch.float32).eval()
out = []
with torch.no_grad():
    for prompt in req["prompts"]:
        ids = torch.tensor([prompt])
        gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=req["maxNewTokens"], eos_token_id=req["eosTokenIds"],
                             pad_token_id=req["padTokenId"])
        out.append(gen[0, len(prompt):].tolist())
print(json.dumps(out))
`;

/**
 * HF greedy continuations, one prompt at a time (so no padding), as the generated ids including
 * the EOS if one was produced.
 */
export async function referenceGreedy(
  prompts: number[][],
  maxNewTokens: number,
  eosTokenIds: number[],
  padTokenId: number,
): Promise<number[][]> {
  const stdout = await pythonWithInput(REFERENCE_GREEDY, {
    modelDir: HF_DIR,
    prompts,
    maxNewTokens,
    eosTokenIds,
    padTokenId,
  });
  return JSON.parse(stdout) as number[][];
}

const REFERENCE_LOGPROBS = `
import json, sys, torch
from transformers import AutoModelForCausalLM
req = json.load(sys.stdin)
model = AutoModelForCausalLM.from_pretrained(req["modelDir"], dtype=torch.float64).eval()
out = []
with torch.no_grad():
    for prompt, cont in zip(req["prompts"], req["continuations"]):
        ids = torch.tensor([prompt + cont])
        logp = torch.log_softmax(model(input_ids=ids).logits[0], dim=-1)
        out.append(sum(logp[len(prompt) + j - 1, t].item() for j, t in enumerate(cont)))
print(json.dumps(out))
`;

/** Σ log p(continuation | prompt) per pair from an unpadded float64 PyTorch forward pass. */
export async function referenceLogProbs(prompts: number[][], continuations: number[][]): Promise<number[]> {
  const stdout = await pythonWithInput(REFERENCE_LOGPROBS, { modelDir: HF_DIR, prompts, continuations });
  return JSON.parse(stdout) as number[];
}

async function pythonWithInput(script: string, input: unknown): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(
      PYTHON,
      ['-c', script],
      { cwd: REPO_ROOT, timeout: 300_000, maxBuffer: 64 << 20 },
      (error, stdout, stderr) => {
        if (error)
          reject(new Error(`reference script failed: ${error.message}\n${stderr.split('\n').slice(-30).join('\n')}`));
        else resolvePromise(stdout);
      },
    );
    child.stdin!.end(JSON.stringify(input));
  });
}

/**
 * Deterministic prompts of the given lengths: token ids spread over the vocabulary (avoiding
 * the special ids below 20), different per prompt.
 */
export function makePrompts(lengths: number[], vocabSize: number): number[][] {
  return lengths.map((length, p) =>
    Array.from({ length }, (_, i) => 20 + ((p * 7919 + i * 104729 + i * i * 31) % (vocabSize - 20))),
  );
}
