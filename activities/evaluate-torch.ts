/**
 * evaluateModel's torch engine: `python -m trainer generate` (trainer/generate.py) on the base model
 * with the committed adapter unmerged, fed the same tokenized items the onnx engine gets. Its
 * `sequence`/`batch`/`score`/`generated` events become the same Generation the onnx engine returns,
 * so scoring, metrics and throughput are computed by the same code for both engines.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { activityInfo, type Context } from '@temporalio/activity';
import type { Logger } from 'pino';
import { FAILURES, FailureType, TRAINER_EXIT } from '../src/contracts/failures';
import type { TrainerEventOf } from '../src/contracts/trainer-events';
import type { BatchTiming, GeneratedSequence } from '../src/engine';
import { getDirectory, type ObjectStore } from '../src/store';
import type { EvaluateModelInput, TestItem } from '../src/contracts';
import type { EngineGeneration } from './evaluate-onnx';
import type { Generation } from './evaluate-generate';
import { failure } from './failure';
import { localModelDir, revisionOpt } from './model-source';
import { workDir } from './paths';
import { runTrainer, type TrainerEvent } from './trainer-process';
import type { ActivityHeartbeat } from './transfer-heartbeat';

/** What the events add up to; exported for the unit test of the reducer. */
export interface TorchOutcome {
  sequences: (GeneratedSequence | undefined)[];
  scores: (Generation['scores'][number] | undefined)[];
  batches: BatchTiming[];
  totals?: TrainerEventOf<'generated'>;
  precision?: string;
}

/** Folds one trainer event into the outcome (pure). */
export function reduceTorchEvent(o: TorchOutcome, ev: TrainerEvent): TorchOutcome {
  switch (ev.event) {
    case 'generating':
      return { ...o, precision: ev.precision };
    case 'sequence':
      o.sequences[ev.index] = {
        tokens: ev.tokens,
        finishReason: ev.finishReason as GeneratedSequence['finishReason'],
        hitLimit: ev.finishReason === 'length',
        truncated: ev.truncated,
        generatedTokens: ev.generatedTokens,
        ...(ev.error ? { error: ev.error } : {}),
      };
      return o;
    case 'batch':
      o.batches.push({ size: ev.size, promptWidth: ev.promptWidth, ttftMs: ev.ttftMs ?? 0, stepMs: ev.stepMs });
      return o;
    case 'score':
      o.scores[ev.index] = {
        sumLogProb: ev.sumLogProb ?? 0,
        tokenCount: ev.tokenCount,
        ...(ev.error ? { error: ev.error } : {}),
      };
      return o;
    case 'generated':
      return { ...o, totals: ev };
    default:
      return o;
  }
}

/** The outcome as the onnx engine's Generation; throws when an item has no sequence or score. */
export function torchGeneration(o: TorchOutcome, items: number, speculative: boolean): Generation {
  const missing = [...Array(items).keys()].filter((i) => !o.sequences[i] || !o.scores[i]);
  if (missing.length || !o.totals) {
    throw new Error(
      `trainer generate ended without results for items ${missing.slice(0, 5).join(', ')}${o.totals ? '' : ' and without its totals'}`,
    );
  }
  const { generatedTokens, wallMs, acceptanceRate, targetOnlyTokensPerSec } = o.totals;
  const tokensPerSec = wallMs && wallMs > 0 ? generatedTokens / (wallMs / 1000) : 0;
  return {
    sequences: o.sequences as GeneratedSequence[],
    scores: o.scores as Generation['scores'],
    batches: o.batches,
    generatedTokens,
    wallMs: wallMs ?? 0,
    ...(speculative && targetOnlyTokensPerSec
      ? { speculative: { acceptanceRate, targetOnlyTokensPerSec, speedup: tokensPerSec / targetOnlyTokensPerSec } }
      : {}),
  };
}

export async function generateTorch(
  ctx: Context,
  input: EvaluateModelInput,
  store: ObjectStore,
  items: TestItem[],
  log: Logger,
  hb: ActivityHeartbeat,
): Promise<EngineGeneration> {
  const torch = input.torch;
  if (!torch) throw failure(FailureType.InvalidSpec, 'evaluateModel: engine torch needs its torch input');
  const root = workDir(input.runKey, `eval-torch-${activityInfo().attempt}`);
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  let adapterDir: string | null = null;
  if (torch.adapterPrefix) {
    adapterDir = join(root, 'adapter');
    await getDirectory(store, torch.adapterPrefix, adapterDir, hb.transfer('download-adapter'));
  }
  let draftDir: string | null = null;
  if (input.speculative?.draftPrefix) {
    draftDir = join(root, 'draft');
    await getDirectory(store, input.speculative.draftPrefix, draftDir, hb.transfer('download-adapter'));
  }
  const itemsPath = join(root, 'items.jsonl');
  await writeFile(
    itemsPath,
    items.map((t) => JSON.stringify({ promptIds: t.promptIds, answerIds: t.answerIds })).join('\n') + '\n',
  );
  const specPath = join(root, 'generate.json');
  const draftPath = input.speculative?.draftModelPath;
  await writeFile(
    specPath,
    JSON.stringify(
      {
        modelPath: await localModelDir(input.modelPath, { ...revisionOpt(input.revision), heartbeat: hb.details }),
        itemsPath,
        adapterDir,
        method: adapterDir ? torch.method : null,
        draftModelPath: draftDir
          ? draftDir
          : draftPath
            ? await localModelDir(draftPath, {
                ...revisionOpt(input.speculative?.draftRevision),
                heartbeat: hb.details,
              })
            : null,
        gamma: input.speculative?.gamma ?? 4,
        promptLookupNgram: input.speculative?.promptLookup?.maxNgram ?? null,
        device: torch.device,
        longPrompt: input.eval.longPrompt ?? 'truncate',
        maxNewTokens: input.eval.maxNewTokens,
        batchSize: input.eval.batchSize,
        stopSequences: [],
        score: true,
      },
      null,
      1,
    ),
  );
  let outcome: TorchOutcome = { sequences: [], scores: [], batches: [] };
  let progress = { done: 0, total: items.length };
  const result = await runTrainer({
    args: ['generate', '--spec', specPath],
    onEvent: (ev) => {
      outcome = reduceTorchEvent(outcome, ev);
      if (ev.event === 'batch') {
        progress = { done: ev.done, total: items.length };
        ctx.heartbeat(progress);
      }
    },
    signal: ctx.cancellationSignal,
    log,
    // Loading a 7B model takes minutes without an event: keep proving the worker is alive.
    heartbeat: () => ctx.heartbeat(progress),
  });
  if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason ?? new Error('cancelled');
  if (result.code === TRAINER_EXIT.invalid) {
    // The trainer's types are registry types (EngineUnsupported, ModelNotFound, UnsupportedMethod, InvalidSpec).
    const named = result.error?.type;
    const type = named && Object.hasOwn(FAILURES, named) ? (named as FailureType) : FailureType.InvalidSpec;
    throw failure(type, `model ${input.modelPath}: ${result.error?.message ?? 'trainer generate rejected its spec'}`);
  }
  if (result.code !== TRAINER_EXIT.done) {
    // Infrastructure (an OOM kill, a lost device): retryable.
    throw new Error(
      `trainer generate failed (${result.code ?? result.signal}): ${result.error?.message ?? result.stderrTail.slice(-800)}`,
    );
  }
  await rm(root, { recursive: true, force: true });
  return {
    gen: torchGeneration(outcome, items.length, Boolean(draftDir || draftPath || input.speculative?.promptLookup)),
    precision: outcome.precision ?? 'fp32',
  };
}
