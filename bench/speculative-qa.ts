/**
 * Speculative decoding on the real QA workload (issue #15 item 5): a run's tokenized test prompts,
 * EOS on, batch 1 on every side, per drafting method against target-only greedy decoding of the
 * same prompts in the same process. Every side must return the target's tokens exactly (checked;
 * the exit code is 1 when one does not).
 *
 *   node --import tsx bench/speculative-qa.ts [--quick] [--prompts TEST.jsonl] [--model HF_DIR]
 *        [--draft HF_DIR] [--draft-layers 0,1,…] [--gamma 2,4,6] [--ngram 3] [--new 24] [--count N] [--threads 2]
 *
 * --prompts: a tokenized test split (default: the newest test-0shot.jsonl under .data/store, the
 * demo's or study-small's). --model defaults to SmolLM2-135M-Instruct; the model draft defaults to
 * study-small's, its 10-layer cut (.data/models/smollm2-135m-l10), --draft-layers makes another cut.
 * --new defaults to study-small's eval.maxNewTokens (24): the zero-shot base model runs to it.
 * Prints, per side: items/s, tokens/s, acceptance, tokens per target pass, speedup, same tokens.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { generate, generatePromptLookup, generateSpeculative, loadModel, type SpeculativeResult } from '../src/engine';
import { benchArgs, ensureBenchOnnx, ensureBenchTruncatedHf, intArg, REPO_ROOT, SMOLLM2_HF } from './engine-models';
import { defaultTestPrompts, readTestItems } from './qa-prompts';

const STUDY_SMALL_DRAFT = join(REPO_ROOT, '.data', 'models', 'smollm2-135m-l10');

async function main(): Promise<void> {
  const { quick, values } = benchArgs(process.argv.slice(2), [
    'prompts',
    'model',
    'draft',
    'draft-layers',
    'gamma',
    'ngram',
    'new',
    'count',
    'threads',
  ]);
  const file = values.prompts ?? defaultTestPrompts();
  const all = readTestItems(file);
  const count = Math.min(intArg(values.count, quick ? 8 : all.length, 'count'), all.length);
  // Evenly spread, so every dataset of the split is represented.
  const items = Array.from({ length: count }, (_, i) => all[Math.floor((i * all.length) / count)]!);
  const prompts = items.map((t) => t.promptIds);
  const hfDir = values.model ?? SMOLLM2_HF;
  const draftHf =
    values.draft ??
    (values['draft-layers']
      ? await ensureBenchTruncatedHf(hfDir, values['draft-layers'].split(',').map(Number))
      : existsSync(STUDY_SMALL_DRAFT)
        ? STUDY_SMALL_DRAFT
        : undefined);
  const gammas = (values.gamma ?? (quick ? '4' : '2,4,6')).split(',').map((g) => intArg(g, 4, 'gamma'));
  const maxNgram = intArg(values.ngram, 3, 'ngram');
  const maxNewTokens = intArg(values.new, quick ? 12 : 24, 'new');
  const threads = intArg(values.threads, 2, 'threads');
  const open = async (dir: string) => loadModel(await ensureBenchOnnx(dir), { intraOpNumThreads: threads });
  const target = await open(hfDir);
  const draft = draftHf ? await open(draftHf) : undefined;
  const lengths = prompts.map((p) => p.length);
  console.log(
    `${file}: ${count} prompts of ${Math.min(...lengths)}-${Math.max(...lengths)} tokens; target ${hfDir}` +
      `${draft ? `, model draft ${draftHf} (${draft.config.numLayers} layers)` : ', no model draft'}; ` +
      `up to ${maxNewTokens} new tokens, EOS on, batch 1, ${threads} thread(s)`,
  );
  try {
    // Warm-up: every session and shape class once, so no side pays a first-run cost.
    await generatePromptLookup(target, prompts.slice(0, 2), { maxNewTokens: 4, gamma: Math.max(...gammas) });
    if (draft) await generateSpeculative(target, draft, prompts.slice(0, 2), { maxNewTokens: 4, gamma: 2 });
    const base = await generate(target, prompts, { maxNewTokens, batchSize: 1 });
    const expected = JSON.stringify(base.sequences.map((s) => s.tokens));
    const seconds = base.stats.wallMs / 1000;
    console.log(
      '\n| drafting | items/s | tokens/s | acceptance | tokens per target pass | speedup vs target-only | same tokens |',
    );
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | --- |');
    console.log(
      `| target only | ${(count / seconds).toFixed(2)} | ${base.stats.tokensPerSecond.toFixed(1)} | – | 1.00 | 1.00× | – |`,
    );
    const row = (name: string, r: SpeculativeResult) => {
      const s = r.stats;
      const same = JSON.stringify(r.sequences.map((q) => q.tokens)) === expected;
      if (!same) process.exitCode = 1;
      console.log(
        `| ${name} | ${(count / (s.wallMs / 1000)).toFixed(2)} | ${s.tokensPerSecond.toFixed(1)} | ` +
          `${s.acceptanceRate === null ? '–' : `${(s.acceptanceRate * 100).toFixed(1)}%`} | ` +
          `${(s.generatedTokens / s.targetPasses).toFixed(2)} | ${(base.stats.wallMs / s.wallMs).toFixed(2)}× | ${same} |`,
      );
    };
    for (const gamma of gammas) {
      row(
        `prompt lookup n≤${maxNgram} γ=${gamma}`,
        await generatePromptLookup(target, prompts, { maxNewTokens, gamma, maxNgram }),
      );
      if (draft)
        row(`model draft γ=${gamma}`, await generateSpeculative(target, draft, prompts, { maxNewTokens, gamma }));
    }
    console.log(
      `\nspeedup = target-only wall time ÷ the side's on the same ${count} prompts (${base.stats.generatedTokens} ` +
        `target tokens, ${(base.sequences.filter((s) => s.hitLimit).length / count) * 100}% to the limit).`,
    );
  } finally {
    await Promise.all([target.release(), draft?.release()]);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
