/**
 * Worker Deployment Versioning: a worker of deployment `peftgrid` with build id B only receives
 * tasks of workflows that run on version `peftgrid:B`. Workflows are PINNED: a grid runs for
 * hours or days, so it finishes on the code it started on, even after a newer version becomes
 * the deployment's current version (`temporal worker deployment set-current-version`). New grids
 * start on the current version. Off unless a deployment name is given (PEFTGRID_DEPLOYMENT or
 * `--deployment`): the dev stack and single-machine setups stay unversioned.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkerDeploymentVersion } from '@temporalio/common';
import { bundleWorkflowCode, Runtime, type WorkerOptions } from '@temporalio/worker';

/** Where a process's workers are versioned, as read from the environment or flags. */
export interface DeploymentSettings {
  /** The worker deployment (one per application: every peftgrid worker of a cluster shares it). */
  deploymentName: string;
  /** This release's build id. @default {@link bundleBuildId} of the workflow bundle */
  buildId?: string;
}

/** A resolved version, plus the workflow bundle when one was built to derive the build id. */
export interface ResolvedDeployment {
  version: WorkerDeploymentVersion;
  /** The cpu worker runs this bundle, so the code that was hashed is the code that runs. */
  workflowBundle?: { code: string };
}

/** Hex digits of the bundle's sha256 in a default build id: 48 bits, no collision among releases. */
const BUILD_ID_HASH_CHARS = 12;

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
}

/**
 * The default build id: package version + hash of the workflow bundle (`0.1.0-3f2a…`). Processes
 * with the same workflow code and dependencies agree on it without being told, and any change to
 * what the workflows execute (their code, the SDK's, a bundled helper) gives a new version.
 */
export function bundleBuildId(code: string, version = packageVersion()): string {
  return `${version}-${createHash('sha256').update(code).digest('hex').slice(0, BUILD_ID_HASH_CHARS)}`;
}

/**
 * Resolves the version a process's workers announce. Without a build id the workflow code is
 * bundled (what the cpu worker would do anyway) and hashed: a gpu-only process bundles too, so
 * its activities are registered in the same version as the workflows that schedule them.
 */
export async function resolveDeployment(
  settings: DeploymentSettings,
  workflowsPath = require.resolve('../workflows'),
): Promise<ResolvedDeployment> {
  if (settings.buildId) return { version: { deploymentName: settings.deploymentName, buildId: settings.buildId } };
  // The Runtime's logger, as Worker.create bundles: PEFTGRID_SDK_LOG_LEVEL quiets webpack's stats too.
  const { code } = await bundleWorkflowCode({ workflowsPath, logger: Runtime.instance().logger });
  return {
    version: { deploymentName: settings.deploymentName, buildId: bundleBuildId(code) },
    workflowBundle: { code },
  };
}

/** WorkerOptions of a versioned worker: this version, every workflow PINNED to it. */
export function deploymentOptions(version: WorkerDeploymentVersion): Pick<WorkerOptions, 'workerDeploymentOptions'> {
  return { workerDeploymentOptions: { version, useWorkerVersioning: true, defaultVersioningBehavior: 'PINNED' } };
}
