/**
 * A small client of MLflow's REST API (`/api/2.0/mlflow/...`, and the `mlflow-artifacts` proxy of
 * a server started with `--serve-artifacts`), spoken with fetch: no MLflow package on the Node
 * side, and nothing of MLflow's dependency tree in the trainer's virtualenv.
 *
 * A tracker must never fail or stall a run, so every request has a short timeout and a bounded
 * number of retries, and once a request has exhausted them the client is `down` for a cool-down
 * period in which calls fail at once (a dead server costs one bounded delay, not one per step).
 * Callers catch `TrackerError` and log the gap; nothing here throws anything else.
 */
import type { TrackingTarget } from '../contracts/tracking';

/** Thrown when the tracker answered with an error or could not be reached in the bounds. */
export class TrackerError extends Error {
  constructor(
    message: string,
    /** HTTP status, or 0 when no answer came (refused, timed out, cooling down). */
    readonly status: number,
    /** MLflow's error_code (`RESOURCE_DOES_NOT_EXIST`, `INVALID_PARAMETER_VALUE`, …) when it sent one. */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'TrackerError';
  }
}

export interface MlflowClientOptions {
  /** Per-request timeout in ms. @default 3000 */
  timeoutMs?: number;
  /** Tries per request (connection errors, timeouts, 429 and 5xx only). @default 3 */
  attempts?: number;
  /** After a request gave up, calls fail at once for this long (ms). @default 30000 */
  coolDownMs?: number;
}

export interface MlflowMetric {
  key: string;
  value: number;
  /** ms since the epoch */
  timestamp: number;
  step: number;
}

export interface OpenedRun {
  runId: string;
  experimentId: string;
  artifactUri: string;
  /** The highest step of the `loss` metric already logged (-1 when none): a resumed attempt logs after it. */
  lastLossStep: number;
  /** MLflow's run status (RUNNING, FINISHED, FAILED, KILLED); FAILED/KILLED: an earlier execution ended so. */
  status: string;
}

