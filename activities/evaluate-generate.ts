/**
 * evaluateModel's generate step: greedy (or speculative) decoding of every test prompt on ONNX
 * Runtime, plus each reference answer's log-probability for held-out perplexity (from the same
 * prefill as the generation: one prefill per item), in length-bucketed chunks that heartbeat. The only part of the evaluation that touches the engine.
 */
import type { Context } from '@temporalio/activity';
import { FailureType } from '../src/contracts/failures';
import { failure } from './failure';
import { contentHash } from '../src/common/hash';
import {
  checkDraftPair,
  DraftMismatchError,
  EngineError,
  EngineHost,
  engineRunInFromEnv,
  generate,
  generatePromptLookup,
  generateSpeculative,
  inInputOrder,
  lengthBuckets,
  loadModel,
  scoreContinuation,
  type BatchTiming,
  type EngineModel,
  type GeneratedSequence,
  type SpeculativeResult,
} from '../src/engine';
import { getDirectory, type ObjectStore, type TransferOptions } from '../src/store';
import type { EvaluateModelInput, TestItem } from '../src/contracts';
import { workDir } from './paths';

/** Prompts per generate() call: small enough to heartbeat often, large enough to batch well. */
const CHUNK = 64;

/** Speculative decoding against target-only greedy decoding, measured on the first chunk. */
export interface SpeculativeThroughput {
  acceptanceRate: number | null;
  speedup: number;
  targetOnlyTokensPerSec: number;
  /** Generated tokens per target forward pass over the whole evaluation (1 without speculation). */
  tokensPerTargetPass?: number;
}

/** What the engine produced: one sequence and one answer score per test item, in item order. */
export interface Generation {
  sequences: GeneratedSequence[];
  batches: BatchTiming[];
  generatedTokens: number;
  wallMs: number;
  scores: { sumLogProb: number; tokenCount: number; error?: string }[];
  speculative?: SpeculativeThroughput;
}

export interface GenerateAllInput {
  input: EvaluateModelInput;
  store: ObjectStore;
  items: TestItem[];
  /** The local copy of `input.onnxPrefix`. */
  onnxDir: string;
  /** Progress of the draft's download (speculative pairs): heartbeats its bytes. */
  transfer?: TransferOptions;
}

/**
 * Runs the engine over every item. Cancellation stops the engine process mid-pass and rethrows the
 * cancellation; a model that cannot load is non-retryable `InvalidModel`, a draft that does not fit
 * its target `InvalidSpec`.
 */
