/**
 * evaluateModel: greedy generation on ONNX Runtime for every test prompt, scored against the
 * references (exact match, both Jaccards, token F1, ROUGE-L) with held-out answer perplexity and
 * honest throughput, written to `runs/<runKey>/eval/{predictions.jsonl,metrics.json}`.
 */
import { Context } from '@temporalio/activity';
import { contentHash } from '../src/common/hash';
import { runLogger } from '../src/common/logger';
import { loadTokenizer } from '../src/data';
import { getDirectory, joinKey, openStore, readManifest } from '../src/store';
import { generateAll } from './evaluate-generate';
import { scorePredictions, summarizeEvaluation } from './evaluate-score';
import { localModelDir, revisionOpt } from './model-source';
import { workDir } from './paths';
import { readTestItems } from './test-data';
import type { EvaluateModelInput, EvaluateModelResult } from '../src/contracts';
// Contracts live in src/contracts; re-exported so callers can keep importing them from here.
export type { TestItem, EvaluateModelInput, EvaluateModelResult } from '../src/contracts';

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
  const tokenizer = await loadTokenizer(
    await localModelDir(input.modelPath, {
      ...revisionOpt(input.revision),
      tokenizerOnly: true,
      heartbeat: (p) => ctx.heartbeat(p),
    }),
  );

  const gen = await generateAll(ctx, { input, store, items, onnxDir });
  const predictions = scorePredictions(items, gen, tokenizer);
  const { metrics, throughput } = summarizeEvaluation(predictions, gen);

  // Predictions first, metrics.json last: metrics.json is what a retry checks to skip the work.
  await store.put(
    joinKey(evalPrefix, 'predictions.jsonl'),
    predictions.map((p) => JSON.stringify(p)).join('\n') + '\n',
  );
  const result: EvaluateModelResult = { evalPrefix, metrics, throughput };
  await store.put(
    metricsKey,
    JSON.stringify(
      { ...result, generatedTokens: gen.generatedTokens, wallMs: gen.wallMs, items: items.length },
      null,
      1,
    ),
  );
  log.info(
    { em: metrics.overall.metrics.exactMatch?.estimate, tokensPerSec: throughput.tokensPerSec },
    'evaluation written',
  );
  return result;
}
