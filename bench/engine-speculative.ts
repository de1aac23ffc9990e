/**
 * Speculative decoding (generateSpeculative) vs target-only greedy generate on real chat prompts,
 * batch size 1 on both sides, EOS on (both produce the same tokens, checked here, so their token
 * counts are equal). The draft is a shallow copy of the target (`python -m trainer truncate`):
 * same embeddings, lm_head and tokenizer, only --draft-layers of its decoder layers.
 *
 *   node --import tsx bench/engine-speculative.ts [--quick] [--model HF_DIR] [--draft-layers 0,1]
 *        [--draft HF_DIR] [--gamma 1,3,5] [--prompts 8] [--new 64] [--threads 1]
 *
 * --model defaults to SmolLM2-135M-Instruct; --draft replaces the truncated copy with any HF
 * directory sharing the target's vocabulary. Exports are cached under .data/bench/.
 * Also printed: the measured per-pass costs and, from them, the acceptance rate at which
 * speculation would break even on this machine for each γ.
 */
import { generate, generateSpeculative, loadModel, type EngineModel } from '../src/engine';
import { loadTokenizer } from '../src/data/tokenizer';
import { benchArgs, ensureBenchOnnx, ensureBenchTruncatedHf, intArg, SMOLLM2_HF } from './engine-models';

const QUESTIONS = [
  'What is the capital of France?',
  'Explain photosynthesis in simple terms.',
  'Write a Python function that reverses a string.',
  'Give me three tips for better sleep.',
  'Summarize the plot of Romeo and Juliet in two sentences.',
  'What are the benefits of regular exercise?',
  'How does a rainbow form?',
  'List the planets of the solar system in order from the sun.',
  'What is the difference between weather and climate?',
  'Translate "good morning, how are you?" into Spanish.',
  'Why is the sky blue?',
  'Describe how a bicycle works.',
];

/** SmolLM2-Instruct's chat format (ChatML), written as text: its special tokens are added tokens. */
const chat = (question: string) => `<|im_start|>user\n${question}<|im_end|>\n<|im_start|>assistant\n`;

async function main(): Promise<void> {
  const { quick, values } = benchArgs(process.argv.slice(2), [
    'model',
    'draft-layers',
    'draft',
    'gamma',
    'prompts',
    'new',
    'threads',
  ]);
  const hfDir = values.model ?? SMOLLM2_HF;
  const layers = (values['draft-layers'] ?? '0,1').split(',').map(Number);
  const gammas = (values.gamma ?? (quick ? '3' : '1,3,5')).split(',').map((g) => intArg(g, 3, 'gamma'));
  const count = Math.min(intArg(values.prompts, quick ? 3 : 8, 'prompts'), QUESTIONS.length);
  const maxNewTokens = intArg(values.new, quick ? 24 : 64, 'new');
  const threads = intArg(values.threads, 1, 'threads');
  const draftHf = values.draft ?? (await ensureBenchTruncatedHf(hfDir, layers));
  const [targetDir, draftDir] = [await ensureBenchOnnx(hfDir), await ensureBenchOnnx(draftHf)];
  const tokenizer = await loadTokenizer(hfDir);
  const prompts = QUESTIONS.slice(0, count).map((q) => tokenizer.encode(chat(q)));
  const open = (dir: string) => loadModel(dir, { intraOpNumThreads: threads });
  const [target, draft] = [await open(targetDir), await open(draftDir)];
  console.log(
    `target ${hfDir} (${target.config.numLayers} layers), draft ${draftHf} (${draft.config.numLayers} layers); ` +
      `${count} chat prompts of ${Math.min(...prompts.map((p) => p.length))}-${Math.max(...prompts.map((p) => p.length))} tokens, ` +
      `up to ${maxNewTokens} new tokens, EOS on, batch 1, ${threads} thread(s)`,
  );
  try {
    await report(target, draft, prompts, maxNewTokens, gammas, tokenizer.decode.bind(tokenizer));
  } finally {
    await Promise.all([target.release(), draft.release()]);
  }
}

async function report(
  target: EngineModel,
  draft: EngineModel,
  prompts: number[][],
  maxNewTokens: number,
  gammas: number[],
  decode: (ids: readonly number[]) => string,
): Promise<void> {
  // Warm-up of both sessions with every shape class used below (prefill, 1-token and multi-token steps).
  await generateSpeculative(target, draft, prompts.slice(0, 1), { maxNewTokens: 8, gamma: Math.max(...gammas) });
  const plain = await generate(target, prompts, { maxNewTokens, batchSize: 1 });
  const draftOnly = await generate(draft, prompts, { maxNewTokens, batchSize: 1 });
  const t = plain.stats.perTokenP50Ms!;
  console.log(`sample output: ${JSON.stringify(decode(plain.sequences[0]!.tokens))}`);
  console.log(
    `\nmedian decode step alone: target ${t.toFixed(1)} ms, draft ${draftOnly.stats.perTokenP50Ms!.toFixed(1)} ms`,
  );
  console.log(
    '\n| mode | tok/s | speedup vs target-only | acceptance | target passes | draft passes | tokens per target pass | ms per verify pass | ms per draft pass | break-even acceptance | same tokens |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  const base = plain.stats;
  const basePasses = plain.stats.batches.reduce((n, b) => n + 1 + b.stepMs.length, 0);
  console.log(
    `| target only | ${base.tokensPerSecond.toFixed(1)} | 1.00x | – | ${basePasses} | – | ${(base.generatedTokens / basePasses).toFixed(2)} | – | – | – | – |`,
  );
  const expected = JSON.stringify(plain.sequences.map((s) => s.tokens));
  for (const gamma of gammas) {
    const spec = await generateSpeculative(target, draft, prompts, { maxNewTokens, gamma });
    const s = spec.stats;
    const same = JSON.stringify(spec.sequences.map((q) => q.tokens)) === expected;
    const verify = s.targetMs / s.targetPasses;
    const c = s.draftMs / s.draftPasses;
    // A round yields 1 + γ·a tokens for γ·c + verify ms; target-only pays t per token: equal at a*.
    const breakEven = (gamma * c + verify - t) / (gamma * t);
    console.log(
      `| speculative γ=${gamma} | ${s.tokensPerSecond.toFixed(1)} | ${(s.tokensPerSecond / base.tokensPerSecond).toFixed(2)}x | ` +
        `${((s.acceptanceRate ?? 0) * 100).toFixed(1)}% | ${s.targetPasses} | ${s.draftPasses} | ${(s.generatedTokens / s.targetPasses).toFixed(2)} | ` +
        `${verify.toFixed(1)} | ${c.toFixed(1)} | ${breakEven > 1 ? '>100%' : `${(breakEven * 100).toFixed(0)}%`} | ${same} |`,
    );
    if (!same) process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
