/**
 * src/common/env.ts: every variable peftgrid reads parses with a schema; a bad value is an error
 * that names the variable, the value and what was expected (never NaN, never a silent default).
 */
import { strict as assert } from 'node:assert';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  checkpointRetryMsEnv,
  cpuSlots,
  deploymentEnv,
  devStackEnv,
  EnvError,
  engineRunIn,
  gpuSlots,
  logLevel,
  metricsEnv,
  s3Env,
  sdkLogLevel,
  workerShutdownMsEnv,
  type Env,
} from '../../src/common/env';
import { REPO } from '../helpers/fixtures';

const BAD: Array<[string, string, (env: Env) => unknown]> = [
  ['PEFTGRID_GPU_SLOTS', 'abc', gpuSlots],
  ['PEFTGRID_GPU_SLOTS', '0', gpuSlots],
  ['PEFTGRID_GPU_SLOTS', '1.5', gpuSlots],
  ['PEFTGRID_CPU_SLOTS', '-1', cpuSlots],
  ['PEFTGRID_SDK_LOG_LEVEL', 'loud', sdkLogLevel],
  ['PEFTGRID_WORKER_SHUTDOWN_MS', '180s', (env) => workerShutdownMsEnv(30_000, env)],
  ['PEFTGRID_METRICS_PORT', '70000', metricsEnv],
  ['PEFTGRID_CHECKPOINT_RETRY_MS', 'soon', checkpointRetryMsEnv],
  ['PEFTGRID_ENGINE_RUN_IN', 'thread', engineRunIn],
  ['PEFTGRID_S3_MAX_ATTEMPTS', 'many', s3Env],
  ['PEFTGRID_LOG_LEVEL', 'chatty', logLevel],
  ['LOG_LEVEL', 'chatty', logLevel],
  ['PEFTGRID_TEMPORAL_PORT', '7233x', devStackEnv],
  ['PEFTGRID_UI_PORT', '0', devStackEnv],
  ['PEFTGRID_DEPLOYMENT', 'peftgrid.prod', deploymentEnv],
  ['PEFTGRID_DEPLOYMENT', 'peftgrid:prod', deploymentEnv],
  ['PEFTGRID_DEPLOYMENT', '__peftgrid', deploymentEnv],
  ['PEFTGRID_DEPLOYMENT', 'x'.repeat(256), deploymentEnv],
  ['PEFTGRID_BUILD_ID', '__unversioned__', (env) => deploymentEnv({ PEFTGRID_DEPLOYMENT: 'peftgrid', ...env })],
  // A build id alone versions nothing: an error, not a silently unversioned worker.
  ['PEFTGRID_BUILD_ID', 'v2', deploymentEnv],
];

describe('environment variables', () => {
  for (const [name, value, read] of BAD) {
    it(`${name}=${value} is an error naming the variable, the value and what was expected`, () => {
      assert.throws(
        () => read({ [name]: value }),
        (err: Error) =>
          err instanceof EnvError &&
          err instanceof TypeError &&
          err.message.includes(name) &&
          err.message.includes(JSON.stringify(value)) &&
          /expected \S/.test(err.message),
      );
    });
  }

  it('unset or empty means the default', () => {
    for (const env of [{}, { PEFTGRID_GPU_SLOTS: '', PEFTGRID_CPU_SLOTS: '', PEFTGRID_S3_MAX_ATTEMPTS: '' }]) {
      assert.equal(gpuSlots(env), 1);
      assert.equal(cpuSlots(env), 4);
      assert.equal(sdkLogLevel(env), 'WARN');
      assert.equal(engineRunIn(env), 'process');
      assert.equal(logLevel(env), 'info');
      assert.equal(metricsEnv(env), null);
      assert.equal(deploymentEnv(env), null);
      assert.equal(checkpointRetryMsEnv(env), undefined);
      assert.deepEqual(s3Env(env), { region: 'us-east-1', maxAttempts: 5 });
    }
  });

  it('parses good values', () => {
    assert.equal(gpuSlots({ PEFTGRID_GPU_SLOTS: '8' }), 8);
    assert.equal(cpuSlots({ PEFTGRID_CPU_SLOTS: ' 2 ' }), 2);
    assert.equal(checkpointRetryMsEnv({ PEFTGRID_CHECKPOINT_RETRY_MS: '0' }), 0);
    assert.equal(logLevel({ LOG_LEVEL: 'debug' }), 'debug');
    assert.equal(logLevel({ PEFTGRID_LOG_LEVEL: 'warn', LOG_LEVEL: 'debug' }), 'warn');
    assert.deepEqual(
      s3Env({ AWS_ENDPOINT_URL: 'http://127.0.0.1:8333', AWS_REGION: 'eu-west-1', PEFTGRID_S3_MAX_ATTEMPTS: '2' }),
      { endpoint: 'http://127.0.0.1:8333', region: 'eu-west-1', maxAttempts: 2 },
    );
    assert.deepEqual(deploymentEnv({ PEFTGRID_DEPLOYMENT: 'peftgrid' }), { deploymentName: 'peftgrid' });
    assert.deepEqual(deploymentEnv({ PEFTGRID_DEPLOYMENT: ' peftgrid ', PEFTGRID_BUILD_ID: '0.2.0-rc.1' }), {
      deploymentName: 'peftgrid',
      buildId: '0.2.0-rc.1',
    });
    assert.deepEqual(devStackEnv({ PEFTGRID_TEMPORAL_PORT: '7300' }), {
      temporalPort: 7300,
      uiPort: undefined,
      temporalBin: undefined,
    });
  });

  it('reads the environment at call time, not at import', () => {
    const prev = process.env.PEFTGRID_GPU_SLOTS;
    try {
      process.env.PEFTGRID_GPU_SLOTS = '3';
      assert.equal(gpuSlots(), 3);
      process.env.PEFTGRID_GPU_SLOTS = 'x';
      assert.throws(() => gpuSlots(), /PEFTGRID_GPU_SLOTS: got "x"/);
    } finally {
      if (prev === undefined) delete process.env.PEFTGRID_GPU_SLOTS;
      else process.env.PEFTGRID_GPU_SLOTS = prev;
    }
  });

  it('is the only module that reads PEFTGRID_*, TEMPORAL_* or AWS_* from process.env', () => {
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.ts') && p !== join(REPO, 'src', 'common', 'env.ts')) {
          const text = readFileSync(p, 'utf8');
          if (/process\.env\.(PEFTGRID_|TEMPORAL_|AWS_)|process\.env\[/.test(text))
            offenders.push(p.slice(REPO.length + 1));
        }
      }
    };
    for (const dir of ['src', 'activities', 'workers', 'workflows', 'infra']) walk(join(REPO, dir));
    assert.deepEqual(offenders, []);
  });
});
