/**
 * trackRunResult: a finished run's params, final metrics and artifacts to its MLflow run (the
 * one trainModel logged step metrics to, found by its key; created here for runs that do not
 * train); trackRunEnded: a run that failed or was cancelled closes its MLflow run as FAILED or
 * KILLED instead of leaving it RUNNING; trackGridReport: the grid's report files to an MLflow run
 * of the grid's own. A tracker that is down or refuses something never fails the run: each part
 * that could not be logged is named in one warning and in the result's `skipped`, and the
 * activity returns.
 */
import { activityInfo } from '@temporalio/activity';
import { runLogger } from '../src/common/logger';
import { joinKey, openStore } from '../src/store';
import { MlflowClient, type MlflowMetric } from '../src/tracking/mlflow';
import type {
  RunResult,
  TrackGridReportInput,
  TrackGridReportResult,
  TrackRunEndedInput,
  TrackRunResultInput,
  TrackRunResultResult,
} from '../src/contracts';
// Contracts live in src/contracts; re-exported so callers can keep importing them from here.
export type {
  TrackGridReportInput,
  TrackGridReportResult,
  TrackRunEndedInput,
  TrackRunResultInput,
  TrackRunResultResult,
} from '../src/contracts';

/** Files of `runs/<evalKey>/eval/` uploaded as artifacts (under `eval/`). */
const EVAL_FILES = ['metrics.json', 'predictions.jsonl'] as const;

export async function trackRunResult({
  storeUrl,
  tracking,
  result,
}: TrackRunResultInput): Promise<TrackRunResultResult> {
  const log = runLogger({ runKey: result.runKey, activity: 'trackRunResult', attempt: activityInfo().attempt });
  const client = new MlflowClient(tracking.uri);
  const skipped: string[] = [];
  const errors: string[] = [];
  const attempt = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (err) {
      skipped.push(what);
      errors.push(`${what}: ${(err as Error).message}`);
    }
  };

  let runId: string | null = null;
  let artifactUri = '';
  await attempt('the whole run', async () => {
    ({ runId, artifactUri } = await client.openRun(tracking));
  });
  if (runId) {
    const id: string = runId;
    // Params are immutable in MLflow: a resumed attempt re-logs the same values (accepted); a run
    // sharing this training key with other eval settings differs in eval.* and is refused: noted.
    await attempt('params', () => client.logBatch(id, { params: tracking.params }));
    await attempt('final metrics', () => client.logBatch(id, { metrics: finalMetrics(result, Date.now()) }));
    await attempt('artifact result.json', () =>
      client.uploadArtifact(artifactUri, 'result.json', Buffer.from(JSON.stringify(result, null, 1))),
    );
    if (result.evalPrefix) {
      const store = openStore(storeUrl);
      for (const file of EVAL_FILES) {
        await attempt(`artifact eval/${file}`, async () => {
          const key = joinKey(result.evalPrefix!, file);
          if (!(await store.head(key))) return;
          await client.uploadArtifact(artifactUri, `eval/${file}`, await store.get(key));
        });
      }
    }
    await attempt('run status', () => client.setStatus(id, 'FINISHED'));
  }
  if (skipped.length > 0) {
    log.warn(
      { trackingUri: tracking.uri, mlflowKey: tracking.key, skipped, errors },
      `MLflow tracker ${tracking.uri}: could not log ${skipped.join(', ')}; the run's result is saved in the store regardless`,
    );
  } else {
    log.info({ trackingUri: tracking.uri, mlflowRunId: runId }, 'run logged to MLflow');
  }
  return { mlflowRunId: runId, skipped };
}

/** MLflow refuses tag values longer than this (5000 before MLflow 2.x raised it): cut to fit. */
const MAX_TAG_LENGTH = 5000;

/**
 * Closes the run's MLflow run as FAILED (or KILLED) with the failure as tags. The run is found by
 * its key like trainModel's, so a training that logged steps before it failed keeps them; a run
 * that failed before any step was logged gets an MLflow run of its own (with its params), so the
 * failure is visible in the tracker at all. Re-starting the grid later trains under the same key
 * and the same MLflow run ends FINISHED. Never fails for the tracker's sake, as trackRunResult.
 */
