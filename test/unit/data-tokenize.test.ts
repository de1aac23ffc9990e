import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AnswerTooLongError, DoubleBosError, MODEL_FAMILIES, SAMPLES_DIR, encodePrompt, formatExample, loadTokenizer,
  parseUnifiedQa, tokenizeForTraining, type TokenizerWrapper,
} from '../../src/data';

// CI always has the bootstrap's SmolLM2 directory; PEFTGRID_TOKENIZER_DIR points elsewhere for local runs.
const MODEL_DIR = process.env.PEFTGRID_TOKENIZER_DIR ?? join(__dirname, '..', '..', '.data', 'models', 'smollm2-135m-instruct');
const skip = existsSync(join(MODEL_DIR, 'tokenizer.json'))
  ? false
  : `${MODEL_DIR} is missing: run the bootstrap (python -m trainer materialize-gguf) first`;

/** Character-level stand-in: "<s>" is BOS (1), every other character its code point + 1000, EOS 2. */
const charTok = {
  bosTokenId: 1 as number | null,
  eosTokenId: 2,
  encode: (text: string): number[] =>
    text.split(/(<s>)/).filter(Boolean).flatMap((part) => (part === '<s>' ? [1] : [...part].map((c) => c.codePointAt(0)! + 1000))),
};

test('ids = prompt ++ answer ++ EOS; promptLength is the mask boundary', () => {
  const t = tokenizeForTraining(charTok, { prompt: '<s>Q: hi\nA:', answer: ' yo' }, 100);
  assert.deepEqual(t.ids, [1, ...charTok.encode('Q: hi\nA:'), ...charTok.encode(' yo'), 2]);
  assert.equal(t.promptLength, 9);
  assert.equal(t.truncatedTokens, 0);
});

test('truncation cuts the prompt from the left after the BOS and never the answer', () => {
  const t = tokenizeForTraining(charTok, { prompt: '<s>0123456789', answer: 'abc' }, 10);
  assert.deepEqual(t.ids, [1, ...charTok.encode('56789'), ...charTok.encode('abc'), 2]);
  assert.equal(t.promptLength, 6);
  assert.equal(t.truncatedTokens, 5);
  const noBos = tokenizeForTraining({ ...charTok, bosTokenId: null }, { prompt: '0123456789', answer: 'abc' }, 10);
  assert.deepEqual(noBos.ids, [...charTok.encode('456789abc'), 2]);
  assert.throws(() => tokenizeForTraining(charTok, { prompt: '<s>0123', answer: 'abcdefgh' }, 10), AnswerTooLongError);
  assert.deepEqual(encodePrompt(charTok, '<s>0123456789', 4), [1, ...charTok.encode('789')]);
});

test('a doubled BOS is an error, not something to train on', () => {
  assert.throws(() => tokenizeForTraining(charTok, { prompt: '<s><s>Q', answer: 'a' }, 50), DoubleBosError);
  assert.throws(() => encodePrompt(charTok, '<s><s>Q'), DoubleBosError);
});

let tok: TokenizerWrapper;
async function smol(): Promise<TokenizerWrapper> {
  tok ??= await loadTokenizer(MODEL_DIR);
  return tok;
}

test('SmolLM2 tokenizer: special tokens, vocabulary size and hash', { skip }, async () => {
  const t = await smol();
  assert.equal(t.vocabSize, 49152);
  assert.equal(t.bosTokenId, t.tokenToId(t.bosToken!));
  assert.equal(t.eosTokenId, t.tokenToId(t.eosToken));
  assert.match(t.sha256, /^[0-9a-f]{64}$/);
  assert.ok(t.chatTemplate?.includes('<|im_start|>'));
  assert.equal(t.decode([]), '');
  assert.equal(t.decode(t.encode('where was anna born?')), 'where was anna born?');
});

test('SmolLM2 tokenizer: ids pinned from Rust tokenizers, including the whitespace JavaScript regexes get wrong', { skip }, async () => {
  const t = await smol();
  // From tokenizers.Tokenizer.from_file(...).encode(text, add_special_tokens=False).ids
  assert.deepEqual(t.encode('  \uFEFFbom'), [216, 216, 186, 136, 140, 82, 300]);
  assert.deepEqual(t.encode('a\u0085b'), [81, 141, 223, 82]);
  assert.deepEqual(t.encode('  \u0085 x'), [256, 141, 223, 1792]);
  assert.deepEqual(t.encode('hi', { addSpecialTokens: true })[0], t.bosTokenId);
});

const records = (['boolq', 'arc_easy', 'squad1_1', 'narrativeqa'] as const).flatMap((d) =>
  parseUnifiedQa(readFileSync(join(SAMPLES_DIR, d, 'test.tsv'), 'utf8'), d).records.slice(0, 5));

test('every family: one BOS at the start, the answer after the mask boundary, EOS last', { skip }, async () => {
  const t = await smol();
  for (const family of MODEL_FAMILIES) {
    for (const r of records) {
      const ex = formatExample(r, family, { tokenizerInfo: t });
      const { ids, promptLength } = tokenizeForTraining(t, ex, 512);
      assert.equal(ids[0], t.bosTokenId, `${family}: BOS first`);
      assert.notEqual(ids[1], t.bosTokenId, `${family}: BOS not doubled`);
      assert.equal(ids.at(-1), t.eosTokenId, `${family}: EOS last`);
      assert.deepEqual(ids.slice(0, promptLength), encodePrompt(t, ex.prompt), `${family}: training prompt = evaluation prompt`);
      assert.equal(t.decode(ids.slice(promptLength, -1)), ex.answer, `${family}: the learned part is exactly the answer`);
      assert.ok(ex.answer.includes(r.answers[0]!));
    }
  }
});

test('a long passage is cut from the left: the question end and the whole answer survive', { skip }, async () => {
  const t = await smol();
  const r = { ...records[0]!, context: `${'filler words that go on and on. '.repeat(300)}the key fact is here.` };
  const ex = formatExample(r, 'template', { tokenizerInfo: t });
  const full = tokenizeForTraining(t, ex, 100_000);
  const cut = tokenizeForTraining(t, ex, 128);
  assert.equal(cut.ids.length, 128);
  assert.ok(cut.truncatedTokens > 0);
  assert.deepEqual(cut.ids.slice(cut.promptLength), full.ids.slice(full.promptLength));
  assert.deepEqual(cut.ids.slice(1, cut.promptLength), full.ids.slice(full.promptLength - (cut.promptLength - 1), full.promptLength));
  assert.ok(t.decode(cut.ids.slice(0, cut.promptLength)).includes('the key fact is here.'));
});
