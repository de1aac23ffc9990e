/**
 * workers/versioning.ts: the default build id is a pure function of the workflow bundle (so
 * processes with the same code agree), and a versioned worker pins its workflows.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { bundleBuildId, deploymentOptions, resolveDeployment } from '../../workers/versioning';

describe('worker versioning settings', () => {
  it('the default build id is the package version and a hash of the bundle', () => {
    const a = bundleBuildId('workflow code v1', '0.1.0');
    assert.match(a, /^0\.1\.0-[0-9a-f]{12}$/);
    assert.equal(bundleBuildId('workflow code v1', '0.1.0'), a, 'same code, same build id');
    assert.notEqual(bundleBuildId('workflow code v2', '0.1.0'), a, 'changed code, new build id');
    assert.notEqual(bundleBuildId('workflow code v1', '0.2.0'), a, 'new release, new build id');
    assert.match(bundleBuildId('x'), /^\d+\.\d+\.\d+.*-[0-9a-f]{12}$/, 'reads package.json');
  });

  it('a given build id is used as is, without bundling', async () => {
    const r = await resolveDeployment({ deploymentName: 'peftgrid', buildId: 'git-3f2a9c1' }, '/nonexistent');
    assert.deepEqual(r, { version: { deploymentName: 'peftgrid', buildId: 'git-3f2a9c1' } });
  });

  it('versioned workers pin every workflow to their version', () => {
    const version = { deploymentName: 'peftgrid', buildId: 'b1' };
    assert.deepEqual(deploymentOptions(version), {
      workerDeploymentOptions: { version, useWorkerVersioning: true, defaultVersioningBehavior: 'PINNED' },
    });
  });
});
