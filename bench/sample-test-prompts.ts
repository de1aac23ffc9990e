/**
 * A tokenized zero-shot test split from the shipped samples, for the QA benchmarks on a checkout
 * where the demo has not run (so .data/store holds no `test-0shot.jsonl`):
 *
 *   node --import tsx bench/sample-test-prompts.ts [--per-dataset 20] [--model HF_DIR] [--out FILE]
 *
 * The first --per-dataset test records of each of the demo's four datasets (datasets/samples),
 * formatted and tokenized as the tokenize activity does it for a `template` model (formatExample
 * + encodePrompt, the reference answer's ids in context). The demo draws its 20 per dataset by a
 * seeded sample instead, so the items differ but come from the same files. Prints the file's path
 * (default .data/bench/samples-test-0shot.jsonl), for `bench/eval-qa.ts --prompts`.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { SAMPLES_DIR, formatExample, loadTokenizer, parseUnifiedQa, testItem, type DatasetName } from '../src/data';
import type { TestItem } from '../src/contracts';
import { benchArgs, BENCH_ROOT, intArg, SMOLLM2_HF } from './engine-models';

/** examples/demo.yaml's datasets. */
const DEMO_DATASETS: readonly DatasetName[] = ['boolq', 'arc_easy', 'squad1_1', 'narrativeqa'];

async function main(): Promise<void> {
  const { values } = benchArgs(process.argv.slice(2), ['per-dataset', 'model', 'out']);
  const perDataset = intArg(values['per-dataset'], 20, 'per-dataset');
  const tok = await loadTokenizer(values.model ?? SMOLLM2_HF);
  const items: TestItem[] = [];
  for (const dataset of DEMO_DATASETS) {
    const { records } = parseUnifiedQa(readFileSync(join(SAMPLES_DIR, dataset, 'test.tsv'), 'utf8'), dataset);
    for (const record of records.slice(0, perDataset)) {
      items.push(testItem(tok, record, formatExample(record, 'template', { tokenizerInfo: tok })));
    }
  }
  const out = resolve(values.out ?? join(BENCH_ROOT, 'samples-test-0shot.jsonl'));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, items.map((t) => JSON.stringify(t)).join('\n') + '\n');
  const tokens = items.reduce((n, t) => n + t.promptIds.length, 0);
  console.error(`${items.length} items, ${tokens} prompt tokens`);
  console.log(out);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
