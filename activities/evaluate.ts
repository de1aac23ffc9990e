/**
 * evaluateModel: greedy generation on ONNX Runtime for every test prompt, scored against the
 * references (exact match, both Jaccards, token F1, ROUGE-L) with held-out answer perplexity and
 * honest throughput, written to `runs/<runKey>/eval/{predictions.jsonl,metrics.json}`.
 */
import { Context } from '@temporalio/activity';
import { FailureType } from '../src/contracts/failures';
import { failure } from './failure';
import { contentHash } from '../src/common/hash';
import { runLogger } from '../src/common/logger';
import type { EvalConfig } from '../src/config/schema';
import { loadTokenizer } from '../src/data';
import {
  checkDraftPair, DraftMismatchError, EngineError, EngineHost, engineRunInFromEnv, generate, generateSpeculative, loadModel, scoreContinuation,
  type BatchTiming, type EngineModel, type GeneratedSequence, type SpeculativeResult,
} from '../src/engine';
import { percentile } from '../src/engine/stats';
import { exactMatch, jaccardSet, jaccardStudy, officialScore, rougeL, summarize, tokenF1, type EvalItem, type Summary } from '../src/metrics';
import { getDirectory, joinKey, openStore, readManifest, type ObjectRef } from '../src/store';
import type { RunResult } from '../workflows/types';
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

