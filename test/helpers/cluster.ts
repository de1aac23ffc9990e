/**
 * The cluster tier's setup: the local production-shaped Temporal (infra/cluster: temporal-server on
 * PostgreSQL with mTLS) brought up once (idempotent; the first run builds the server), a client
 * and worker processes that connect exactly as production does, through TEMPORAL_* variables.
 */
import { Client, Connection } from '@temporalio/client';
import { clusterEnv, clusterScript, clusterSettings, clusterUp } from '../../infra/cluster-stack';
import type { TemporalSettings } from '../../src/common/temporal-env';
import { startWorkerProcess, type WorkerProcess } from './worker-process';

export interface ClusterHandle {
  settings: TemporalSettings;
  /** TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_CERT/KEY/CA as `cluster up` prints them. */
  env: Record<string, string>;
  connection: Connection;
  client: Client;
}

/** Brings the cluster up (no-op when it is) and connects a client with the cluster's mTLS settings. */
export async function ensureCluster(): Promise<ClusterHandle> {
  const t0 = Date.now();
  await clusterUp((l) => console.log(`[cluster] ${l}`));
  console.log(`[cluster] up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const settings = clusterSettings();
  const connection = await Connection.connect({ address: settings.address, tls: settings.tls, connectTimeout: 10_000 });
  return { settings, env: clusterEnv(), connection, client: new Client({ connection, namespace: settings.namespace }) };
}

/**
 * A worker process on the cluster: the cluster's TEMPORAL_* variables plus `extraEnv` (metrics
 * port, secrets under test). `startWorkerProcess` inherits process.env, so they are set around it.
 */
export function clusterWorker(
  h: ClusterHandle,
  dataDir: string,
  name: string,
  o: { queues?: string; logLevel?: string; env?: Record<string, string> } = {},
): WorkerProcess {
  const saved = { ...process.env };
  Object.assign(process.env, h.env, o.env ?? {});
  try {
    return startWorkerProcess(h.settings.address, dataDir, name, o.queues ?? 'cpu,gpu', o.logLevel ?? 'debug');
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

/** cluster.sh actions the fault tests use (SIGKILL the server, start it again, stop PostgreSQL …). */
export const clusterCtl = {
  killServer: () => clusterScript('server-kill'),
  startServer: () => clusterScript('server-start'),
  stopPostgres: () => clusterScript('pg-stop'),
  startPostgres: () => clusterScript('pg-start'),
};

/** The temporal CLI's flags for the cluster (address, namespace, the client certificate over mTLS). */
export function clusterCliArgs(h: ClusterHandle, namespace: string): string[] {
  return [
    '--address',
    h.env.TEMPORAL_ADDRESS!,
    '--namespace',
    namespace,
    '--tls-cert-path',
    h.env.TEMPORAL_TLS_CERT!,
    '--tls-key-path',
    h.env.TEMPORAL_TLS_KEY!,
    '--tls-ca-path',
    h.env.TEMPORAL_TLS_CA!,
  ];
}
