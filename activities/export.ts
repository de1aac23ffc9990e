/**
 * exportModel: merges an adapter into its base (or takes the base as is) and writes an ONNX graph
 * with KV cache through the trainer, then commits it to the store. Content-addressed for base
 * models (by the model's fingerprint: every ICL run of one model shares one export); under the
 * training key for adapters (runs with the same trained adapter share it).
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { activityInfo, ApplicationFailure, Context } from '@temporalio/activity';
import { runLogger } from '../src/common/logger';
import { contentHash } from '../src/common/hash';
import { getDirectory, joinKey, openStore, putDirectory, readManifest } from '../src/store';
import { FailureType, TRAINER_EXIT } from '../src/contracts/failures';
import { runTrainer, type TrainerEvent } from './trainer-process';
import { localModelDir, revisionOpt } from './model-source';
import { workDir } from './paths';
import { activityHeartbeat } from './transfer-heartbeat';
import { RunLogBook } from './run-log';
import type { ExportModelInput, ExportModelResult } from '../src/contracts';
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

  const existing = await readManifest<{ maxAbsDiff: number | null }>(store, onnxPrefix);
  if (existing) {
    log.info({ onnxPrefix }, 'ONNX export already committed');
    return { onnxPrefix, maxAbsDiff: existing.meta.maxAbsDiff ?? null };
  }

  book?.start();
  try {
    const root = workDir(input.runKey ?? `base-${input.modelName}`, `export-${info.attempt}`);
    await rm(root, { recursive: true, force: true });
    await mkdir(root, { recursive: true });
    let adapterDir: string | null = null;
    if (input.adapterPrefix) {
      adapterDir = join(root, 'adapter');
      await getDirectory(store, input.adapterPrefix, adapterDir, hb.transfer('download-adapter'));
    }
    const outputDir = join(root, 'onnx');
    const specPath = join(root, 'export.json');
    await writeFile(
      specPath,
      JSON.stringify(
        {
          modelPath: await localModelDir(input.modelPath, { ...revisionOpt(input.revision), heartbeat: hb.details }),
          adapterDir,
          method: input.method,
          outputDir,
          dtype: 'auto', // float16 weights on a CUDA worker, float32 on CPU; float32 graph I/O either way
        },
        null,
        1,
      ),
    );

    let maxAbsDiff: number | null = null;
    const onEvent = (ev: TrainerEvent) => {
      if (ev.event === 'export' && typeof ev.maxAbsDiff === 'number') maxAbsDiff = ev.maxAbsDiff;
      hb.phase('exporting', { event: ev.event });
    };
    hb.phase('exporting');
    const result = await runTrainer({
      args: ['export', '--spec', specPath],
      onEvent,
      signal: ctx.cancellationSignal,
      log,
      heartbeat: hb.beat,
      ...(book ? { onStderrLine: (line: string) => book.trainer(line) } : {}),
    });
    if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason ?? new Error('cancelled');
    if (result.code === TRAINER_EXIT.invalid) {
      throw ApplicationFailure.nonRetryable(
        result.error?.message ?? 'export rejected its spec',
        result.error?.type ?? FailureType.InvalidSpec,
      );
    }
    if (result.code !== TRAINER_EXIT.done) {
      throw ApplicationFailure.retryable(
        `export failed (${result.code ?? result.signal}): ${result.error?.message ?? result.stderrTail.slice(-800)}`,
        result.error?.type ?? FailureType.ExportFailed,
      );
    }
    await putDirectory(
      store,
      onnxPrefix,
      outputDir,
      { maxAbsDiff, runKey: input.runKey, modelPath: input.modelPath },
      hb.transfer('upload-onnx'),
    );
    log.info({ onnxPrefix, maxAbsDiff }, 'ONNX export committed');
    await rm(root, { recursive: true, force: true });
    return { onnxPrefix, maxAbsDiff };
  } catch (err) {
    log.error({ err: (err as Error).message }, 'export attempt failed');
    throw err;
  } finally {
    await book?.close();
  }
}