/** Prompts per generate() call: small enough to heartbeat often, large enough to batch well. */
const CHUNK = 64;

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

  // ONNX Runtime runs in an engine process that owns target and draft, so heartbeats and this
  // worker's workflow tasks keep flowing during a pass; cancellation kills it mid-pass.
  // PEFTGRID_ENGINE_RUN_IN=main keeps the old on-thread path (bench/workflow-task-latency.ts).
  const host = engineRunInFromEnv() === 'process' ? new EngineHost() : undefined;
  const placement = host ? { host } : { runIn: 'main' as const };
  const stopOnCancel = () => void host?.close();
  ctx.cancellationSignal.addEventListener('abort', stopOnCancel, { once: true });
  const rethrowIfCancelled = (err: unknown): never => {
    if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason ?? err;
    throw err;
  };
  let model: EngineModel | undefined;
  let draft: EngineModel | undefined;
  let speculative: { acceptanceRate: number | null; speedup: number; targetOnlyTokensPerSec: number } | undefined;
  const sequences: GeneratedSequence[] = [];
  const batches: BatchTiming[] = [];
  let generatedTokens = 0;
  let wallMs = 0;
  const scores: { sumLogProb: number; tokenCount: number; error?: string }[] = [];
  // Between chunks progress is reported; within one (a large model's prefill can take minutes on
  // CPU) this keeps proving the worker is alive. ORT runs in the engine process, so the timer fires.
  let progress = { done: 0, total: items.length };
  const beat = setInterval(() => ctx.heartbeat(progress), 10_000);
  try {
    try {
      model = await loadModel(onnxDir, { intraOpNumThreads: input.eval.threads ?? 0, ...placement });
    } catch (err) {
      if (err instanceof EngineError && !ctx.cancellationSignal.aborted) {
        throw failure(FailureType.InvalidModel, `cannot load the exported model: ${err.message}`);
      }
      rethrowIfCancelled(err);
    }
    if (input.speculative) {
      const draftDir = workDir('onnx', contentHash({ store: input.storeUrl, prefix: input.speculative.draftOnnxPrefix }));
      await getDirectory(store, input.speculative.draftOnnxPrefix, draftDir);
      draft = await loadModel(draftDir, { intraOpNumThreads: input.eval.threads ?? 0, ...placement });
      try {
        await checkDraftPair(model!, draft);
      } catch (err) {
        if (err instanceof DraftMismatchError) throw failure(FailureType.InvalidSpec, err.message);
        throw err;
      }
    }
    for (let i = 0; i < items.length; i += CHUNK) {
      const chunk = items.slice(i, i + CHUNK);
      const prompts = chunk.map((t) => t.promptIds);
      const res = draft
        ? await generateSpeculative(model!, draft, prompts, { maxNewTokens: input.eval.maxNewTokens, gamma: input.speculative!.gamma })
        : await generate(model!, prompts, { maxNewTokens: input.eval.maxNewTokens, batchSize: input.eval.batchSize });
      if (draft && i === 0) {
        // Speedup over target-only greedy decoding, measured on the same prompts in the same process.
        const base = await generate(model!, prompts, { maxNewTokens: input.eval.maxNewTokens, batchSize: 1 });
        const spec = res.stats as SpeculativeResult['stats'];
        speculative = { acceptanceRate: spec.acceptanceRate, targetOnlyTokensPerSec: base.stats.tokensPerSecond, speedup: spec.tokensPerSecond / base.stats.tokensPerSecond };
      }
      sequences.push(...res.sequences);
      if ('batches' in res.stats) batches.push(...res.stats.batches);
      generatedTokens += res.stats.generatedTokens;
      wallMs += res.stats.wallMs;
      scores.push(...(await scoreContinuation(model!, chunk.map((t) => t.promptIds), chunk.map((t) => t.answerIds), { batchSize: input.eval.batchSize })));
      progress = { done: Math.min(items.length, i + CHUNK), total: items.length };
      ctx.heartbeat(progress);
    }
  } catch (err) {
    rethrowIfCancelled(err);
  } finally {
    clearInterval(beat);
    ctx.cancellationSignal.removeEventListener('abort', stopOnCancel);
    await model?.release();
    await draft?.release();
    await host?.close();
  }

  const predictions = items.map((item, i) => {
    const seq = sequences[i]!;
    const prediction = tokenizer.decode(seq.tokens, { skipSpecialTokens: true }).trim();
    const s = scores[i]!;
    return {
      id: item.id, dataset: item.dataset, format: item.format, prediction, references: item.answers,
      scores: {
        exactMatch: exactMatch(prediction, item.answers),
        jaccardStudy: jaccardStudy(prediction, item.answers),
        jaccardSet: jaccardSet(prediction, item.answers),
        tokenF1: tokenF1(prediction, item.answers),
        rougeL: rougeL(prediction, item.answers),
        official: officialScore(item.format, prediction, item.answers, item.choices),
      },
      tokens: seq.generatedTokens, finishReason: seq.finishReason, hitLimit: seq.hitLimit, truncated: seq.truncated,
      ...(seq.error ? { error: seq.error } : {}),
      sumLogProb: s.sumLogProb, answerTokens: s.tokenCount,
    };
  });
  const evalItems: EvalItem[] = predictions.map((p) => ({ dataset: p.dataset, scores: p.scores, sumLogProb: p.sumLogProb, tokenCount: p.answerTokens }));
  const metrics = summarize(evalItems, { seed: 42 });
  const ran = sequences.filter((s) => s.finishReason !== 'error');
  const throughput = {
    tokensPerSec: wallMs > 0 ? generatedTokens / (wallMs / 1000) : 0,
    ttftMsP50: percentile(batches.map((b) => b.ttftMs), 50) ?? 0,
    tokenLatencyMsP50: percentile(batches.flatMap((b) => b.stepMs), 50) ?? 0,
    tokenLatencyMsP95: percentile(batches.flatMap((b) => b.stepMs), 95) ?? 0,
    hitLimitFraction: ran.length ? ran.filter((s) => s.hitLimit).length / ran.length : 0,
    ...(speculative ?? {}),
  };
  await store.put(joinKey(evalPrefix, 'predictions.jsonl'), predictions.map((p) => JSON.stringify(p)).join('\n') + '\n');
  const result: EvaluateModelResult = { evalPrefix, metrics, throughput };
  await store.put(metricsKey, JSON.stringify({ ...result, generatedTokens, wallMs, items: items.length }, null, 1));
  log.info({ em: metrics.overall.metrics.exactMatch?.estimate, tokensPerSec: throughput.tokensPerSec }, 'evaluation written');
  return result;
}

