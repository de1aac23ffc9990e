import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  SAMPLES_DIR,
  answerFrame,
  createShotPool,
  drawShots,
  formatExample,
  parseUnifiedQa,
  questionText,
  type QaRecord,
  type TokenizerInfo,
} from '../../src/data';

const record: QaRecord = {
  id: 'arc_easy-0',
  dataset: 'arc_easy',
  format: 'multiple_choice',
  question: 'which of these is a fruit?',
  choices: ['pear', 'hammer', 'june'],
  answers: ['pear'],
};
const withContext: QaRecord = {
  id: 'squad1_1-0',
  dataset: 'squad1_1',
  format: 'extractive',
  question: 'where was anna born?',
  context: 'anna was born in oslo.',
  answers: ['oslo', 'in oslo'],
};
const gemmaTok: TokenizerInfo = { bosToken: '<bos>', eosToken: '<eos>', chatTemplate: null };
const llamaTok: TokenizerInfo = { bosToken: '<s>', eosToken: '</s>', chatTemplate: null };

const train = ['arc_easy', 'squad1_1'].flatMap(
  (d) => parseUnifiedQa(readFileSync(join(SAMPLES_DIR, d, 'train.tsv'), 'utf8'), d as 'arc_easy' | 'squad1_1').records,
);

test('question text: question, options on one line, passage', () => {
  assert.equal(questionText(record), 'which of these is a fruit?\n(a) pear (b) hammer (c) june');
  assert.equal(questionText(withContext), 'where was anna born?\nanna was born in oslo.');
});

test('zero-shot formats of the study, with the BOS written once as text', () => {
  const body = 'Answer the following question.\nwhere was anna born?\nanna was born in oslo.';
  assert.deepEqual(formatExample(withContext, 'gemma', { tokenizerInfo: gemmaTok }), {
    prompt: `<bos><start_of_turn>user\n${body}<end_of_turn>\n<start_of_turn>model\n`,
    answer: 'oslo<end_of_turn>',
  });
  assert.deepEqual(formatExample(withContext, 'llama', { tokenizerInfo: llamaTok }), {
    prompt: `<s>Input: ${body}\nOutput:`,
    answer: ' oslo',
  });
  assert.deepEqual(formatExample(withContext, 'mistral', { tokenizerInfo: llamaTok }), {
    prompt: `<s>[INST] ${body} [/INST]`,
    answer: ' oslo',
  });
  const noBos = formatExample(withContext, 'llama', { tokenizerInfo: { ...llamaTok, bosToken: null } });
  assert.equal(noBos.prompt, `Input: ${body}\nOutput:`);
});

test('k-shot: the instruction heads the first example; examples are earlier exchanges in the model format', () => {
  const pool = createShotPool(train, 'train');
  const { prompt, answer } = formatExample(withContext, 'llama', {
    tokenizerInfo: llamaTok,
    shots: { pool, k: 2, seed: 3 },
  });
  const shots = drawShots(pool, withContext, 2, 3);
  assert.equal(
    prompt,
    [
      `<s>Input: Answer the following question. Follow these examples:\n${questionText(shots[0]!)}\nOutput: ${shots[0]!.answers[0]}\n`,
      `Input: ${questionText(shots[1]!)}\nOutput: ${shots[1]!.answers[0]}\n`,
      `Input: ${questionText(withContext)}\nOutput:`,
    ].join(''),
  );
  assert.equal(answer, ' oslo');
  assert.equal(prompt.split('<s>').length, 2, 'one BOS however many examples');
  const mistral = formatExample(withContext, 'mistral', {
    tokenizerInfo: llamaTok,
    shots: { pool, k: 2, seed: 3 },
  }).prompt;
  assert.ok(
    mistral.startsWith(
      `<s>[INST] Answer the following question. Follow these examples:\n${questionText(shots[0]!)} [/INST] ${shots[0]!.answers[0]}</s>[INST] `,
    ),
  );
  const gemma = formatExample(withContext, 'gemma', { tokenizerInfo: gemmaTok, shots: { pool, k: 1, seed: 3 } }).prompt;
  assert.ok(gemma.includes(`<start_of_turn>model\n${shots[0]!.answers[0]}<end_of_turn>\n<start_of_turn>user\n`));
});

test('k-shot examples come from train only, deterministically per record, never the record itself', () => {
  assert.throws(() => createShotPool(train, 'test'), /must come from the train split, got "test"/);
  assert.throws(() => createShotPool(train, 'dev'), TypeError);
  const pool = createShotPool(train, 'train');
  const a = drawShots(pool, withContext, 5, 11);
  assert.deepEqual(drawShots(pool, withContext, 5, 11), a);
  assert.notDeepEqual(drawShots(pool, withContext, 5, 12), a);
  assert.equal(new Set(a.map((r) => r.id)).size, 5);
  const target = train[0]!;
  for (let seed = 0; seed < 50; seed++) assert.ok(!drawShots(pool, target, 3, seed).some((r) => r.id === target.id));
  const tiny = createShotPool(train.slice(0, 3), 'train');
  assert.throws(() => drawShots(tiny, train[0]!, 3, 1), /pool has 2/);
  assert.deepEqual(drawShots(pool, target, 0, 1), []);
});

const CHATML =
  "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const MISTRAL =
  "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] + ' [/INST]' }}{% else %}{{ ' ' + m['content'] + eos_token }}{% endif %}{% endfor %}";
const GEMMA =
  "{{ bos_token }}{% for m in messages %}{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}{{ '<start_of_turn>' + role + '\\n' + m['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}";

test('template family renders the tokenizer chat template, answer closed the way the template closes a turn', () => {
  const chatml = formatExample(withContext, 'template', {
    tokenizerInfo: { bosToken: null, eosToken: '<|im_end|>', chatTemplate: CHATML },
  });
  assert.equal(
    chatml.prompt,
    '<|im_start|>user\nAnswer the following question.\nwhere was anna born?\nanna was born in oslo.<|im_end|>\n<|im_start|>assistant\n',
  );
  assert.equal(chatml.answer, 'oslo', 'the EOS (<|im_end|>) is appended as an id, not written as text');
  const chatmlOtherEos = formatExample(withContext, 'template', {
    tokenizerInfo: { bosToken: null, eosToken: '<|endoftext|>', chatTemplate: CHATML },
  });
  assert.equal(chatmlOtherEos.answer, 'oslo<|im_end|>');

  const mistral = formatExample(withContext, 'template', { tokenizerInfo: { ...llamaTok, chatTemplate: MISTRAL } });
  assert.equal(mistral.prompt, formatExample(withContext, 'mistral', { tokenizerInfo: llamaTok }).prompt);
  assert.equal(mistral.answer, ' oslo');
  assert.deepEqual(answerFrame(GEMMA, gemmaTok), { infix: '', suffix: '<end_of_turn>' });
  const gemma = formatExample(withContext, 'template', { tokenizerInfo: { ...gemmaTok, chatTemplate: GEMMA } });
  assert.deepEqual(gemma, formatExample(withContext, 'gemma', { tokenizerInfo: gemmaTok }));

  const pool = createShotPool(train, 'train');
  const kshot = formatExample(withContext, 'template', {
    tokenizerInfo: { ...llamaTok, chatTemplate: MISTRAL },
    shots: { pool, k: 2, seed: 3 },
  });
  assert.equal(
    kshot.prompt,
    formatExample(withContext, 'mistral', { tokenizerInfo: llamaTok, shots: { pool, k: 2, seed: 3 } }).prompt,
  );
  assert.throws(() => formatExample(withContext, 'template', { tokenizerInfo: llamaTok }), /needs a chat template/);
});
