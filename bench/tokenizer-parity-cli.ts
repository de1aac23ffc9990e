// Token ids from the TypeScript side, for test/python/test_tokenizer_parity.py to compare against
// the Rust `tokenizers` library:
//   node --import tsx bench/tokenizer-parity-cli.ts --model DIR --input FILE.json [--pgtok FILE]
// Input: {"texts": string[], "records": QaRecord[], "maxLength"?: number}. Output (JSON on stdout):
// per text the ids with and without special tokens; per record and family the formatted
// prompt/answer and the training ids with their mask boundary. With --pgtok, the training examples
// are also written as a pgtok shard, so the Python side can check the byte layout it will read.
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { MODEL_FAMILIES, formatExample, type ModelFamily } from '../src/data/formats';
import { writePgtok } from '../src/data/pgtok';
import { tokenizeForTraining } from '../src/data/tokenize';
import { loadTokenizer } from '../src/data/tokenizer';
import type { QaRecord } from '../src/data/unifiedqa';

interface ParityInput {
  texts: string[];
  records: QaRecord[];
  maxLength?: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { model: { type: 'string' }, input: { type: 'string' }, pgtok: { type: 'string' } },
    strict: true,
  });
  if (!values.model || !values.input)
    throw new TypeError('usage: tokenizer-parity-cli.ts --model DIR --input FILE.json [--pgtok FILE]');
  const tok = await loadTokenizer(values.model);
  const input = JSON.parse(await readFile(values.input, 'utf8')) as ParityInput;
  const families = MODEL_FAMILIES.filter((f: ModelFamily) => f !== 'template' || tok.chatTemplate !== null);
  const out = {
    vocabSize: tok.vocabSize,
    bosTokenId: tok.bosTokenId,
    eosTokenId: tok.eosTokenId,
    padTokenId: tok.padTokenId,
    texts: input.texts.map((t) => ({ plain: tok.encode(t), special: tok.encode(t, { addSpecialTokens: true }) })),
    records: input.records.flatMap((r) =>
      families.map((family) => {
        const ex = formatExample(r, family, { tokenizerInfo: tok });
        const t = tokenizeForTraining(tok, ex, input.maxLength ?? 1_000_000);
        return { id: r.id, family, prompt: ex.prompt, answer: ex.answer, ids: t.ids, promptLength: t.promptLength };
      }),
    ),
  };
  if (values.pgtok) await writeFile(values.pgtok, writePgtok(out.records));
  process.stdout.write(JSON.stringify(out));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
