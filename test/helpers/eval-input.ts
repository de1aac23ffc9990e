/**
 * An evaluateModel input over an exported model already on disk: the export committed to a
 * file:// store, plus a test split of synthetic token-id prompts (the tokenizer only decodes the
 * predictions, so any ids below the vocabulary size do). Shared by the evaluate activity test and
 * bench/workflow-task-latency.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EvaluateModelInput, TestItem } from '../../activities/evaluate';
import { joinKey, openStore, putDirectory } from '../../src/store';

export interface EvalStageOptions {
  /** Scratch root: the store lives in `<root>/store`. */
  root: string;
  /** An export directory (model.onnx + engine.json). */
  onnxDir: string;
  /** HF directory whose tokenizer decodes the predictions. */
  tokenizerDir: string;
  items: number;
  promptLength: number;
  runKey: string;
  maxNewTokens: number;
  batchSize: number;
  threads?: number;
}

export async function stageEvaluation(o: EvalStageOptions): Promise<EvaluateModelInput> {
  const storeUrl = `file://${join(o.root, 'store')}`;
  const store = openStore(storeUrl);
  const onnxPrefix = joinKey('models', 'eval-input', 'onnx');
  await putDirectory(store, onnxPrefix, o.onnxDir, {});
  const { vocabSize, eosTokenIds } = JSON.parse(readFileSync(join(o.onnxDir, 'engine.json'), 'utf8')) as {
    vocabSize: number;
    eosTokenIds: number[];
  };
  // Ids spread over the vocabulary, skipping the special ids at the bottom; different per item.
  const ids = (item: number, n: number) =>
    Array.from({ length: n }, (_, i) => 20 + ((item * 7919 + i * 104729) % (vocabSize - 20)));
  const items: TestItem[] = Array.from({ length: o.items }, (_, i) => ({
    id: `item-${i}`,
    dataset: 'synthetic',
    format: 'extractive',
    promptIds: ids(i, o.promptLength - (i % 7)),
    answers: ['an answer'],
    answerIds: [...ids(i + 1000, 3), eosTokenIds[0]!],
  }));
  const testData = await store.put(
    joinKey('datasets', 'eval-input', `${o.runKey}.jsonl`),
    items.map((t) => JSON.stringify(t)).join('\n') + '\n',
  );
  return {
    storeUrl,
    runKey: o.runKey,
    onnxPrefix,
    testData,
    modelPath: o.tokenizerDir,
    eval: {
      maxNewTokens: o.maxNewTokens,
      batchSize: o.batchSize,
      engine: 'onnx',
      ...(o.threads ? { threads: o.threads } : {}),
    },
  };
}
