/**
 * exportModel: merges an adapter into its base (or takes the base as is) and writes an ONNX graph
 * with KV cache through the trainer, then commits it to the store. Content-addressed for base
 * models (by the model's fingerprint: every ICL run of one model shares one export); under the
 * training key for adapters (runs with the same trained adapter share it). `precision: int8` also
 * quantizes that fp32 export (`python -m trainer quantize`) into its own committed directory next
 * to it, `<prefix>-int8-<INT8_EXPORT_ID>`, so fp32 and int8 runs of one model share both.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { activityInfo, ApplicationFailure, Context } from '@temporalio/activity';
import { runLogger } from '../src/common/logger';
import { contentHash } from '../src/common/hash';
import { getDirectory, joinKey, openStore, putDirectory, readManifest } from '../src/store';
import { FailureType, TRAINER_EXIT } from '../src/contracts/failures';
import { runTrainer, type TrainerEvent, type TrainerRunResult as TrainerResult } from './trainer-process';
import { localModelDir, revisionOpt } from './model-source';
import { workDir } from './paths';
import { INT8_EXPORT_ID, INT8_SCHEME } from '../src/config/schema';
import { activityHeartbeat } from './transfer-heartbeat';
import { RunLogBook } from './run-log';
import type { ExportModelInput, ExportModelResult, PrecisionParity } from '../src/contracts';
// Contracts live in src/contracts; re-exported so callers can keep importing them from here.
export type { ExportModelInput, ExportModelResult } from '../src/contracts';

export function onnxPrefixFor(
  input: Pick<ExportModelInput, 'runKey' | 'modelName' | 'modelPath' | 'modelHash'>,
): string {
  if (input.runKey) return joinKey('runs', input.runKey, 'onnx');
  return joinKey(
    'models',
    `${input.modelName}-${input.modelHash ? `m${input.modelHash.slice(0, 16)}` : contentHash({ path: input.modelPath })}`,
    'onnx',
  );
}

/** Where the int8 variant (INT8_EXPORT_ID) of the export at `onnxPrefix` is committed. */
export function int8PrefixFor(onnxPrefix: string): string {
  return `${onnxPrefix}-int8-${INT8_EXPORT_ID}`;
}

interface ExportMeta {
  maxAbsDiff: number | null;
  precisionParity?: PrecisionParity;
}

export async function exportModel(input: ExportModelInput): Promise<ExportModelResult> {
  const ctx = Context.current();
  // From the first line: the adapter, the base model and the export itself are GBs for a 7B model.
  const hb = activityHeartbeat(ctx);
  const info = activityInfo();
  const bindings = { runKey: input.runKey, model: input.modelName, activity: 'exportModel', attempt: info.attempt };
  const store = openStore(input.storeUrl);
  // An adapter's export logs with its run (`peftgrid logs`); a base model's export belongs to no run.
  const book = input.runKey
    ? new RunLogBook({ store, key: input.runKey, activity: 'export', attempt: info.attempt, bindings })
    : undefined;
  const log = book?.log ?? runLogger(bindings);
  const onnxPrefix = onnxPrefixFor(input);
  const int8Prefix = input.precision === 'int8' ? int8PrefixFor(onnxPrefix) : undefined;

  const existing = await readManifest<ExportMeta>(store, onnxPrefix);
  const existingInt8 = int8Prefix ? await readManifest<ExportMeta>(store, int8Prefix) : null;
  if (existing && (!int8Prefix || existingInt8)) {
    log.info({ onnxPrefix: int8Prefix ?? onnxPrefix }, 'ONNX export already committed');
    return exportResult(int8Prefix ?? onnxPrefix, existing.meta.maxAbsDiff ?? null, existingInt8?.meta.precisionParity);
  }

  book?.start();
  try {
    const root = workDir(input.runKey ?? `base-${input.modelName}`, `export-${info.attempt}`);
    await rm(root, { recursive: true, force: true });
    await mkdir(root, { recursive: true });
    const modelPath = await localModelDir(input.modelPath, { ...revisionOpt(input.revision), heartbeat: hb.details });
    const trainer = (args: string[], what: string, onEvent: (ev: TrainerEvent) => void) =>
      runTrainerStep(ctx, hb, log, book, args, what, onEvent);
    const outputDir = join(root, 'onnx');
    let maxAbsDiff: number | null = existing?.meta.maxAbsDiff ?? null;
    if (existing) {
      // The fp32 export is what int8 quantizes: committed already, so fetched rather than redone.
      await getDirectory(store, onnxPrefix, outputDir, hb.transfer('download-onnx'));
    } else {
      let adapterDir: string | null = null;
      if (input.adapterPrefix) {
        adapterDir = join(root, 'adapter');
        await getDirectory(store, input.adapterPrefix, adapterDir, hb.transfer('download-adapter'));
      }
      const specPath = join(root, 'export.json');
      await writeFile(
        specPath,
        JSON.stringify(
          {
            modelPath,
            adapterDir,
            method: input.method,
            outputDir,
            dtype: 'auto', // float16 weights on a CUDA worker, float32 on CPU; float32 graph I/O either way
          },
          null,
          1,
        ),
      );
      await trainer(['export', '--spec', specPath], 'export', (ev) => {
        if (ev.event === 'export' && typeof ev.maxAbsDiff === 'number') maxAbsDiff = ev.maxAbsDiff;
        hb.phase('exporting', { event: ev.event });
      });
      await putDirectory(
        store,
        onnxPrefix,
        outputDir,
        { maxAbsDiff, runKey: input.runKey, modelPath: input.modelPath },
        hb.transfer('upload-onnx'),
      );
      log.info({ onnxPrefix, maxAbsDiff }, 'ONNX export committed');
    }
    let parity: PrecisionParity | undefined;
    if (int8Prefix) parity = await quantizeExport(store, trainer, hb, root, outputDir, modelPath, int8Prefix, input);
    if (parity) log.info({ onnxPrefix: int8Prefix, ...parity }, 'int8 export committed');
    await rm(root, { recursive: true, force: true });
    return exportResult(int8Prefix ?? onnxPrefix, maxAbsDiff, parity);
  } catch (err) {
    log.error({ err: (err as Error).message }, 'export attempt failed');
    throw err;
  } finally {
    await book?.close();
  }
}

