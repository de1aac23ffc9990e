/**
 * Worker versioning on the cluster (temporal-server on PostgreSQL, mTLS): a breaking workflow
 * change deploys without breaking grids in flight. Grid A starts on version 1 (a worker process,
 * PEFTGRID_DEPLOYMENT set); version 2 workers (test/fixtures/workflows-v2: a timer before the
 * grid's first command) come up and are made current with `temporal worker deployment
 * set-current-version`; A finishes on v1 code, grid B started after the switch runs and completes
 * on v2, A's history fails replay on v2 code, and v1 drains and stops. The scenario and its
 * assertions: test/helpers/versioning-scenario.ts.
 */
import { after, before, describe, it } from 'node:test';
import { Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { registerNamespace } from '../../infra/cluster-stack';
import { clusterCliArgs, clusterWorker, ensureCluster, type ClusterHandle } from '../helpers/cluster';
import { scratchDir } from '../helpers/fixtures';
import { runVersioningScenario } from '../helpers/versioning-scenario';

describe('worker versioning on the cluster', { timeout: 20 * 60_000 }, () => {
  const dir = scratchDir('cluster-versioning');
  // A namespace of its own: run ids are content-derived, and deployments are per namespace.
  const namespace = `peftgrid-vers-${Date.now().toString(36)}`;
  let h: ClusterHandle;
  let native: NativeConnection | undefined;

  before(async () => {
    h = await ensureCluster();
    await registerNamespace({ ...h.settings, namespace }, (l) => console.log(`[cluster] ${l}`));
    native = await NativeConnection.connect({ address: h.settings.address, tls: h.settings.tls });
  });
  after(async () => {
    await native?.close();
    await h?.connection.close().catch(() => undefined);
  });

  it('an in-flight grid finishes on v1, a new grid runs on v2, v1 drains and stops', async () => {
    const report = await runVersioningScenario({
      client: new Client({ connection: h.connection, namespace }),
      nativeConnection: native!,
      cliArgs: clusterCliArgs(h, namespace),
      startWorker: (dataDir, name, env) =>
        clusterWorker(h, dataDir, name, { env: { ...env, TEMPORAL_NAMESPACE: namespace } }),
      dir,
      // cluster.sh sets the drainage re-check to 10 s + 10 s grace.
      drainTimeoutMs: 2 * 60_000,
    });
    console.log(`VERSIONING (cluster) ${JSON.stringify(report)}`);
  });
});
