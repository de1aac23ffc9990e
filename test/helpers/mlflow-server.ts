/**
 * A real MLflow tracking server for tests: `mlflow server` on loopback with a SQLite backend and
 * `--serve-artifacts`, from the virtualenv `infra/bootstrap.sh --with-mlflow` builds outside the
 * clone (never the trainer's .venv). Also a few REST reads the tests check the server's state with.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const MLFLOW_BIN =
  process.env.PEFTGRID_MLFLOW_BIN ??
  join(process.env.PEFTGRID_CACHE ?? join(homedir(), '.cache', 'peftgrid'), 'mlflow-venv', 'bin', 'mlflow');

export function mlflowAvailable(): boolean {
  return existsSync(MLFLOW_BIN);
}

export interface MlflowServer {
  uri: string;
  stop(): Promise<void>;
}

/** Starts `mlflow server` on 127.0.0.1:`port` (27500-27509 are this suite's), state under `dir`. */
export async function startMlflowServer(dir: string, port = 27500): Promise<MlflowServer> {
  if (!existsSync(MLFLOW_BIN))
    throw new Error(`mlflow not found at ${MLFLOW_BIN}: run \`bash infra/bootstrap.sh --with-mlflow\``);
  mkdirSync(dir, { recursive: true });
  const uri = `http://127.0.0.1:${port}`;
  // A server left over on the port would answer the health check below in this one's place.
  const taken = await fetch(`${uri}/health`, { signal: AbortSignal.timeout(1000) }).then(
    () => true,
    () => false,
  );
  if (taken) throw new Error(`port ${port} is already in use: a server answers on ${uri}`);
  const logPath = join(dir, 'mlflow.log');
  const log = openSync(logPath, 'a');
  const child: ChildProcess = spawn(
    MLFLOW_BIN,
    [
      'server',
      '--backend-store-uri',
      `sqlite:///${join(dir, 'mlflow.db')}`,
      '--serve-artifacts',
      '--artifacts-destination',
      join(dir, 'artifacts'),
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--workers',
      '1',
    ],
    { stdio: ['ignore', log, log], detached: true, env: { ...process.env, MLFLOW_DISABLE_TELEMETRY: 'true' } },
  );
  closeSync(log);
  const kill = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      /* gone */
    }
  };
  process.once('exit', () => kill('SIGKILL'));
  // The first start creates the SQLite schema (alembic migrations): tens of seconds on a busy CPU.
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`mlflow server exited with ${child.exitCode}:\n${readFileSync(logPath, 'utf8').slice(-2000)}`);
    try {
      const res = await fetch(`${uri}/health`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      kill('SIGKILL');
      throw new Error(`mlflow server did not answer on ${uri} within 180 s; see ${logPath}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return {
    uri,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      kill('SIGTERM');
      const t = setTimeout(() => kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

async function call<T>(uri: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${uri}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${text.slice(0, 500)}`);
  return JSON.parse(text) as T;
}

export interface MlflowRunView {
  info: { run_id: string; status: string; artifact_uri: string; run_name?: string };
  data: {
    metrics?: { key: string; value: number; step: number }[];
    params?: { key: string; value: string }[];
    tags?: { key: string; value: string }[];
  };
}

/** Every run of the experiment `name` (none when the experiment does not exist). */
export async function experimentRuns(uri: string, name: string): Promise<MlflowRunView[]> {
  let id: string;
  try {
    id = (
      await call<{ experiment: { experiment_id: string } }>(
        uri,
        `/api/2.0/mlflow/experiments/get-by-name?experiment_name=${encodeURIComponent(name)}`,
      )
    ).experiment.experiment_id;
  } catch {
    return [];
  }
  const r = await call<{ runs?: MlflowRunView[] }>(uri, '/api/2.0/mlflow/runs/search', {
    experiment_ids: [id],
    max_results: 1000,
  });
  return r.runs ?? [];
}

/** The whole history of one metric, in step order. */
export async function metricHistory(
  uri: string,
  runId: string,
  key: string,
): Promise<{ step: number; value: number; timestamp: number }[]> {
  const r = await call<{ metrics?: { step?: number | string; value: number; timestamp: number | string }[] }>(
    uri,
    `/api/2.0/mlflow/metrics/get-history?run_id=${runId}&metric_key=${encodeURIComponent(key)}&max_results=100000`,
  );
  return (r.metrics ?? [])
    .map((m) => ({ step: Number(m.step ?? 0), value: m.value, timestamp: Number(m.timestamp) }))
    .sort((a, b) => a.step - b.step || a.timestamp - b.timestamp);
}

/** The artifact paths (files) under `path` of a run, recursively. */
export async function listArtifacts(uri: string, runId: string, path = ''): Promise<string[]> {
  const r = await call<{ files?: { path: string; is_dir: boolean }[] }>(
    uri,
    `/api/2.0/mlflow/artifacts/list?run_id=${runId}${path ? `&path=${encodeURIComponent(path)}` : ''}`,
  );
  const out: string[] = [];
  for (const f of r.files ?? []) {
    if (f.is_dir) out.push(...(await listArtifacts(uri, runId, f.path)));
    else out.push(f.path);
  }
  return out.sort();
}

/** An artifact's bytes, read back through the server's artifact proxy. */
export async function readArtifact(uri: string, artifactUri: string, path: string): Promise<string> {
  const base = artifactUri.replace(/^mlflow-artifacts:(?:\/\/[^/]*)?\/?/, '');
  const res = await fetch(`${uri}/api/2.0/mlflow-artifacts/artifacts/${base}/${path}`);
  if (!res.ok) throw new Error(`artifact ${path}: HTTP ${res.status}`);
  return res.text();
}
