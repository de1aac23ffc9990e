/**
 * evaluateModel: greedy generation on ONNX Runtime for every test prompt, scored against the
 * references (exact match, both Jaccards, token F1, ROUGE-L) with held-out answer perplexity and
 * honest throughput, written to `runs/<runKey>/eval/{predictions.jsonl,metrics.json}`.
 */
import { Context } from '@temporalio/activity';
import { contentHash } from '../src/common/hash';
import { runLogger } from '../src/common/logger';
import type { EvalConfig } from '../src/config/schema';
import { loadTokenizer } from '../src/data';
import type { Summary } from '../src/metrics';
import { getDirectory, joinKey, openStore, readManifest, type ObjectRef } from '../src/store';
import type { RunResult } from '../workflows/types';
import { generateAll } from './evaluate-generate';
import { scorePredictions, summarizeEvaluation } from './evaluate-score';
import { localModelDir } from './model-source';
import { workDir } from './paths';
import { readTestItems } from './test-data';

export interface EvaluateModelInput {
  storeUrl: string;
  runKey: string;
  onnxPrefix: string;
  /** JSONL of {@link TestItem}, written by tokenizeData. */
  testData: ObjectRef;
  /** The model directory whose tokenizer decodes the predictions. */
  modelPath: string;
  eval: EvalConfig;
  /** Decode with a draft model proposing `gamma` tokens per target pass (greedy: same output). */
  speculative?: { draftOnnxPrefix: string; gamma: number };
}

export interface EvaluateModelResult {
  evalPrefix: string;
  metrics: Summary;
  throughput: NonNullable<RunResult['throughput']>;
}

/** One test item as tokenizeData writes it. */
export interface TestItem {
  id: string;
  dataset: string;
  format: string;
  promptIds: number[];
  answers: string[];
  /** Multiple-choice options, for UnifiedQA's option-matched accuracy. */
  choices?: string[];
  /** The first reference answer's tokens + EOS, for held-out perplexity. */
  answerIds: number[];
}

export async function evaluateModel(input: EvaluateModelInput): Promise<EvaluateModelResult> {
  const ctx = Context.current();
  const log = runLogger({ runKey: input.runKey, activity: 'evaluateModel' });
  const store = openStore(input.storeUrl);
  const evalPrefix = joinKey('runs', input.runKey, 'eval');
  const metricsKey = joinKey(evalPrefix, 'metrics.json');
  if (await store.head(metricsKey)) {
    const saved = JSON.parse((await store.get(metricsKey)).toString('utf8')) as EvaluateModelResult;
    if (saved.evalPrefix === evalPrefix && (await readManifest(store, input.onnxPrefix))) return saved;
  }

  // Verified first: a test split that is not the planned one fails before any model is fetched.
  const items = await readTestItems(store, input.testData);
  // Exports are immutable once committed, so a local copy keyed by prefix can be reused.
  const onnxDir = workDir('onnx', contentHash({ store: input.storeUrl, prefix: input.onnxPrefix }));
  await getDirectory(store, input.onnxPrefix, onnxDir);
  const tokenizer = await loadTokenizer(await localModelDir(input.modelPath));

  const gen = await generateAll(ctx, { input, store, items, onnxDir });
  const predictions = scorePredictions(items, gen, tokenizer);
  const { metrics, throughput } = summarizeEvaluation(predictions, gen);

  // Predictions first, metrics.json last: metrics.json is what a retry checks to skip the work.
  await store.put(joinKey(evalPrefix, 'predictions.jsonl'), predictions.map((p) => JSON.stringify(p)).join('\n') + '\n');
  const result: EvaluateModelResult = { evalPrefix, metrics, throughput };
  await store.put(metricsKey, JSON.stringify({ ...result, generatedTokens: gen.generatedTokens, wallMs: gen.wallMs, items: items.length }, null, 1));
  log.info({ em: metrics.overall.metrics.exactMatch?.estimate, tokensPerSec: throughput.tokensPerSec }, 'evaluation written');
  return result;
}
