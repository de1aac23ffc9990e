/**
 * The SIGTERM budget is one setting (src/common/constants.ts): the worker's shutdown time, from
 * PEFTGRID_WORKER_SHUTDOWN_MS parsed strictly, and the trainer's SIGKILL grace derived from it.
 * (The k8s / Compose grace periods are checked against it in infra-k8s / infra-compose.)
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  SHUTDOWN_REPORT_MS,
  SHUTDOWN_UPLOAD_SHARE,
  WORKER_SHUTDOWN_DEFAULT_MS,
  WORKER_SHUTDOWN_MIN_MS,
} from '../../src/common/constants';
import { trainerKillGraceMs, workerShutdownMs } from '../../src/common/shutdown';
import { REPO } from '../helpers/fixtures';

describe('worker shutdown time and the trainer grace', () => {
  it('defaults to 180 s and takes an integer override in ms', () => {
    assert.equal(workerShutdownMs({}), 180_000);
    assert.equal(WORKER_SHUTDOWN_DEFAULT_MS, 180_000);
    assert.equal(workerShutdownMs({ PEFTGRID_WORKER_SHUTDOWN_MS: '' }), 180_000);
    assert.equal(workerShutdownMs({ PEFTGRID_WORKER_SHUTDOWN_MS: '600000' }), 600_000);
    assert.equal(
      workerShutdownMs({ PEFTGRID_WORKER_SHUTDOWN_MS: String(WORKER_SHUTDOWN_MIN_MS) }),
      WORKER_SHUTDOWN_MIN_MS,
    );
  });

  it('rejects anything but an integer >= the minimum, naming the variable, the value and what was expected', () => {
    for (const bad of ['180s', 'abc', '1e5', '-5', '12.5', '0x100', String(WORKER_SHUTDOWN_MIN_MS - 1)]) {
      assert.throws(
        () => workerShutdownMs({ PEFTGRID_WORKER_SHUTDOWN_MS: bad }),
        (err: Error) =>
          err instanceof TypeError &&
          err.message.includes('PEFTGRID_WORKER_SHUTDOWN_MS') &&
          err.message.includes(JSON.stringify(bad)) &&
          /expected an integer number of milliseconds >= 30000/.test(err.message),
        bad,
      );
    }
  });

  it('derives the trainer SIGKILL grace: a third of the shutdown stays for the upload, 5 s for the report', () => {
    assert.equal(trainerKillGraceMs(180_000), 115_000);
    for (const ms of [WORKER_SHUTDOWN_MIN_MS, 180_000, 600_000, 3_600_000]) {
      const grace = trainerKillGraceMs(ms);
      assert.ok(grace >= 10_000, `${ms}: grace ${grace} leaves the trainer time for a step and a save`);
      assert.ok(
        ms - grace >= ms * SHUTDOWN_UPLOAD_SHARE + SHUTDOWN_REPORT_MS - 1,
        `${ms}: upload + report fit after the SIGKILL`,
      );
    }
    const prev = process.env.PEFTGRID_WORKER_SHUTDOWN_MS;
    process.env.PEFTGRID_WORKER_SHUTDOWN_MS = '300000';
    try {
      assert.equal(trainerKillGraceMs(), 195_000, 'the default argument reads the environment');
    } finally {
      if (prev === undefined) delete process.env.PEFTGRID_WORKER_SHUTDOWN_MS;
      else process.env.PEFTGRID_WORKER_SHUTDOWN_MS = prev;
    }
  });

  it('is the only source: the gpu worker and the trainer process use it, with no literal left', () => {
    const create = readFileSync(join(REPO, 'workers', 'create.ts'), 'utf8');
    assert.match(create, /shutdownForceTime: shutdownMs/);
    assert.match(create, /const shutdownMs = workerShutdownMs\(\)/);
    const proc = readFileSync(join(REPO, 'activities', 'trainer-process.ts'), 'utf8');
    assert.match(proc, /opts\.killGraceMs \?\? trainerKillGraceMs\(\)/);
    assert.doesNotMatch(proc, /30_000|30000/);
  });
});
