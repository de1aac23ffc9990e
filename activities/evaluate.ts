/**
 * evaluateModel: greedy generation for every test prompt, scored against the references (exact
 * match, both Jaccards, token F1, ROUGE-L) with held-out answer perplexity and honest throughput,
 * written to `runs/<runKey>/eval/{predictions.jsonl,metrics.json}`.
 *
 * Two engines produce the generation (src/config/engine.ts): onnx (evaluate-onnx.ts: the export on
 * onnxruntime-node) and torch (evaluate-torch.ts: `python -m trainer generate` with the adapter
 * unmerged). Everything after it — scoring, metrics, throughput, the files — is shared, so the two
 * engines' results have one shape; they differ only in `engine` and `precision`.
 */
import { activityInfo, Context } from '@temporalio/activity';
import type { Logger } from 'pino';
import { loadTokenizer } from '../src/data';
import { joinKey, openStore, readManifest, type ObjectStore } from '../src/store';
import { generateOnnx } from './evaluate-onnx';
import { scorePredictions, summarizeEvaluation } from './evaluate-score';
import { generateTorch } from './evaluate-torch';
import { localModelDir, revisionOpt } from './model-source';
import { RunLogBook } from './run-log';
import { activityHeartbeat, type ActivityHeartbeat } from './transfer-heartbeat';
import { readTestItems } from './test-data';
import type { EvaluateModelInput, EvaluateModelResult } from '../src/contracts';
// Contracts live in src/contracts; re-exported so callers can keep importing them from here.
export type { TestItem, EvaluateModelInput, EvaluateModelResult } from '../src/contracts';

export async function evaluateModel(input: EvaluateModelInput): Promise<EvaluateModelResult> {
  const ctx = Context.current();
  // From the first line: a 7B export is tens of GB to fetch before the first prompt runs.
  const hb = activityHeartbeat(ctx);
  const engine = input.engine ?? 'onnx';
  const store = openStore(input.storeUrl);
  const bindings = { runKey: input.runKey, activity: 'evaluateModel', engine };
  // Logs with its run (`peftgrid logs`), under the evaluation key; uploaded once work starts.
  const book = new RunLogBook({
    store,
    key: input.runKey,
    activity: 'evaluate',
    attempt: activityInfo().attempt,
    bindings,
  });
  const log = book.log;
  const evalPrefix = joinKey('runs', input.runKey, 'eval');
  const metricsKey = joinKey(evalPrefix, 'metrics.json');
  if (await store.head(metricsKey)) {
    const saved = JSON.parse((await store.get(metricsKey)).toString('utf8')) as EvaluateModelResult;
    const sameEngine = (saved.engine ?? 'onnx') === engine;
    const inputsThere = engine === 'torch' || (input.onnxPrefix && (await readManifest(store, input.onnxPrefix)));
    if (saved.evalPrefix === evalPrefix && sameEngine && inputsThere) return saved;
  }
  book.start();
  try {
    return await evaluateAttempt(ctx, input, store, log, hb, evalPrefix, metricsKey, engine);
  } catch (err) {
    log.error({ err: (err as Error).message }, 'evaluation attempt failed');
    throw err;
  } finally {
    await book.close();
  }
}

async function evaluateAttempt(
  ctx: Context,
  input: EvaluateModelInput,
  store: ObjectStore,
  log: Logger,
  hb: ActivityHeartbeat,
  evalPrefix: string,
  metricsKey: string,
  engine: NonNullable<EvaluateModelInput['engine']>,
): Promise<EvaluateModelResult> {
  // Verified first: a test split that is not the planned one fails before any model is fetched.
  const items = await readTestItems(store, input.testData);
  const tokenizer = await loadTokenizer(
    await localModelDir(input.modelPath, {
      ...revisionOpt(input.revision),
      tokenizerOnly: true,
      heartbeat: hb.details,
    }),
  );
  const { gen, precision, precisionParity } =
    engine === 'torch'
      ? { ...(await generateTorch(ctx, input, store, items, log, hb)), precisionParity: undefined }
      : await generateOnnx(ctx, input, store, items, hb);
  const predictions = scorePredictions(items, gen, tokenizer);
  const { metrics, throughput } = summarizeEvaluation(predictions, gen);

  // Predictions first, metrics.json last: metrics.json is what a retry checks to skip the work.
  await store.put(
    joinKey(evalPrefix, 'predictions.jsonl'),
    predictions.map((p) => JSON.stringify(p)).join('\n') + '\n',
  );
  const result: EvaluateModelResult = {
    evalPrefix,
    metrics,
    throughput,
    engine,
    precision,
    ...(precisionParity ? { precisionParity } : {}),
  };
  await store.put(
    metricsKey,
    JSON.stringify(
      { ...result, generatedTokens: gen.generatedTokens, wallMs: gen.wallMs, items: items.length },
      null,
      1,
    ),
  );
  log.info(
    {
      em: metrics.overall.metrics.exactMatch?.estimate,
      tokensPerSec: throughput.tokensPerSec,
      precision,
      precisionParity,
    },
    precisionParity?.belowThreshold
      ? 'evaluation written (int8 export below its token-agreement threshold with fp32: marked in the result)'
      : 'evaluation written',
  );
  return result;
}
