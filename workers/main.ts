/**
 * Worker process: `node --import tsx workers/main.ts [--queues cpu,gpu] [--deployment NAME
 * [--build-id ID]]`. Configured purely by environment (see src/common/temporal-env.ts; each flag
 * defaults to its variable), so the same process runs on a laptop or a cluster.
 * SIGINT/SIGTERM shut it down gracefully: running training checkpoints before the process exits.
 */
import { parseArgs } from 'node:util';
import { DefaultLogger, NativeConnection, Runtime, type LogLevel } from '@temporalio/worker';
import {
  cpuSlots as envCpuSlots,
  deploymentEnv,
  gpuSlots as envGpuSlots,
  queuesEnv,
  sdkLogLevel,
} from '../src/common/env';
import { logger } from '../src/common/logger';
import { connectChecked, TemporalConnectError } from '../src/common/temporal-connect';
import { temporalSettings } from '../src/common/temporal-env';
import { type QueueKind } from '../src/common/constants';
import { trainerKillGraceMs, workerShutdownMs } from '../src/common/shutdown';
import { createWorkers } from './create';
import { metricsSettings, sdkTelemetryOptions, startMetricsServer } from './metrics';
import { resolveDeployment } from './versioning';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      queues: { type: 'string', default: queuesEnv() },
      deployment: { type: 'string' },
      'build-id': { type: 'string' },
    },
  });
  const queues = String(values.queues)
    .split(',')
    .map((q) => q.trim())
    .filter(Boolean);
  for (const q of queues)
    if (q !== 'cpu' && q !== 'gpu') throw new TypeError(`--queues: got "${q}", expected cpu and/or gpu`);
  // Checked before connecting: a bad PEFTGRID_WORKER_SHUTDOWN_MS is a configuration error, not a retry.
  const shutdownMs = workerShutdownMs();
  const gpuSlots = envGpuSlots();
  const cpuSlots = envCpuSlots();
  // A flag overrides its variable; both go through the same checks (errors name the variable).
  const deployment = deploymentEnv({
    ...process.env,
    ...(values.deployment !== undefined ? { PEFTGRID_DEPLOYMENT: values.deployment } : {}),
    ...(values['build-id'] !== undefined ? { PEFTGRID_BUILD_ID: values['build-id'] } : {}),
  });
  // The SDK's own log lines are noisy at INFO; peftgrid logs what matters through pino.
  // PEFTGRID_METRICS_PORT turns on /metrics (run progress + the SDK's own metrics); off by default.
  const metrics = metricsSettings();
  Runtime.install({
    logger: new DefaultLogger(sdkLogLevel() satisfies LogLevel),
    ...(metrics ? { telemetryOptions: sdkTelemetryOptions(metrics) } : {}),
  });
  const metricsServer = metrics
    ? await startMetricsServer({ port: metrics.port, host: metrics.host, sdkAddress: metrics.sdkBindAddress })
    : null;
  const settings = temporalSettings();
  // Bounded: a worker pointed at the wrong place exits 1 saying why, not retrying for ever.
  const connection = await connectChecked(settings, (options) => NativeConnection.connect(options));
  const resolved = deployment ? await resolveDeployment(deployment) : undefined;
  const workers = await createWorkers({
    connection,
    namespace: settings.namespace,
    queues: queues as QueueKind[],
    gpuSlots,
    cpuSlots,
    deployment: resolved,
  });
  logger.info(
    {
      address: settings.address,
      namespace: settings.namespace,
      queues,
      deployment: resolved?.version.deploymentName,
      buildId: resolved?.version.buildId,
      metricsPort: metricsServer?.port,
      shutdownMs,
      trainerKillGraceMs: trainerKillGraceMs(shutdownMs),
    },
    'worker started',
  );
  // Until its version is the deployment's current one, a versioned worker gets only the tasks of
  // workflows pinned to it: on a first deployment, none. Say how to switch (docs/operations.md).
  if (resolved) {
    const { deploymentName, buildId } = resolved.version;
    logger.info(
      { deployment: deploymentName, buildId },
      `new grids reach this version once it is current: temporal worker deployment set-current-version --deployment-name ${deploymentName} --build-id ${buildId}`,
    );
  }
  try {
    await Promise.all(workers.map((w) => w.run()));
  } finally {
    await connection.close();
    await metricsServer?.close();
  }
  logger.info('worker stopped');
}

main().catch((err) => {
  // A connection problem is a sentence for the operator, not a stack trace.
  if (err instanceof TemporalConnectError) logger.error({ problem: err.problem }, err.message);
  else logger.error({ err }, 'worker failed');
  process.exit(1);
});
