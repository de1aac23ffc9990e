// The shipped custom-dataset samples: the same synthetic items as the UnifiedQA-format samples,
// written as JSON lines in two of the layouts a custom dataset may use (src/data/jsonl.ts), for
// examples/custom-jsonl.yaml. `datasets/generate.ts --out datasets/samples` writes them with the
// TSV samples; a unit test regenerates and compares byte for byte.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRng, seedFrom, type Rng } from '../src/common/rng';
import { extractiveItem, multipleChoiceItem, type SynthItem } from './synth/items';

/** Records per split: as many as the TSV samples (generate.ts SAMPLE_SIZES). */
const SIZES = { train: 120, test: 40 } as const;

interface CustomSample {
  /** Directory under `<out>/custom/`, and the dataset's name in examples/custom-jsonl.yaml. */
  name: string;
  item: (rng: Rng) => SynthItem;
  line: (item: SynthItem) => unknown;
}

export const CUSTOM_SAMPLES: readonly CustomSample[] = [
  {
    // qa layout: question, choices, answer.
    name: 'category_mc',
    item: (rng) => multipleChoiceItem(rng),
    line: ({ fields, answers }) => ({ question: fields.question, choices: fields.choices, answer: answers[0] }),
  },
  {
    // chat layout: the passage in a system turn, the question as the user's, the answer as the assistant's.
    name: 'profile_chat',
    item: (rng) => extractiveItem(rng),
    line: ({ fields, answers }) => ({
      messages: [
        { role: 'system', content: fields.context },
        { role: 'user', content: fields.question },
        { role: 'assistant', content: answers[0] },
      ],
    }),
  },
];

/** Writes `<out>/custom/<name>/{train,test}.jsonl`; test inputs never occur in train. */
export function generateCustomSamples(outDir: string, seed: number): { file: string; records: number }[] {
  const written: { file: string; records: number }[] = [];
  for (const sample of CUSTOM_SAMPLES) {
    const seen = new Set<string>();
    mkdirSync(join(outDir, 'custom', sample.name), { recursive: true });
    for (const split of ['test', 'train'] as const) {
      const rng = createRng(seedFrom(seed, 'custom', sample.name, split));
      const lines: string[] = [];
      while (lines.length < SIZES[split]) {
        const item = sample.item(rng);
        const line = JSON.stringify(sample.line(item));
        // The input is all of the line but the answer; a repeat of it would leak test into train.
        const input = JSON.stringify([item.fields.question, item.fields.choices, item.fields.context]);
        if (seen.has(input)) continue;
        seen.add(input);
        lines.push(line);
      }
      const file = join('custom', sample.name, `${split}.jsonl`);
      writeFileSync(join(outDir, file), lines.join('\n') + '\n');
      written.push({ file, records: lines.length });
    }
  }
  return written;
}
