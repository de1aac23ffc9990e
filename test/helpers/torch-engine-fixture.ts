/**
 * Fixtures for the engine-parity tests: model directories (the tiny families, SmolLM2, a shallow
 * draft), PEFT LoRA adapters with random non-zero weights (so an adapter visibly changes the tokens;
 * a freshly initialized LoRA has B = 0 and would change nothing), and their ONNX exports, all built
 * by the real trainer CLI and cached under .data/test-fixtures/torch-engine/ with a marker holding
 * the hash of the trainer's sources. Plus `runTorchEngine`: `python -m trainer generate` with its
 * events folded by the activity's own reducer (activities/evaluate-torch.ts).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { reduceTorchEvent, torchGeneration, type TorchOutcome } from '../../activities/evaluate-torch';
import type { Generation } from '../../activities/evaluate-generate';
import { parseTrainerLine } from '../../src/contracts/trainer-events';
import { FIXTURES, PYTHON, REPO, SMOLLM2 } from './fixtures';

const run = promisify(execFile);
export const ROOT = join(FIXTURES, 'torch-engine');

function trainerHash(): string {
  const hash = createHash('sha256');
  const dir = join(REPO, 'trainer');
  for (const f of readdirSync(dir)
    .filter((x) => ['export.py', 'onnx_graph.py', 'methods.py', 'models.py'].includes(x))
    .sort())
    hash.update(f).update(readFileSync(join(dir, f)));
  return hash.digest('hex').slice(0, 16);
}

async function python(args: string[], what: string): Promise<string> {
  try {
    return (await run(PYTHON, args, { cwd: REPO, timeout: 20 * 60_000, maxBuffer: 256 << 20 })).stdout;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`${what} failed: ${e.message}\n${(e.stderr ?? '').split('\n').slice(-30).join('\n')}`);
  }
}

/** Builds `dir` with `build` once per trainer version (the marker is written last). */
async function cached(dir: string, build: (dir: string) => Promise<unknown>): Promise<string> {
  const marker = join(dir, '.fixture');
  const want = trainerHash();
  if (existsSync(marker) && readFileSync(marker, 'utf8') === want) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, '..'), { recursive: true });
  await build(dir);
  writeFileSync(marker, want);
  return dir;
}

export type Family = 'llama' | 'gemma' | 'mistral';

export const tinyHf = (family: Family) =>
  cached(join(ROOT, `tiny-${family}`), (out) =>
    python(
      ['-m', 'trainer', 'tiny', '--family', family, '--out', out, '--tokenizer-from', SMOLLM2, '--seed', '0'],
      'tiny',
    ),
  );

/** The tiny llama with only its first decoder layer: a draft sharing the target's vocabulary. */
export const shallowDraft = async () => {
  const src = await tinyHf('llama');
  return cached(join(ROOT, 'tiny-llama-l0'), (out) =>
    python(['-m', 'trainer', 'truncate', '--src', src, '--out', out, '--layers', '0'], 'truncate'),
  );
};

const RANDOM_LORA = `
import sys, torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
src, out = sys.argv[1], sys.argv[2]
torch.manual_seed(1)
model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM")
peft = get_peft_model(model, cfg)
with torch.no_grad():
    for name, p in peft.named_parameters():
        if "lora_" in name:
            p.normal_(0, 0.05)
peft.save_pretrained(out)
`;

/** A LoRA adapter on q/v with random non-zero A and B. */
export const randomLora = (name: string, base: string) =>
  cached(join(ROOT, `${name}-lora`), async (out) => {
    await python(['-c', RANDOM_LORA, base, out], 'random LoRA');
  });

const RANDOM_PROMPT = `
import sys, torch
from peft import PromptTuningConfig, get_peft_model
from transformers import AutoModelForCausalLM
src, out = sys.argv[1], sys.argv[2]
torch.manual_seed(2)
model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
peft = get_peft_model(model, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4, prompt_tuning_init="RANDOM"))
with torch.no_grad():
    for name, p in peft.named_parameters():
        if "prompt" in name:
            p.normal_(0, 1.0)
peft.save_pretrained(out)
`;

/** A prompt-tuning adapter: 4 virtual tokens with random embeddings. */
export const randomPromptTuning = (name: string, base: string) =>
  cached(join(ROOT, `${name}-prompt`), async (out) => {
    await python(['-c', RANDOM_PROMPT, base, out], 'random prompt tuning');
  });

/** The ONNX export of `modelPath` (plus the adapter, merged or, for prompt tuning, in the graph). */
export const onnxExport = (
  name: string,
  modelPath: string,
  adapterDir: string | null = null,
  adapterMethod: 'lora' | 'prompt_tuning' = 'lora',
) =>
  cached(join(ROOT, `${name}-onnx`), async (out) => {
    mkdirSync(ROOT, { recursive: true });
    const spec = join(ROOT, `${name}-export.json`);
    const method = adapterDir ? adapterMethod : null;
    writeFileSync(spec, JSON.stringify({ modelPath, adapterDir, method, outputDir: out, dtype: 'float32' }));
    await python(['-m', 'trainer', 'export', '--spec', spec], `export ${name}`);
  });

export interface TorchEngineRequest {
  modelPath: string;
  adapterDir?: string | null;
  method?: string | null;
  draftModelPath?: string | null;
  gamma?: number;
  prompts: number[][];
  answers: number[][];
  maxNewTokens: number;
  batchSize: number;
}

/** `python -m trainer generate` over the prompts, on the CPU: the Generation the activity would build. */
export async function runTorchEngine(
  req: TorchEngineRequest,
  scratch: string,
): Promise<Generation & { precision?: string }> {
  mkdirSync(scratch, { recursive: true });
  const itemsPath = join(scratch, 'items.jsonl');
  writeFileSync(
    itemsPath,
    req.prompts.map((p, i) => JSON.stringify({ promptIds: p, answerIds: req.answers[i] })).join('\n') + '\n',
  );
  const spec = join(scratch, 'generate.json');
  writeFileSync(
    spec,
    JSON.stringify({
      modelPath: req.modelPath,
      itemsPath,
      adapterDir: req.adapterDir ?? null,
      method: req.method ?? null,
      draftModelPath: req.draftModelPath ?? null,
      gamma: req.gamma ?? 4,
      device: 'cpu',
      maxNewTokens: req.maxNewTokens,
      batchSize: req.batchSize,
    }),
  );
  const stdout = await python(['-m', 'trainer', 'generate', '--spec', spec], 'trainer generate');
  let outcome: TorchOutcome = { sequences: [], scores: [], batches: [] };
  for (const line of stdout.split('\n').filter(Boolean)) {
    const parsed = parseTrainerLine(line);
    if (!parsed.ok) throw new Error(`trainer generate printed ${line}: ${parsed.reason}`);
    outcome = reduceTorchEvent(outcome, parsed.event);
  }
  return { ...torchGeneration(outcome, req.prompts.length, Boolean(req.draftModelPath)), precision: outcome.precision };
}
