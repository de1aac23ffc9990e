// Throughput of format + tokenize on UnifiedQA-layout data, e.g. the shipped samples or the
// generator's --scale output:
//   node --import tsx src/data/bench-tokenize.ts --model DIR [--data DIR] [--family F] [--max-length N]
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DATASET_NAMES, SAMPLES_DIR } from '../../datasets/catalog';
import { MODEL_FAMILIES, formatExample, type ModelFamily } from './formats';
import { tokenizeForTraining } from './tokenize';
import { loadTokenizer } from './tokenizer';
import { parseUnifiedQa, type QaRecord } from './unifiedqa';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' }, data: { type: 'string' }, family: { type: 'string' }, 'max-length': { type: 'string' },
    },
    strict: true,
  });
  if (!values.model) throw new TypeError('usage: bench-tokenize.ts --model DIR [--data DIR] [--family F] [--max-length N]');
  const family = (values.family ?? 'template') as ModelFamily;
  if (!MODEL_FAMILIES.includes(family)) throw new TypeError(`--family must be one of ${MODEL_FAMILIES.join(', ')}`);
  const maxLength = Number(values['max-length'] ?? 512);
  const dataDir = values.data ?? SAMPLES_DIR;

  const records: QaRecord[] = [];
  for (const dataset of DATASET_NAMES) {
    const file = join(dataDir, dataset, 'train.tsv');
    if (existsSync(file)) records.push(...parseUnifiedQa(await readFile(file, 'utf8'), dataset).records);
  }
  const tok = await loadTokenizer(values.model);
  const start = performance.now();
  let tokens = 0;
  let chars = 0;
  for (const r of records) {
    const ex = formatExample(r, family, { tokenizerInfo: tok });
    chars += ex.prompt.length + ex.answer.length;
    tokens += tokenizeForTraining(tok, ex, maxLength).ids.length;
  }
  const seconds = (performance.now() - start) / 1000;
  console.log(JSON.stringify({
    family, records: records.length, seconds: Number(seconds.toFixed(2)),
    recordsPerSec: Math.round(records.length / seconds), tokensPerSec: Math.round(tokens / seconds),
    promptMBPerSec: Number((chars / seconds / 1e6).toFixed(2)),
  }));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