function exportResult(onnxPrefix: string, maxAbsDiff: number | null, parity?: PrecisionParity): ExportModelResult {
  return { onnxPrefix, maxAbsDiff, ...(parity ? { precisionParity: parity } : {}) };
}

/**
 * `python -m trainer quantize` of the fp32 export in `fp32Dir`, committed under `int8Prefix`. An
 * agreement below the threshold is not a failure (a retry would measure the same): it is recorded
 * and marked in the result, which is the point of measuring it.
 */
async function quantizeExport(
  store: ReturnType<typeof openStore>,
  trainer: (args: string[], what: string, onEvent: (ev: TrainerEvent) => void) => Promise<TrainerResult>,
  hb: ReturnType<typeof activityHeartbeat>,
  root: string,
  fp32Dir: string,
  modelPath: string,
  int8Prefix: string,
  input: ExportModelInput,
): Promise<PrecisionParity> {
  const int8Dir = join(root, 'onnx-int8');
  const specPath = join(root, 'quantize.json');
  await writeFile(
    specPath,
    JSON.stringify({ onnxDir: fp32Dir, outputDir: int8Dir, tokenizerDir: modelPath, scheme: INT8_SCHEME }),
  );
  let parity: PrecisionParity | undefined;
  hb.phase('quantizing');
  await trainer(['quantize', '--spec', specPath], 'quantize', (ev) => {
    if (ev.event === 'quantize' && typeof ev.agreement === 'number' && typeof ev.threshold === 'number')
      parity = {
        agreement: ev.agreement,
        threshold: ev.threshold,
        belowThreshold: ev.belowThreshold === true,
        tokens: ev.parityTokens ?? 0,
      };
    hb.phase('quantizing', { event: ev.event });
  });
  if (!parity)
    throw ApplicationFailure.retryable('quantize ended without its quantize event', FailureType.ExportFailed);
  await putDirectory(
    store,
    int8Prefix,
    int8Dir,
    { maxAbsDiff: null, precisionParity: parity, runKey: input.runKey, modelPath: input.modelPath },
    hb.transfer('upload-onnx'),
  );
  return parity;
}

/** One trainer command; its exit code mapped onto the failure registry (2: non-retryable). */
async function runTrainerStep(
  ctx: Context,
  hb: ReturnType<typeof activityHeartbeat>,
  log: ReturnType<typeof runLogger>,
  book: RunLogBook | undefined,
  args: string[],
  what: string,
  onEvent: (ev: TrainerEvent) => void,
): Promise<TrainerResult> {
  hb.phase(what === 'export' ? 'exporting' : 'quantizing');
  const result = await runTrainer({
    args,
    onEvent,
    signal: ctx.cancellationSignal,
    log,
    heartbeat: hb.beat,
    ...(book ? { onStderrLine: (line: string) => book.trainer(line) } : {}),
  });
  if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason ?? new Error('cancelled');
  if (result.code === TRAINER_EXIT.invalid) {
    throw ApplicationFailure.nonRetryable(
      result.error?.message ?? `${what} rejected its spec`,
      result.error?.type ?? FailureType.InvalidSpec,
    );
  }
  if (result.code !== TRAINER_EXIT.done) {
    throw ApplicationFailure.retryable(
      `${what} failed (${result.code ?? result.signal}): ${result.error?.message ?? result.stderrTail.slice(-800)}`,
      result.error?.type ?? FailureType.ExportFailed,
    );
  }
  return result;
}