export async function generateAll(
  ctx: Context,
  { input, store, items, onnxDir, transfer }: GenerateAllInput,
): Promise<Generation> {
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
  let speculative: SpeculativeThroughput | undefined;
  let targetPasses = 0;
  let speculativeTokens = 0;
  const sequences: GeneratedSequence[] = [];
  const batches: BatchTiming[] = [];
  let generatedTokens = 0;
  let wallMs = 0;
  const scores: { sumLogProb: number; tokenCount: number; error?: string }[] = [];
  // Between chunks progress is reported; within one (a large model's prefill can take minutes on
  // CPU) this keeps proving the worker is alive. ORT runs in the engine process, so the timer fires.
  let done = 0;
  let progress = { done, total: items.length };
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
    const draftOnnxPrefix = input.speculative?.draftOnnxPrefix;
    const lookup = input.speculative?.promptLookup;
    if (input.speculative && !draftOnnxPrefix && !lookup)
      throw failure(
        FailureType.InvalidSpec,
        'evaluateModel: a speculative onnx evaluation needs draftOnnxPrefix or promptLookup',
      );
    if (draftOnnxPrefix) {
      const draftDir = workDir('onnx', contentHash({ store: input.storeUrl, prefix: draftOnnxPrefix }));
      await getDirectory(store, draftOnnxPrefix, draftDir, transfer);
      draft = await loadModel(draftDir, { intraOpNumThreads: input.eval.threads ?? 0, ...placement });
      try {
        await checkDraftPair(model!, draft);
      } catch (err) {
        if (err instanceof DraftMismatchError) throw failure(FailureType.InvalidSpec, err.message);
        throw err;
      }
    }
    // Plain generation: chunks are length buckets over all items (results put back in item order)
    // and each answer is scored from its generation's own prefill. Speculative decoding keeps
    // item order (its speedup is measured on the first chunk: a sample, not the shortest prompts)
    // and scores in a pass of its own.
    const longPrompt = input.eval.longPrompt ? { longPrompt: input.eval.longPrompt } : {};
    const speculating = Boolean(draft || lookup);
    const chunks = speculating
      ? Array.from({ length: Math.ceil(items.length / CHUNK) }, (_, k) =>
          items.slice(k * CHUNK, (k + 1) * CHUNK).map((_, j) => k * CHUNK + j),
        )
      : lengthBuckets(
          items.map((t) => t.promptIds.length),
          CHUNK,
        );
    const chunkSequences: GeneratedSequence[][] = [];
    const chunkScores: Generation['scores'][] = [];
    for (const [k, indices] of chunks.entries()) {
      const chunk = indices.map((i) => items[i]!);
      const prompts = chunk.map((t) => t.promptIds);
      const answers = chunk.map((t) => t.answerIds);
      const res = draft
        ? await generateSpeculative(model!, draft, prompts, {
            maxNewTokens: input.eval.maxNewTokens,
            gamma: input.speculative!.gamma,
            ...longPrompt,
          })
        : lookup
          ? await generatePromptLookup(model!, prompts, {
              maxNewTokens: input.eval.maxNewTokens,
              gamma: input.speculative!.gamma,
              maxNgram: lookup.maxNgram,
              // the outputs of the earlier chunks: a test set's answers share phrasing
              history: chunkSequences.flat().map((q) => q.tokens),
              ...longPrompt,
            })
          : await generate(model!, prompts, {
              maxNewTokens: input.eval.maxNewTokens,
              batchSize: input.eval.batchSize,
              scoreContinuations: answers,
              ...longPrompt,
            });
      if (speculating && 'targetPasses' in res.stats) {
        targetPasses += res.stats.targetPasses;
        speculativeTokens += res.stats.generatedTokens;
      }
      if (speculating && k === 0) {
        // Speedup over target-only greedy decoding, measured on the same prompts in the same process.
        const base = await generate(model!, prompts, { maxNewTokens: input.eval.maxNewTokens, batchSize: 1 });
        const spec = res.stats as SpeculativeResult['stats'];
        speculative = {
          acceptanceRate: spec.acceptanceRate,
          targetOnlyTokensPerSec: base.stats.tokensPerSecond,
          speedup: spec.tokensPerSecond / base.stats.tokensPerSecond,
        };
      }
      chunkSequences.push(res.sequences);
      if ('batches' in res.stats) batches.push(...res.stats.batches);
      generatedTokens += res.stats.generatedTokens;
      wallMs += res.stats.wallMs;
      chunkScores.push(
        'scores' in res && res.scores
          ? res.scores
          : await scoreContinuation(model!, prompts, answers, { batchSize: input.eval.batchSize }),
      );
      done += chunk.length;
      progress = { done, total: items.length };
      ctx.heartbeat(progress);
    }
    if (speculative && targetPasses > 0) speculative.tokensPerTargetPass = speculativeTokens / targetPasses;
    sequences.push(...inInputOrder(chunks, chunkSequences));
    scores.push(...inInputOrder(chunks, chunkScores));
  } catch (err) {
    rethrowIfCancelled(err);
  } finally {
    clearInterval(beat);
    ctx.cancellationSignal.removeEventListener('abort', stopOnCancel);
    await model?.release();
    await draft?.release();
    await host?.close();
  }
  return { sequences, batches, generatedTokens, wallMs, scores, ...(speculative ? { speculative } : {}) };
}
