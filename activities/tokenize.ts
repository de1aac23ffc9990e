/**
 * tokenizeData: prepared records → the model family's chat format → token ids, in TypeScript from
 * the model's tokenizer.json. Train: a `pgtok` shard (docs/contracts.md §1) with manifest; test: a
 * JSONL of prompt ids (zero- or k-shot, examples drawn from train only) plus reference answers.
 * Keys hash every input (data content, tokenizer, format, lengths, shots), so runs that share them share
 * one tokenization and it is done once.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { FailureType } from '../src/contracts/failures';
import { failure } from './failure';
import { contentHash } from '../src/common/hash';
import { runLogger } from '../src/common/logger';
import {
  createShotPool,
  formatExample,
  loadTokenizer,
  pgtokManifest,
  testItem,
  tokenizeTrainingParallel,
  TokenizerConfigError,
  writePgtokFile,
  type ModelFamily,
  type QaRecord,
  type TokenizerWrapper,
} from '../src/data';
import { joinKey, openStore, type ObjectRef, type ObjectStore } from '../src/store';
import { localModelDir, revisionOpt } from './model-source';
import { workDir } from './paths';
import { activityHeartbeat } from './transfer-heartbeat';
import type { TestItem, TokenizeDataInput, TokenizeDataResult } from '../src/contracts';
// Contracts live in src/contracts; re-exported so callers can keep importing them from here.
export type { TokenizeDataInput, TokenizeDataResult } from '../src/contracts';

/** Bump when formatting or tokenization changes output for the same inputs. */
const TOKENIZE_VERSION = 2; // 2: test items carry multiple-choice options

async function readRecords(store: ObjectStore, ref: ObjectRef): Promise<QaRecord[]> {
  return (await store.get(ref.key))
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as QaRecord);
}

async function readJson<T>(store: ObjectStore, key: string): Promise<T | null> {
  if (!(await store.head(key))) return null;
  return JSON.parse((await store.get(key)).toString('utf8')) as T;
}

export async function tokenizeData(input: TokenizeDataInput): Promise<TokenizeDataResult> {
  const ctx = Context.current();
  const hb = activityHeartbeat(ctx);
  const store = openStore(input.storeUrl);
  const family = input.family as ModelFamily;
  const modelDir = await localModelDir(input.modelPath, {
    ...revisionOpt(input.revision),
    tokenizerOnly: true, // tokenizing needs no weights
    heartbeat: hb.details,
  });
  let tok: TokenizerWrapper;
  try {
    tok = await loadTokenizer(modelDir);
  } catch (err) {
    if (err instanceof TokenizerConfigError || (err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw failure(
        FailureType.InvalidModel,
        `cannot load the tokenizer of ${input.modelPath}: ${(err as Error).message}`,
      );
    }
    throw err;
  }
  // The prepared splits' sha256, not the data config's hash: an edited source file gives new
  // prepared bytes, hence a new tokenization, hence new training and evaluation keys.
  const hash = contentHash({
    v: TOKENIZE_VERSION,
    data: [input.prepared.train.sha256, input.prepared.test.sha256],
    tokenizer: tok.sha256,
    template: tok.chatTemplate,
    family,
    maxLength: input.maxLength,
    seed: input.seed,
  });
  const prefix = joinKey('datasets', 'tokenized', hash);
  const log = runLogger({ activity: 'tokenizeData', tokenized: prefix, shots: input.shots });
  const trainManifestKey = joinKey(prefix, 'manifest.json');
  const testKey = joinKey(prefix, `test-${input.shots}shot.jsonl`);
  const testMetaKey = `${testKey}.meta.json`;

  const train = await readRecords(store, input.prepared.train);
  let skipped = 0;
  let trainRef: ObjectRef | undefined;
  if (input.withTrain) {
    const existing = await readJson<{ splits: { train: { sha256: string; bytes: number } }; skipped: number }>(
      store,
      trainManifestKey,
    );
    if (existing) {
      trainRef = {
        key: joinKey(prefix, 'train.pgtok'),
        sha256: existing.splits.train.sha256,
        bytes: existing.splits.train.bytes,
      };
      skipped += existing.skipped;
    } else {
      // Per attempt, not per hash: two slots tokenizing the same content (five methods of one model
      // in one grid) wrote one local file at once and uploaded a corrupt shard, and one's rm deleted
      // the other's. Each writes its own; both upload the same bytes under the content key.
      const scratch = workDir('tokenize', `${hash}-${process.pid}-${randomUUID().slice(0, 8)}`);
      await mkdir(scratch, { recursive: true });
      const file = join(scratch, 'train.pgtok');
      // One worker thread per core; same examples, same order, same skip rule as a sequential loop.
      const { examples, skipped: trainSkipped } = await tokenizeTrainingParallel(train, {
        modelPath: modelDir,
        family,
        maxLength: input.maxLength,
        onProgress: (done) => ctx.heartbeat({ split: 'train', done }),
        signal: ctx.cancellationSignal,
      });
      const info = await writePgtokFile(file, examples);
      if (info.examples === 0)
        throw failure(FailureType.InvalidData, `no training example fits maxLength ${input.maxLength}`);
      trainRef = await store.putFile(joinKey(prefix, 'train.pgtok'), file, hb.transfer('upload-data'));
      const manifest = {
        ...pgtokManifest(tok, input.maxLength, { train: { file: 'train.pgtok', ...info } }),
        skipped: trainSkipped,
        family,
      };
      await store.put(trainManifestKey, JSON.stringify(manifest, null, 1));
      await rm(scratch, { recursive: true, force: true });
      skipped += trainSkipped;
      log.info({ examples: info.examples, tokens: info.tokens, skipped: trainSkipped }, 'training shard written');
    }
  }

  const testMeta = await readJson<ObjectRef>(store, testMetaKey);
  let testRef: ObjectRef;
  if (testMeta) testRef = testMeta;
  else {
    const test = await readRecords(store, input.prepared.test);
    // Examples come from the train split only (createShotPool refuses any other split).
    const pool = input.shots > 0 ? createShotPool(train, 'train') : undefined;
    const items: TestItem[] = test.map((record) =>
      testItem(
        tok,
        record,
        formatExample(record, family, {
          tokenizerInfo: tok,
          ...(pool ? { shots: { pool, k: input.shots, seed: input.seed } } : {}),
        }),
      ),
    );
    testRef = await store.put(testKey, items.map((t) => JSON.stringify(t)).join('\n') + '\n');
    await store.put(testMetaKey, JSON.stringify(testRef));
    log.info({ items: items.length }, 'test prompts written');
  }
  return { ...(trainRef ? { train: trainRef } : {}), test: testRef, skipped };
}