/** MLflow's log-batch limits: 1000 metrics, 100 params, 100 tags, 1000 entries in all per request. */
const BATCH = { metrics: 1000, params: 100, tags: 100 } as const;
/** The tag that identifies a peftgrid run in the tracker (TrackingTarget.key). */
export const KEY_TAG = 'peftgrid.key';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class MlflowClient {
  readonly uri: string;
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly coolDownMs: number;
  private downUntil = 0;

  constructor(uri: string, options: MlflowClientOptions = {}) {
    this.uri = uri.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 3000;
    this.attempts = options.attempts ?? 3;
    this.coolDownMs = options.coolDownMs ?? 30_000;
  }

  /** True while a failed request's cool-down lasts. */
  get down(): boolean {
    return Date.now() < this.downUntil;
  }

  /** One REST call with bounded retries; `body` is sent as JSON, a Buffer as octets (artifacts). */
  async request<T>(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<T> {
    if (this.down) throw new TrackerError(`tracker ${this.uri} is cooling down after a failure`, 0);
    let last: TrackerError | undefined;
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      if (attempt > 1) await sleep(250 * 2 ** (attempt - 2));
      try {
        const isBytes = Buffer.isBuffer(body);
        const res = await fetch(`${this.uri}${path}`, {
          method,
          signal: AbortSignal.timeout(this.timeoutMs),
          headers: { 'content-type': isBytes ? 'application/octet-stream' : 'application/json' },
          ...(body === undefined ? {} : { body: isBytes ? new Uint8Array(body) : JSON.stringify(body) }),
        });
        const text = await res.text();
        if (res.ok) return (text ? JSON.parse(text) : {}) as T;
        const parsed = safeJson(text) as { error_code?: string; message?: string } | undefined;
        last = new TrackerError(
          `${method} ${path}: HTTP ${res.status} ${parsed?.message ?? text.slice(0, 300)}`,
          res.status,
          parsed?.error_code,
        );
        // A 4xx is the server's definite answer (bad request, not found, conflict): retrying repeats it.
        if (res.status < 500 && res.status !== 429) throw last;
      } catch (err) {
        if (err instanceof TrackerError && err.status > 0 && err.status < 500 && err.status !== 429) throw err;
        if (!(err instanceof TrackerError)) {
          last = new TrackerError(`${method} ${path}: ${(err as Error).message}`, 0);
        }
      }
    }
    this.downUntil = Date.now() + this.coolDownMs;
    throw last ?? new TrackerError(`${method} ${path}: failed`, 0);
  }

  /** The experiment's id, created when it does not exist yet (a concurrent create is tolerated). */
  async experimentId(name: string): Promise<string> {
    const byName = async () => {
      try {
        const r = await this.request<{ experiment: { experiment_id: string } }>(
          'GET',
          `/api/2.0/mlflow/experiments/get-by-name?experiment_name=${encodeURIComponent(name)}`,
        );
        return r.experiment.experiment_id;
      } catch (err) {
        if (err instanceof TrackerError && err.code === 'RESOURCE_DOES_NOT_EXIST') return null;
        throw err;
      }
    };
    const found = await byName();
    if (found) return found;
    try {
      return (await this.request<{ experiment_id: string }>('POST', '/api/2.0/mlflow/experiments/create', { name }))
        .experiment_id;
    } catch (err) {
      // Another worker created it between the lookup and the create.
      if (err instanceof TrackerError && err.code === 'RESOURCE_ALREADY_EXISTS') {
        const again = await byName();
        if (again) return again;
      }
      throw err;
    }
  }

  /**
   * The MLflow run whose `peftgrid.key` tag is `target.key`, created (RUNNING, with the target's
   * tags) only when there is none: a retried or resumed attempt continues the same run. When
   * concurrent creates raced, the oldest run wins, so every caller settles on the same one.
   */
  async openRun(target: TrackingTarget): Promise<OpenedRun> {
    const experimentId = await this.experimentId(target.experiment);
    const search = () =>
      this.request<{ runs?: MlflowRunJson[] }>('POST', '/api/2.0/mlflow/runs/search', {
        experiment_ids: [experimentId],
        filter: `tags.\`${KEY_TAG}\` = '${target.key.replace(/'/g, "\\'")}'`,
        max_results: 1,
        order_by: ['attributes.start_time ASC'],
      });
    const found = (await search()).runs?.[0];
    if (found) return opened(found, experimentId);
    const tags = { ...target.tags, [KEY_TAG]: target.key, 'mlflow.runName': target.runName };
    await this.request<{ run: MlflowRunJson }>('POST', '/api/2.0/mlflow/runs/create', {
      experiment_id: experimentId,
      run_name: target.runName,
      start_time: Date.now(),
      tags: Object.entries(tags).map(([key, value]) => ({ key, value })),
    });
    const settled = (await search()).runs?.[0];
    if (!settled) throw new TrackerError(`run ${target.key} not found right after creating it`, 0);
    return opened(settled, experimentId);
  }

  /** log-batch, split into requests within MLflow's limits. */
  async logBatch(
    runId: string,
    batch: { metrics?: MlflowMetric[]; params?: Record<string, string>; tags?: Record<string, string> },
  ): Promise<void> {
    const metrics = batch.metrics ?? [];
    const params = Object.entries(batch.params ?? {}).map(([key, value]) => ({ key, value }));
    const tags = Object.entries(batch.tags ?? {}).map(([key, value]) => ({ key, value }));
    for (let i = 0; i < params.length; i += BATCH.params) {
      await this.request('POST', '/api/2.0/mlflow/runs/log-batch', {
        run_id: runId,
        params: params.slice(i, i + BATCH.params),
      });
    }
    for (let i = 0; i < tags.length; i += BATCH.tags) {
      await this.request('POST', '/api/2.0/mlflow/runs/log-batch', {
        run_id: runId,
        tags: tags.slice(i, i + BATCH.tags),
      });
    }
    for (let i = 0; i < metrics.length; i += BATCH.metrics) {
      await this.request('POST', '/api/2.0/mlflow/runs/log-batch', {
        run_id: runId,
        metrics: metrics.slice(i, i + BATCH.metrics),
      });
    }
  }

  async setStatus(runId: string, status: 'RUNNING' | 'FINISHED' | 'FAILED' | 'KILLED'): Promise<void> {
    await this.request('POST', '/api/2.0/mlflow/runs/update', {
      run_id: runId,
      status,
      ...(status === 'RUNNING' ? {} : { end_time: Date.now() }),
    });
  }

  /**
   * Uploads one artifact through the server's artifact proxy. Only `mlflow-artifacts:` artifact
   * URIs (a server with `--serve-artifacts`) can be written over HTTP; others throw TrackerError.
   */
  async uploadArtifact(artifactUri: string, path: string, bytes: Buffer): Promise<void> {
    const m = /^mlflow-artifacts:(?:\/\/[^/]*)?\/?(.*)$/.exec(artifactUri);
    if (!m) {
      throw new TrackerError(
        `artifact store ${artifactUri} is not served over HTTP (start mlflow server with --serve-artifacts)`,
        0,
      );
    }
    const base = m[1]!.replace(/\/+$/, '');
    const rel = [base, path]
      .join('/')
      .split('/')
      .map((p) => encodeURIComponent(p))
      .join('/');
    await this.request('PUT', `/api/2.0/mlflow-artifacts/artifacts/${rel}`, bytes);
  }
}

interface MlflowRunJson {
  info: { run_id: string; artifact_uri: string; status?: string };
  data?: { metrics?: { key: string; step?: number | string }[] };
}

function opened(run: MlflowRunJson, experimentId: string): OpenedRun {
  const loss = run.data?.metrics?.find((m) => m.key === 'loss');
  return {
    runId: run.info.run_id,
    experimentId,
    artifactUri: run.info.artifact_uri,
    lastLossStep: loss ? Number(loss.step ?? 0) : -1,
    status: run.info.status ?? 'RUNNING',
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
