/**
 * Worker Deployment Versioning on the dev server (`temporal server start-dev` supports worker
 * deployments too): a grid in flight finishes on version 1 while a grid started after the switch
 * runs on version 2, which is a breaking change; then v1 drains and stops. The scenario and what
 * it asserts: test/helpers/versioning-scenario.ts; the cluster tier runs the same on PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { SEARCH_ATTRIBUTE_KEYS } from '../../src/common/constants';
import { TEMPORAL_BIN, scratchDir } from '../helpers/fixtures';
import { runVersioningScenario } from '../helpers/versioning-scenario';
import { startWorkerProcess } from '../helpers/worker-process';

/** The server re-checks a draining version's pinned workflows every 3 min by default. */
const DRAINAGE_DYNAMIC_CONFIG = [
  '--dynamic-config-value',
  'matching.wv.VersionDrainageStatusVisibilityGracePeriod="5s"',
  '--dynamic-config-value',
  'matching.wv.VersionDrainageStatusRefreshInterval="5s"',
];

describe('worker versioning on the dev server', { timeout: 20 * 60_000 }, () => {
  const dir = scratchDir('worker-versioning');
  let env: TestWorkflowEnvironment;

  before(async () => {
    env = await TestWorkflowEnvironment.createLocal({
      server: {
        executable: { type: 'existing-path', path: TEMPORAL_BIN },
        searchAttributes: Object.values(SEARCH_ATTRIBUTE_KEYS),
        extraArgs: DRAINAGE_DYNAMIC_CONFIG,
      },
    });
  });
  after(async () => {
    await env?.teardown();
  });

  it('an in-flight grid finishes on v1, a new grid runs on v2, v1 drains and stops', async () => {
    const namespace = env.namespace ?? 'default';
    const report = await runVersioningScenario({
      client: env.client,
      nativeConnection: env.nativeConnection,
      cliArgs: ['--address', env.address, '--namespace', namespace],
      startWorker: (dataDir, name, extra) =>
        startWorkerProcess(env.address, dataDir, name, 'cpu,gpu', 'debug', { ...extra, TEMPORAL_NAMESPACE: namespace }),
      dir,
      drainTimeoutMs: 2 * 60_000,
    });
    console.log(`VERSIONING (dev server) ${JSON.stringify(report)}`);
  });
});
