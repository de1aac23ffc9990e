// tokenizeTrainingParallel must give the sequential loop's examples exactly (ids, prompt lengths,
// skips, order) whatever the thread count and chunk size; it only changes the wall time.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AnswerTooLongError,
  TokenizerConfigError,
  closeTokenizePools,
  formatExample,
  loadTokenizer,
  parseUnifiedQa,
  tokenizeForTraining,
  tokenizeTrainingParallel,
  type QaRecord,
} from '../../src/data';
import { SAMPLES, SMOLLM2 } from '../helpers/fixtures';

after(closeTokenizePools);

const have = existsSync(join(SMOLLM2, 'tokenizer.json'));
const records: QaRecord[] = (['boolq', 'arc_easy', 'squad1_1', 'narrativeqa'] as const).flatMap((d) =>
  parseUnifiedQa(readFileSync(join(SAMPLES, d, 'train.tsv'), 'utf8'), d).records.slice(0, 60),
);

async function sequential(maxLength: number) {
  const tok = await loadTokenizer(SMOLLM2);
  const examples: { ids: number[]; promptLength: number }[] = [];
  let skipped = 0;
  for (const r of records) {
    try {
      const ex = tokenizeForTraining(tok, formatExample(r, 'template', { tokenizerInfo: tok }), maxLength);
      examples.push({ ids: ex.ids, promptLength: ex.promptLength });
    } catch (err) {
      if (!(err instanceof AnswerTooLongError)) throw err;
      skipped++;
    }
  }
  return { examples, skipped };
}

test(
  'parallel output equals the sequential loop, skips and truncation included',
  { skip: !have && `${SMOLLM2} missing` },
  async () => {
    // 512 keeps everything; 4 cuts every prompt to a token or two and skips answers of 3+ tokens.
    for (const maxLength of [512, 4]) {
      const want = await sequential(maxLength);
      if (maxLength === 4)
        assert.ok(want.skipped > 0 && want.examples.length > 0, 'the short case must exercise both skip and keep');
      for (const [threads, chunkSize] of [
        [2, 7],
        [3, 256],
        [1, 1000],
      ] as const) {
        const progress: number[] = [];
        const got = await tokenizeTrainingParallel(records, {
          modelPath: SMOLLM2,
          family: 'template',
          maxLength,
          threads,
          chunkSize,
          onProgress: (n) => progress.push(n),
        });
        assert.equal(got.skipped, want.skipped, `maxLength ${maxLength}, ${threads} threads, chunk ${chunkSize}`);
        assert.deepEqual(
          got.examples.map((e) => ({ ids: Array.from(e.ids), promptLength: e.promptLength })),
          want.examples,
        );
        assert.equal(progress[progress.length - 1], records.length);
      }
    }
  },
);

test(
  'a bad model directory rejects with TokenizerConfigError; the pool keeps working',
  { skip: !have && `${SMOLLM2} missing` },
  async () => {
    await assert.rejects(
      tokenizeTrainingParallel(records, {
        modelPath: join(SAMPLES, 'boolq'),
        family: 'template',
        maxLength: 64,
        threads: 2,
      }),
      (err: Error) => err instanceof TokenizerConfigError || /tokenizer\.json/.test(err.message),
    );
    const empty = await tokenizeTrainingParallel([], { modelPath: SMOLLM2, family: 'template', maxLength: 64 });
    assert.deepEqual(empty, { examples: [], skipped: 0 });
    const ok = await tokenizeTrainingParallel(records.slice(0, 5), {
      modelPath: SMOLLM2,
      family: 'template',
      maxLength: 512,
      threads: 2,
    });
    assert.equal(ok.examples.length, 5);
  },
);

test(
  'concurrent calls share the pool without mixing their results; abort rejects',
  { skip: !have && `${SMOLLM2} missing` },
  async () => {
    const want = await sequential(512);
    const reversed = [...records].reverse();
    const [a, b] = await Promise.all([
      tokenizeTrainingParallel(records, {
        modelPath: SMOLLM2,
        family: 'template',
        maxLength: 512,
        threads: 2,
        chunkSize: 16,
      }),
      tokenizeTrainingParallel(reversed, {
        modelPath: SMOLLM2,
        family: 'template',
        maxLength: 512,
        threads: 2,
        chunkSize: 16,
      }),
    ]);
    const plain = (r: typeof a) => r.examples.map((e) => ({ ids: Array.from(e.ids), promptLength: e.promptLength }));
    assert.deepEqual(plain(a), want.examples);
    assert.deepEqual(plain(b), [...want.examples].reverse());
    const ctl = new AbortController();
    const pending = tokenizeTrainingParallel(records, {
      modelPath: SMOLLM2,
      family: 'template',
      maxLength: 512,
      threads: 2,
      chunkSize: 1,
      signal: ctl.signal,
    });
    ctl.abort(new Error('cancelled by test'));
    await assert.rejects(pending, /cancelled by test/);
  },
);
