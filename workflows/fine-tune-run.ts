/**
 * One run: tokenize → derive keys → [reuse a saved result] → [train → export adapter | export
 * base] → evaluate → result. Runs evaluated by the torch engine (eval.engine, resolved in
 * deriveRunKeys) skip the export and evaluate on the gpu queue with the adapter unmerged. A
 * `drafting: distilled` pair first distills its draft on the target's outputs over the training
 * prompts (distillDraft, under its distill key), then exports and drafts with that. Every
 * step is an idempotent activity keyed by content, so a retried or re-started run skips what is
 * already committed in the store.
 *
 * Keys (docs/contracts.md §3): training (checkpoints, final adapter, its ONNX export) lives under
 * the training key, evaluation and the saved result under the evaluation key; both hash the model's
 * bytes and the tokenized data, so an edited data file or a model replaced at the same path
 * neither resumes an old checkpoint nor reuses an old result, and a changed eval setting
 * re-evaluates the committed adapter without training it again.
 */
import {
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type * as activities from '../activities';
import { SEARCH_ATTRIBUTE_KEYS, TASK_QUEUES, TIMEOUTS } from '../src/common/constants';
import { FailureType, nonRetryableTypes } from '../src/contracts/failures';
import { looksLikeHubId } from '../src/common/hub-id';
import { trackingTarget } from '../src/tracking/target';
import type {
  FineTuneRunWorkflowInput,
  RunIdentity,
  RunPhase,
  RunProgress,
  RunResult,
  TrackingTarget,
} from '../src/contracts';
import type { ObjectRef } from '../src/store/object-store';

// From the registry, like prepare-data.ts's: the two hand-written lists this replaced each named
// the types their own activities happened to throw, so a type is now permanent in every proxy,
// except where the registry says a name is listed only in one workflow (`NotFound`).
const NON_RETRYABLE = nonRetryableTypes('fineTuneRun');

const cpu = proxyActivities<typeof activities>({
  taskQueue: TASK_QUEUES.cpu,
  startToCloseTimeout: TIMEOUTS.data.startToClose,
  heartbeatTimeout: TIMEOUTS.data.heartbeat,
  // Data activities write content-addressed keys atomically: a retry overwrites identical bytes.
  retry: { maximumAttempts: 5, initialInterval: 1000, backoffCoefficient: 2, nonRetryableErrorTypes: NON_RETRYABLE },
});

const evaluator = proxyActivities<typeof activities>({
  taskQueue: TASK_QUEUES.cpu,
  startToCloseTimeout: TIMEOUTS.evaluate.startToClose,
  heartbeatTimeout: TIMEOUTS.evaluate.heartbeat,
  // Evaluation is pure over committed inputs; predictions are written whole at the end.
  retry: { maximumAttempts: 3, initialInterval: 2000, nonRetryableErrorTypes: NON_RETRYABLE },
});

// The torch engine evaluates where the model fits: on a gpu worker, in bf16, with no export.
const gpuEvaluator = proxyActivities<typeof activities>({
  taskQueue: TASK_QUEUES.gpu,
  startToCloseTimeout: TIMEOUTS.evaluate.startToClose,
  heartbeatTimeout: TIMEOUTS.evaluate.heartbeat,
  // As on the cpu queue: pure over committed inputs (adapter, test split), written whole at the end.
  retry: { maximumAttempts: 3, initialInterval: 2000, nonRetryableErrorTypes: NON_RETRYABLE },
});

const trainer = proxyActivities<typeof activities>({
  taskQueue: TASK_QUEUES.gpu,
  startToCloseTimeout: TIMEOUTS.train.startToClose,
  heartbeatTimeout: TIMEOUTS.train.heartbeat,
  // Safe to retry any number of times: each attempt resumes from the newest committed checkpoint.
  // A preempted instance may come back many times in a long run, hence the generous bound.
  retry: {
    maximumAttempts: 20,
    initialInterval: 5000,
    backoffCoefficient: 2,
    maximumInterval: 300_000,
    nonRetryableErrorTypes: NON_RETRYABLE,
  },
});

const exporter = proxyActivities<typeof activities>({
  taskQueue: TASK_QUEUES.gpu,
  startToCloseTimeout: TIMEOUTS.export.startToClose,
  heartbeatTimeout: TIMEOUTS.export.heartbeat,
  // The export is committed by its manifest only after it is complete; a retry starts over.
  retry: { maximumAttempts: 5, initialInterval: 5000, nonRetryableErrorTypes: NON_RETRYABLE },
});

const stager = proxyActivities<typeof activities>({
  taskQueue: TASK_QUEUES.cpu,
  startToCloseTimeout: TIMEOUTS.download.startToClose,
  heartbeatTimeout: TIMEOUTS.download.heartbeat,
  // Staging resumes huggingface_hub's partial files under a per-worker lock; a completed stage is
  // reused, so a retry costs at most the unfinished files. Hub refusals are typed and permanent.
  retry: { maximumAttempts: 5, initialInterval: 2000, backoffCoefficient: 2, nonRetryableErrorTypes: NON_RETRYABLE },
});

const tracker = proxyActivities<typeof activities>({
  taskQueue: TASK_QUEUES.cpu,
  startToCloseTimeout: TIMEOUTS.track.startToClose,
  // trackRunResult never throws for the tracker's own failures (it logs the gap and returns), so
  // a retry only covers a lost worker; MLflow params and metrics re-logged by it are idempotent.
  retry: { maximumAttempts: 3, initialInterval: 2000, nonRetryableErrorTypes: NON_RETRYABLE },
});

export const runProgressQuery = defineQuery<RunProgress>('progress');

export async function fineTuneRunWorkflow({ run, prepared }: FineTuneRunWorkflowInput): Promise<RunResult> {
  let phase: RunPhase = 'pending';
  // The status search attribute lets the Temporal UI filter runs by phase (set only where the
  // grid registered the attribute on this run; a standalone run may lack it).
  const hasStatus = workflowInfo().typedSearchAttributes.get(SEARCH_ATTRIBUTE_KEYS.status) !== undefined;
  const setPhase = (p: RunPhase, note?: string) => {
    phase = p;
    if (hasStatus) upsertSearchAttributes([{ key: SEARCH_ATTRIBUTE_KEYS.status, value: p }]);
    // "Current details" in the Temporal UI: what this run is doing now, in words.
    setCurrentDetails(`**${p}** · ${run.model.name} · ${run.label}${note ? `\n\n${note}` : ''}`);
  };
  let identity: RunIdentity | undefined;
  setHandler(runProgressQuery, () => ({
    runKey: run.runKey,
    phase,
    label: run.label,
    model: run.model.name,
    ...(identity ? { trainingKey: identity.trainingKey, evalKey: identity.evalKey } : {}),
  }));
  const base = { runKey: run.runKey, model: run.model.name, method: run.method.method, label: run.label };
  const reuse = (previous: RunResult): RunResult => {
    log.info('run already finished earlier; reusing its result', { runKey: run.runKey, evalKey: identity?.evalKey });
    setPhase('completed', 'reused the result of an earlier execution');
    // Under content keys the saved result may come from another run name (e.g. a grid that only
    // changed checkpointEverySteps): report it under this run's name.
    return { ...previous, ...base, reused: true };
  };

  // Executions started before content keys replay their recorded history: result lookup by run
  // key first, everything under the run key. Remove once no run started before it is open.
  const contentKeys = patched('content-keys');
  if (!contentKeys) {
    const previous = await cpu.lookupRunResult({ storeUrl: run.store, runKey: run.runKey });
    if (previous) return reuse(previous);
  }

  // Set once the run's keys are known; a failure after that closes its MLflow run (see catch).
  let tracking: TrackingTarget | undefined;
  try {
    setPhase('tokenizing');
    // Hub models are staged first and pinned: the configured revision (a branch by default) resolves
    // to one commit here, and every later activity, on any worker, stages exactly that commit.
    if (patched('stage-model')) run = await pinHubRevisions(run);
    // Only distilled pairs reach the marker (their drafts train on the training prompts): every
    // other history replays unchanged.
    const distilled = run.distill !== undefined && patched('distilled-draft');
    const rev = (m: { revision?: string } | undefined) => (m?.revision ? { revision: m.revision } : {});
    const tokenized = await cpu.tokenizeData.executeWithOptions(
      { summary: `tokenize for ${run.model.name}${run.shots ? ` (${run.shots}-shot prompts)` : ''}` },
      [
        {
          storeUrl: run.store,
          prepared,
          modelPath: run.model.path,
          ...rev(run.model),
          family: run.model.family,
          maxLength: run.training.maxLength,
          shots: run.shots,
          seed: run.data.seed,
          withTrain: run.trains || distilled,
        },
      ],
    );
    if (contentKeys) {
      // The keys need the tokenized data's sha256 and the model's bytes, so they come after
      // tokenization (itself content-addressed: a re-started run finds it committed).
      identity = await cpu.deriveRunKeys.executeWithOptions(
        { summary: `content keys of ${run.model.name} · ${run.label}` },
        [
          {
            run,
            testData: tokenized.test,
            ...(tokenized.train ? { trainData: tokenized.train } : {}),
          },
        ],
      );
      const previous = await cpu.lookupRunResult({
        storeUrl: run.store,
        runKey: run.runKey,
        evalKey: identity.evalKey,
      });
      if (previous) return reuse(previous);
    }
    const trainingKey = identity?.trainingKey ?? run.runKey;
    const evalKey = identity?.evalKey ?? run.runKey;
    // Only runs with tracking on reach the marker: histories without it replay unchanged.
    tracking = run.tracking && patched('mlflow-tracking') ? trackingTarget(run, { trainingKey, evalKey }) : undefined;
    // Histories recorded before the torch engine replay the onnx path (export, cpu evaluation).
    const torchEngine = patched('torch-engine') && identity?.engine === 'torch';

    // eval.precision int8 changes only the exportModel input (same activity, same order), so
    // recorded histories replay unchanged without a patch marker.
    let onnxPrefix: string | undefined;
    let adapterPrefix: string | null = null;
    let draftOnnxPrefix: string | undefined;
    let training: RunResult['training'];
    // A distilled pair's draft: distilled before the draft's export (or the torch evaluation).
    let draft: DistilledDraft | undefined;
    if (distilled) {
      draft = await distillDraft(run, identity?.distillKey, tokenized.train, setPhase);
      training = draft.training;
    }
    if (run.trains) {
      if (!tokenized.train)
        throw ApplicationFailure.nonRetryable('tokenizeData returned no training split', FailureType.InvalidData);
      const t = run.training;
      setPhase(
        'training',
        `${t.maxSteps} steps, lr ${t.lr}, batch ${t.batchSize}, checkpoint every ${t.checkpointEverySteps}; step, loss and tokens/s are in the trainModel heartbeat`,
      );
      const trained = await trainer.trainModel.executeWithOptions(
        { summary: `train ${run.label} on ${run.model.name} · ${t.maxSteps} steps` },
        [
          {
            storeUrl: run.store,
            runKey: trainingKey,
            modelPath: run.model.path,
            ...rev(run.model),
            family: run.model.family,
            method: run.method,
            training: run.training,
            trainData: tokenized.train,
            retention: run.retention,
            ...(tracking ? { tracking } : {}),
          },
        ],
      );
      training = {
        steps: trained.steps,
        trainLoss: trained.trainLoss,
        trainPerplexity: trained.trainPerplexity,
        tokensPerSec: trained.tokensPerSec,
        // Absent from trainModel results recorded before they were measured: left out, not undefined.
        ...(trained.peakMemoryBytes === undefined ? {} : { peakMemoryBytes: trained.peakMemoryBytes }),
        ...(trained.peakMemorySource === undefined ? {} : { peakMemorySource: trained.peakMemorySource }),
        ...(trained.mfu === undefined ? {} : { mfu: trained.mfu }),
        ...(trained.gradientCheckpointing === undefined
          ? {}
          : { gradientCheckpointing: trained.gradientCheckpointing }),
      };
      adapterPrefix = trained.finalPrefix;
      if (!torchEngine) {
        setPhase('exporting', `trained ${trained.steps} steps, final loss ${trained.trainLoss.toFixed(3)}`);
        ({ onnxPrefix } = await exporter.exportModel.executeWithOptions(
          { summary: `export ${run.model.name} + ${run.method.method} adapter to ONNX` },
          [
            {
              storeUrl: run.store,
              runKey: trainingKey,
              modelName: run.model.name,
              modelPath: run.model.path,
              ...rev(run.model),
              method: run.method,
              adapterPrefix: trained.finalPrefix,
              ...(run.eval.precision ? { precision: run.eval.precision } : {}),
            },
          ],
        ));
      }
    } else if (!torchEngine) {
      setPhase('exporting');
      ({ onnxPrefix } = await exporter.exportModel.executeWithOptions(
        { summary: `export base ${run.model.name} to ONNX` },
        [
          {
            storeUrl: run.store,
            runKey: null,
            modelName: run.model.name,
            modelPath: run.model.path,
            ...rev(run.model),
            method: run.method,
            adapterPrefix: null,
            ...(identity ? { modelHash: identity.modelHash } : {}),
            // The speculative draft stays fp32: greedy speculative output is the target's tokens.
            ...(run.eval.precision ? { precision: run.eval.precision } : {}),
          },
        ],
      ));
      if (draft) {
        setPhase('exporting', `distilled draft ${run.draft!.name}`);
        ({ onnxPrefix: draftOnnxPrefix } = await exporter.exportModel.executeWithOptions(
          { summary: `export distilled draft ${run.draft!.name} to ONNX` },
          [
            {
              storeUrl: run.store,
              runKey: draft.distillKey,
              modelName: run.draft!.name,
              modelPath: run.draft!.path,
              ...rev(run.draft),
              // A plain model directory, exported as a full fine-tune's final is.
              method: { method: 'full' },
              adapterPrefix: draft.finalPrefix,
            },
          ],
        ));
      } else if (run.draft) {
        // Base-model exports are content-addressed: the draft's is shared with its own ICL runs.
        ({ onnxPrefix: draftOnnxPrefix } = await exporter.exportModel.executeWithOptions(
          { summary: `export draft ${run.draft.name} to ONNX` },
          [
            {
              storeUrl: run.store,
              runKey: null,
              modelName: run.draft.name,
              modelPath: run.draft.path,
              ...rev(run.draft),
              method: { method: 'icl' },
              adapterPrefix: null,
              ...(identity?.draftModelHash ? { modelHash: identity.draftModelHash } : {}),
            },
          ],
        ));
      }
    }

    setPhase('evaluating', torchEngine ? `torch engine on the gpu queue (${identity?.engineReason ?? ''})` : undefined);
    const speculative = run.method.method === 'speculative' ? run.method : undefined;
    const evaluated = torchEngine
      ? await gpuEvaluator.evaluateModel.executeWithOptions(
          { summary: `evaluate ${run.model.name} · ${run.label} (torch engine)` },
          [
            {
              storeUrl: run.store,
              runKey: evalKey,
              engine: 'torch',
              torch: { adapterPrefix, method: run.method.method, device: run.training.device },
              testData: tokenized.test,
              modelPath: run.model.path,
              ...rev(run.model),
              eval: run.eval,
              ...(speculative && run.draft
                ? {
                    speculative: {
                      draftModelPath: run.draft.path,
                      ...(run.draft.revision ? { draftRevision: run.draft.revision } : {}),
                      ...(draft ? { draftPrefix: draft.finalPrefix } : {}),
                      gamma: speculative.gamma,
                    },
                  }
                : {}),
              ...(speculative?.promptLookup
                ? { speculative: { gamma: speculative.gamma, promptLookup: speculative.promptLookup } }
                : {}),
            },
          ],
        )
      : await evaluator.evaluateModel.executeWithOptions({ summary: `evaluate ${run.model.name} · ${run.label}` }, [
          {
            // evaluateModel writes under `runs/<runKey>/eval`: it receives the evaluation key.
            storeUrl: run.store,
            runKey: evalKey,
            onnxPrefix,
            testData: tokenized.test,
            modelPath: run.model.path,
            ...rev(run.model),
            eval: run.eval,
            ...(draftOnnxPrefix && speculative ? { speculative: { draftOnnxPrefix, gamma: speculative.gamma } } : {}),
            ...(speculative?.promptLookup
              ? { speculative: { gamma: speculative.gamma, promptLookup: speculative.promptLookup } }
              : {}),
          },
        ]);
    const result: RunResult = {
      ...base,
      status: 'completed',
      metrics: evaluated.metrics,
      throughput: evaluated.throughput,
      training,
      evalPrefix: evaluated.evalPrefix,
      // Recorded onnx evaluations before the torch engine returned neither field: onnx, fp32.
      engine: evaluated.engine ?? 'onnx',
      precision: evaluated.precision ?? 'fp32',
      ...(evaluated.precisionParity ? { precisionParity: evaluated.precisionParity } : {}),
    };
    const { provenance } = await cpu.saveRunResult({
      storeUrl: run.store,
      result,
      modelPath: run.model.path,
      ...rev(run.model),
      seed: run.training.seed,
      dataHash: `${prepared.train.sha256.slice(0, 16)}${prepared.test.sha256.slice(0, 16)}`,
      ...(identity ? { identity, prepared: { train: prepared.train.sha256, test: prepared.test.sha256 } } : {}),
    });
    result.provenance = provenance;
    if (tracking) {
      await tracker.trackRunResult.executeWithOptions({ summary: `log ${run.label} to MLflow at ${tracking.uri}` }, [
        { storeUrl: run.store, tracking, result },
      ]);
    }
    const m = evaluated.metrics.overall;
    const pct = (name: string) => `${((m.metrics[name]?.estimate ?? NaN) * 100).toFixed(1)}%`;
    setPhase(
      'completed',
      `exact match ${pct('exactMatch')}, Jaccard ${pct('jaccardStudy')} on ${m.n} items; ${evaluated.throughput.tokensPerSec.toFixed(1)} tokens/s`,
    );
    return result;
  } catch (err) {
    const cancelled = isCancellation(err);
    if (cancelled) setPhase('cancelled');
    // A failure is not saved as the run's result: re-starting the grid tries the run again.
    else setPhase('failed', (err as Error).message);
    // Its MLflow run would stay RUNNING forever: close it. A new marker, reached only by runs with
    // tracking that end here, so histories recorded before it replay without the extra activity.
    if (tracking && patched('mlflow-run-ended')) await closeTrackedRun(tracking, err, cancelled);
    throw err;
  }
}

/**
 * trackRunEnded for a run that failed (FAILED, with the failure's type and message) or was
 * cancelled (KILLED; non-cancellable, or the cancelled workflow could not schedule it). The run's
 * own error is what the workflow throws: a tracker activity that fails too is only logged.
 */
async function closeTrackedRun(tracking: TrackingTarget, err: unknown, cancelled: boolean): Promise<void> {
  let cause: unknown = err;
  while (cause instanceof Error && !(cause instanceof ApplicationFailure) && cause.cause) cause = cause.cause;
  const app = cause instanceof ApplicationFailure ? cause : undefined;
  const input = cancelled
    ? { tracking, status: 'KILLED' as const }
    : {
        tracking,
        status: 'FAILED' as const,
        error: app?.message ?? (err as Error).message,
        ...(app?.type ? { errorType: app.type } : {}),
      };
  try {
    await CancellationScope.nonCancellable(() =>
      tracker.trackRunEnded.executeWithOptions({ summary: `close ${tracking.runName} in MLflow as ${input.status}` }, [
        input,
      ]),
    );
  } catch (trackErr) {
    log.warn('could not close the MLflow run', { runKey: tracking.runName, error: (trackErr as Error).message });
  }
}

/** A distilled draft as committed: its store prefix (a plain model directory) and how it trained. */
interface DistilledDraft {
  distillKey: string;
  finalPrefix: string;
  training: NonNullable<RunResult['training']>;
}

/**
 * distillDraft on the gpu queue (the trainer proxy: retried like training, each attempt resuming
 * from the newest committed checkpoint). Content-keyed by `distillKey`: a re-run, or another pair
 * that differs only in gamma or eval settings, gets the committed draft back without training.
 */
async function distillDraft(
  run: FineTuneRunWorkflowInput['run'],
  distillKey: string | undefined,
  trainData: ObjectRef | undefined,
  setPhase: (p: RunPhase, note?: string) => void,
): Promise<DistilledDraft> {
  const { distill, draft } = run;
  if (!distill || !draft || !distillKey || !trainData)
    throw ApplicationFailure.nonRetryable(
      `a distilled draft needs its draft, distill key and training split (got ${[draft?.name, distillKey, trainData?.key].join(', ')})`,
      FailureType.InvalidData,
    );
  const t = distill.training;
  setPhase(
    'training',
    `distilling ${draft.name} on ${run.model.name}'s greedy outputs: ${t.maxSteps} steps, lr ${t.lr}`,
  );
  const trained = await trainer.distillDraft.executeWithOptions(
    { summary: `distill ${draft.name} on ${run.model.name}'s outputs · ${t.maxSteps} steps` },
    [
      {
        storeUrl: run.store,
        runKey: distillKey,
        modelPath: draft.path,
        ...(draft.revision ? { revision: draft.revision } : {}),
        family: draft.family,
        method: distill.method,
        training: t,
        trainData,
        retention: run.retention,
        target: { modelPath: run.model.path, ...(run.model.revision ? { revision: run.model.revision } : {}) },
        maxNewTokens: distill.maxNewTokens,
      },
    ],
  );
  return {
    distillKey,
    finalPrefix: trained.finalPrefix,
    training: {
      steps: trained.steps,
      trainLoss: trained.trainLoss,
      trainPerplexity: trained.trainPerplexity,
      tokensPerSec: trained.tokensPerSec,
    },
  };
}

/** The run with its hub models' revisions resolved to commit shas (stageModel on the cpu queue). */
async function pinHubRevisions(run: FineTuneRunWorkflowInput['run']): Promise<FineTuneRunWorkflowInput['run']> {
  const pin = async <M extends { name: string; path: string; revision?: string }>(m: M): Promise<M> => {
    if (!looksLikeHubId(m.path)) return m;
    const staged = await stager.stageModel.executeWithOptions({ summary: `stage ${m.name} (${m.path})` }, [
      { modelPath: m.path, ...(m.revision ? { revision: m.revision } : {}) },
    ]);
    return staged.revision ? { ...m, revision: staged.revision } : m;
  };
  const model = await pin(run.model);
  return run.draft ? { ...run, model, draft: await pin(run.draft) } : { ...run, model };
}
