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
 * Prompt lookup searches each row's own sequence, then the outputs the side has already produced
 * (earlier groups, passed as history as the evaluate activity passes its earlier chunks, and the
 * rows of the same call that finished first).
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
    // Sides run in turn on each group of 8 prompts, so a load that changes during the benchmark
    // (a shared machine) slows every side alike instead of skewing one ratio.
    type Side = {
      name: string;
      /** `history`: this side's outputs for the earlier groups (prompt lookup searches them, as the evaluate activity does across its chunks). */
      run: (
        p: number[][],
        history: readonly number[][],
      ) => Promise<SpeculativeResult | Awaited<ReturnType<typeof generate>>>;
    };
    const sides: Side[] = [{ name: 'target only', run: (p) => generate(target, p, { maxNewTokens, batchSize: 1 }) }];
    for (const gamma of gammas) {
      sides.push({
        name: `prompt lookup n≤${maxNgram} γ=${gamma}`,
        run: (p, history) => generatePromptLookup(target, p, { maxNewTokens, gamma, maxNgram, history }),
      });
      if (draft)
        sides.push({
          name: `model draft γ=${gamma}`,
          run: (p) => generateSpeculative(target, draft, p, { maxNewTokens, gamma }),
        });
    }
    const totals = sides.map(() => ({
      wallMs: 0,
      tokens: 0,
      passes: 0,
      proposed: 0,
      accepted: 0,
      out: [] as number[][],
    }));
    for (let g = 0; g < prompts.length; g += 8) {
      const group = prompts.slice(g, g + 8);
      for (const [k, side] of sides.entries()) {
        const r = await side.run(group, totals[k]!.out);
        const t = totals[k]!;
        t.wallMs += r.stats.wallMs;
        t.tokens += r.stats.generatedTokens;
        t.out.push(...r.sequences.map((q) => q.tokens));
        if ('targetPasses' in r.stats) {
          t.passes += r.stats.targetPasses;
          t.proposed += r.stats.proposedTokens;
          t.accepted += r.stats.acceptedTokens;
        }
      }
    }
    const base = totals[0]!;
    const expected = JSON.stringify(base.out);
    console.log(
      '\n| drafting | items/s | tokens/s | acceptance | tokens per target pass | speedup vs target-only | same tokens |',
    );
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | --- |');
    for (const [k, side] of sides.entries()) {
      const t = totals[k]!;
      const same = k === 0 ? '–' : String(JSON.stringify(t.out) === expected);
      if (same === 'false') process.exitCode = 1;
      const seconds = t.wallMs / 1000;
      console.log(
        `| ${side.name} | ${(count / seconds).toFixed(2)} | ${(t.tokens / seconds).toFixed(1)} | ` +
          `${k === 0 || t.proposed === 0 ? '–' : `${((t.accepted / t.proposed) * 100).toFixed(1)}%`} | ` +
          `${k === 0 ? '1.00' : (t.tokens / t.passes).toFixed(2)} | ${(base.wallMs / t.wallMs).toFixed(2)}× | ${same} |`,
      );
    }
    console.log(
      `\nspeedup = target-only wall time ÷ the side's, on the same ${count} prompts (${base.tokens} target ` +
        `tokens), the sides taking turns on each group of 8 prompts.`,
    );
  } finally {
    await Promise.all([target.release(), draft?.release()]);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