export async function trackRunEnded({
  tracking,
  status,
  error,
  errorType,
}: TrackRunEndedInput): Promise<TrackRunResultResult> {
  const log = runLogger({ runKey: tracking.runName, activity: 'trackRunEnded', attempt: activityInfo().attempt });
  const client = new MlflowClient(tracking.uri);
  let runId: string | null = null;
  let step = 'the whole run';
  try {
    runId = (await client.openRun(tracking)).runId;
    step = 'params';
    await client.logBatch(runId, { params: tracking.params });
    step = 'failure tags';
    const tags: Record<string, string> = {};
    if (error !== undefined) tags['peftgrid.error'] = error.slice(0, MAX_TAG_LENGTH);
    if (errorType !== undefined) tags['peftgrid.errorType'] = errorType;
    if (Object.keys(tags).length > 0) await client.logBatch(runId, { tags });
    step = 'run status';
    await client.setStatus(runId, status);
  } catch (err) {
    log.warn(
      { trackingUri: tracking.uri, mlflowKey: tracking.key, skipped: [step], errors: [(err as Error).message] },
      `MLflow tracker ${tracking.uri}: could not close the MLflow run as ${status} (${step} failed); it may still show RUNNING`,
    );
    return { mlflowRunId: runId, skipped: [step] };
  }
  log.info({ trackingUri: tracking.uri, mlflowRunId: runId, status }, `MLflow run closed as ${status}`);
  return { mlflowRunId: runId, skipped: [] };
}

/**
 * The grid's report (report.md, results.csv/json, plots/…) as artifacts under `report/` of one
 * MLflow run per grid (tag `peftgrid.key` = `grid:<gridId>`): a re-started grid rewrites the same
 * run's files. Never fails for the tracker's sake, as trackRunResult.
 */
export async function trackGridReport(input: TrackGridReportInput): Promise<TrackGridReportResult> {
  const log = runLogger({ gridId: input.gridId, activity: 'trackGridReport', attempt: activityInfo().attempt });
  const client = new MlflowClient(input.tracking.uri);
  const skipped: string[] = [];
  const errors: string[] = [];
  let runId: string | null = null;
  try {
    const opened = await client.openRun({
      ...input.tracking,
      key: `grid:${input.gridId}`,
      runName: `grid ${input.gridName}`,
      tags: { 'peftgrid.grid': input.gridName, 'peftgrid.gridId': input.gridId, 'peftgrid.kind': 'grid' },
      params: {},
    });
    runId = opened.runId;
    const store = openStore(input.storeUrl);
    // With the slash: `grids/abc` must not also list `grids/abc-2/…`.
    const prefix = `${input.reportPrefix.replace(/\/+$/, '')}/`;
    for (const obj of await store.list(prefix)) {
      const rel = obj.key.slice(prefix.length);
      try {
        await client.uploadArtifact(opened.artifactUri, `report/${rel}`, await store.get(obj.key));
      } catch (err) {
        skipped.push(`artifact report/${rel}`);
        errors.push((err as Error).message);
      }
    }
    await client.setStatus(opened.runId, 'FINISHED');
  } catch (err) {
    skipped.push(runId ? 'run status' : 'the grid report');
    errors.push((err as Error).message);
  }
  if (skipped.length > 0) {
    log.warn(
      { trackingUri: input.tracking.uri, skipped, errors },
      `MLflow tracker ${input.tracking.uri}: could not log ${skipped.join(', ')}; the report is in the store regardless`,
    );
  }
  return { mlflowRunId: runId, skipped };
}

/**
 * The run's final numbers as MLflow metrics (step 0): every overall eval metric and perplexity
 * (`eval.<name>`), throughput (`eval.tokens_per_sec`, …), and the training summary (`train.*`).
 */
export function finalMetrics(result: RunResult, timestamp: number): MlflowMetric[] {
  const out: MlflowMetric[] = [];
  const add = (key: string, value: number | null | undefined) => {
    if (value !== null && value !== undefined && Number.isFinite(value)) out.push({ key, value, timestamp, step: 0 });
  };
  const overall = result.metrics?.overall;
  if (overall) {
    for (const [name, ci] of Object.entries(overall.metrics)) add(`eval.${name}`, ci.estimate);
    add('eval.perplexity', overall.perplexity?.estimate);
    add('eval.n', overall.n);
  }
  const t = result.throughput;
  if (t) {
    add('eval.tokens_per_sec', t.tokensPerSec);
    add('eval.ttft_ms_p50', t.ttftMsP50);
    add('eval.hit_limit_fraction', t.hitLimitFraction);
    add('eval.acceptance_rate', t.acceptanceRate);
    add('eval.speedup', t.speedup);
    add('eval.tokens_per_target_pass', t.tokensPerTargetPass);
  }
  const tr = result.training;
  if (tr) {
    add('train.steps', tr.steps);
    add('train.final_loss', tr.trainLoss);
    add('train.perplexity', tr.trainPerplexity);
    add('train.tokens_per_sec', tr.tokensPerSec);
    add('train.peak_memory_bytes', tr.peakMemoryBytes);
  }
  return out;
}
