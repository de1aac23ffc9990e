/**
 * The local production-shaped cluster (infra/cluster/cluster.sh: temporal-server on PostgreSQL
 * with mTLS) plus what only a Temporal client can do: create the namespace with its retention and
 * register peftgrid's search attributes through the operator API. The script owns processes, ports
 * and files; this module reads the connection settings back from `cluster.sh env`, so the ports
 * and paths are written down once.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { SEARCH_ATTRIBUTES } from '../src/common/constants';
import { temporalSettings, type TemporalSettings } from '../src/common/temporal-env';
import { REPO_ROOT } from './dev-stack';

export const CLUSTER_SCRIPT = join(REPO_ROOT, 'infra', 'cluster', 'cluster.sh');

/** Retention of closed workflows in the cluster's namespace (ms): long enough to read results back. */
export const CLUSTER_RETENTION_MS = 3 * 24 * 3600 * 1000;

export type ClusterAction =
  'up' | 'down' | 'status' | 'env' | 'server-start' | 'server-stop' | 'server-kill' | 'pg-start' | 'pg-stop';

/** Runs cluster.sh; its progress goes to our stderr, stdout is returned. Throws on a non-zero exit. */
export function clusterScript(action: ClusterAction, env: NodeJS.ProcessEnv = process.env): string {
  const res = spawnSync('bash', [CLUSTER_SCRIPT, action], {
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (res.error) throw res.error;
  if (res.status !== 0 && action !== 'status')
    throw new Error(`infra/cluster/cluster.sh ${action} failed (exit ${res.status})`);
  return res.stdout;
}

/** The TEMPORAL_* variables a client of the cluster exports, as `cluster.sh env` prints them. */
export function clusterEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of clusterScript('env', env).split('\n')) {
    const m = /^export ([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** Connection settings for the cluster (what the CLI and workers read from those variables). */
export function clusterSettings(env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  return temporalSettings({ ...clusterEnv(env) });
}

export async function connectCluster(settings: TemporalSettings): Promise<Connection> {
  return Connection.connect({ address: settings.address, tls: settings.tls, connectTimeout: 10_000 });
}

/**
 * Creates the namespace (idempotent) and registers the search attributes it lacks. Right after
 * the server starts, its namespace registry and the system namespace may lag: retried briefly.
 */
export async function registerNamespace(settings: TemporalSettings, say: (l: string) => void): Promise<void> {
  const conn = await connectCluster(settings);
  try {
    const ns = settings.namespace;
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await conn.workflowService.describeNamespace({ namespace: ns });
        break;
      } catch {
        try {
          await conn.workflowService.registerNamespace({
            namespace: ns,
            workflowExecutionRetentionPeriod: msToTs(CLUSTER_RETENTION_MS),
            description: 'peftgrid experiment grids',
          });
          say(`created namespace ${ns} (retention ${CLUSTER_RETENTION_MS / 3600_000} h)`);
        } catch (err) {
          if (!/already exists/i.test((err as Error).message) && Date.now() > deadline) throw err;
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    const have = await conn.operatorService.listSearchAttributes({ namespace: ns });
    const missing = Object.values(SEARCH_ATTRIBUTES).filter((n) => !(n in (have.customAttributes ?? {})));
    if (missing.length) {
      await conn.operatorService.addSearchAttributes({
        namespace: ns,
        searchAttributes: Object.fromEntries(missing.map((n) => [n, 2])), // 2 = INDEXED_VALUE_TYPE_KEYWORD
      });
      say(`registered search attributes ${missing.join(', ')}`);
    }
  } finally {
    await conn.close();
  }
}

export interface ClusterStatus {
  address: string;
  namespace: string;
  /** The frontend answered over mTLS and the namespace exists with every search attribute. */
  ready: boolean;
  detail: string;
}

export async function clusterStatus(env: NodeJS.ProcessEnv = process.env): Promise<ClusterStatus> {
  const s = clusterSettings(env);
  const base = { address: s.address, namespace: s.namespace };
  try {
    const conn = await connectCluster(s);
    try {
      await conn.workflowService.describeNamespace({ namespace: s.namespace });
      const have = await conn.operatorService.listSearchAttributes({ namespace: s.namespace });
      const missing = Object.values(SEARCH_ATTRIBUTES).filter((n) => !(n in (have.customAttributes ?? {})));
      return missing.length
        ? { ...base, ready: false, detail: `search attributes missing: ${missing.join(', ')}` }
        : { ...base, ready: true, detail: 'namespace and search attributes registered' };
    } finally {
      await conn.close();
    }
  } catch (err) {
    return { ...base, ready: false, detail: (err as Error).message };
  }
}

/** Builds (once) and starts everything, then registers the namespace and search attributes. */
export async function clusterUp(
  say: (l: string) => void,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ClusterStatus> {
  clusterScript('up', env);
  await registerNamespace(clusterSettings(env), say);
  return clusterStatus(env);
}

export function clusterDown(env: NodeJS.ProcessEnv = process.env): void {
  clusterScript('down', env);
}
