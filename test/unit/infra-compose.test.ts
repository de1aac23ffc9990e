/**
 * infra/compose/docker-compose.yml, parsed (anchors and merge keys resolved as Compose does) and
 * checked for what the stack needs to be right: services, worker env, one GPU per gpu worker, a
 * stop grace period that outlasts the checkpoint upload, the search-attribute job, the Dockerfile.
 * Where a Compose client is installed, its own `config` validation runs too.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { SEARCH_ATTRIBUTES } from '../../src/common/constants';
import { REPO } from '../helpers/fixtures';
import { durationSeconds, gpuShutdownForceSeconds, knownEnvVars, quantityBytes, studyRunNeeds } from './infra-shared';

const DIR = join(REPO, 'infra', 'compose');
const FILE = join(DIR, 'docker-compose.yml');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  stop_grace_period?: string;
  entrypoint?: string[];
  command?: string[];
  volumes?: string[];
  profiles?: string[];
  shm_size?: string;
  deploy?: {
    resources?: {
      limits?: { memory?: string };
      reservations?: {
        devices?: Array<{ driver?: string; device_ids?: string[]; count?: number; capabilities?: string[] }>;
      };
    };
  };
}

const compose = parse(readFileSync(FILE, 'utf8'), { merge: true }) as { services: Record<string, Service> };
const services = compose.services;
const workers = Object.entries(services).filter(([, s]) => s.environment?.PEFTGRID_QUEUES);
const gpuWorkers = workers.filter(([, s]) => s.environment!.PEFTGRID_QUEUES === 'gpu');
const cpuWorkers = workers.filter(([, s]) => s.environment!.PEFTGRID_QUEUES === 'cpu');

describe('infra/compose/docker-compose.yml', () => {
  it('has the production-shaped stack: Temporal on PostgreSQL, UI, SeaweedFS, workers', () => {
    const image = (name: string) => services[name]?.image ?? '';
    assert.match(image('postgresql'), /^postgres:/);
    assert.match(image('temporal'), /^temporalio\/(server|auto-setup):/);
    assert.equal(services.temporal!.environment!.DB, 'postgres12');
    assert.match(image('temporal-schema'), /^temporalio\/admin-tools:/);
    assert.equal(services.temporal!.depends_on!['temporal-schema']!.condition, 'service_completed_successfully');
    assert.match(image('temporal-ui'), /^temporalio\/ui:/);
    assert.match(image('seaweedfs'), /^chrislusf\/seaweedfs:/);
    const all = JSON.stringify(compose).toLowerCase();
    assert.ok(!all.includes('minio/'), 'no MinIO image');
    assert.ok(cpuWorkers.length >= 1, 'a cpu worker');
    assert.ok(gpuWorkers.length >= 2, 'one gpu worker per GPU (two in the example)');
  });

  it('configures workers purely by environment, with only variables the code reads', () => {
    const known = knownEnvVars();
    for (const [name, s] of workers) {
      const env = s.environment!;
      for (const k of [
        'TEMPORAL_ADDRESS',
        'TEMPORAL_NAMESPACE',
        'AWS_ACCESS_KEY_ID',
        'AWS_SECRET_ACCESS_KEY',
        'AWS_ENDPOINT_URL',
        'PEFTGRID_QUEUES',
        'PEFTGRID_DATA_DIR',
      ]) {
        assert.ok(env[k], `${name}: ${k} is set`);
      }
      for (const k of Object.keys(env)) assert.ok(known.has(k), `${name}: ${k} is read by nothing (typo?)`);
      assert.equal(env.TEMPORAL_ADDRESS, 'temporal:7233');
      assert.match(env.AWS_ENDPOINT_URL!, /seaweedfs:8333/);
      assert.equal(s.build?.dockerfile, 'infra/docker/Dockerfile.worker');
      assert.equal(
        s.depends_on?.['temporal-init']?.condition,
        'service_completed_successfully',
        `${name} starts after the search attributes exist`,
      );
      assert.ok(
        s.command === undefined && s.entrypoint === undefined,
        `${name}: role comes from PEFTGRID_QUEUES, not a command`,
      );
    }
  });

  it('gives each gpu worker exactly one distinct NVIDIA GPU and one training slot', () => {
    const ids = new Set<string>();
    for (const [name, s] of gpuWorkers) {
      const devices = s.deploy?.resources?.reservations?.devices ?? [];
      assert.equal(devices.length, 1, `${name}: one device reservation`);
      const d = devices[0]!;
      assert.equal(d.driver, 'nvidia');
      assert.ok(d.capabilities?.includes('gpu'));
      assert.equal(d.device_ids?.length, 1, `${name}: pinned to one GPU`);
      assert.ok(!ids.has(d.device_ids![0]!), `${name}: GPU ${d.device_ids![0]} is already taken`);
      ids.add(d.device_ids![0]!);
      assert.equal(s.environment!.PEFTGRID_GPU_SLOTS, '1');
      assert.equal(s.environment!.CUDA_VISIBLE_DEVICES, '0', 'the one reserved GPU is device 0 inside the container');
    }
    for (const [name, s] of cpuWorkers)
      assert.equal(s.deploy?.resources?.reservations?.devices, undefined, `${name} holds no GPU`);
  });

  it('puts gpu workers behind profiles: none without one, one with `gpu`, all with `gpu-multi`', () => {
    const inProfile = (p: string) => gpuWorkers.filter(([, s]) => s.profiles?.includes(p)).map(([n]) => n);
    assert.deepEqual(inProfile('gpu'), ['gpu-worker-0'], 'a 1-GPU host starts with --profile gpu');
    assert.deepEqual(
      inProfile('gpu-multi'),
      gpuWorkers.map(([n]) => n),
    );
    for (const [name, s] of gpuWorkers) assert.ok(s.profiles?.length, `${name} starts only under a profile`);
    // Everything else starts with no profile, so a host without GPUs runs the rest of the stack.
    for (const [name, s] of Object.entries(services))
      if (!gpuWorkers.some(([n]) => n === name)) assert.equal(s.profiles, undefined, `${name} has no profile`);
    assert.ok(
      !Object.values(services).some((s) => Object.keys(s.depends_on ?? {}).some((d) => d.startsWith('gpu-worker'))),
      'nothing depends on a gpu worker (it may not be started)',
    );
  });

  it('sizes workers for a 7B study run from the estimate in trainer/resources.py', () => {
    const need = studyRunNeeds();
    for (const [name, s] of gpuWorkers) {
      const limit = quantityBytes(s.deploy?.resources?.limits?.memory ?? '0');
      assert.ok(limit >= need.hostBytes, `${name}: memory limit < ${(need.hostBytes / 2 ** 30).toFixed(1)} GiB`);
      assert.ok(quantityBytes(s.shm_size ?? '0') >= 2 ** 30, `${name}: shm_size (Docker's default is 64 MB)`);
    }
    for (const [name, s] of cpuWorkers)
      assert.ok(quantityBytes(s.deploy?.resources?.limits?.memory ?? '0') >= need.hostBytes, `${name}: memory limit`);
  });

  it('lets a gpu worker checkpoint and upload before Docker kills it', () => {
    for (const [name, s] of gpuWorkers) {
      const force = gpuShutdownForceSeconds(s.environment);
      assert.ok(s.stop_grace_period, `${name}: stop_grace_period set (Docker's default is 10 s)`);
      const stop = durationSeconds(s.stop_grace_period!);
      assert.ok(
        stop >= force + 15,
        `${name}: stop_grace_period ${s.stop_grace_period} < worker shutdown ${force}s + 15 s`,
      );
      assert.ok(
        stop <= force + 60,
        `${name}: stop_grace_period ${s.stop_grace_period} > worker shutdown ${force}s + 60 s: update it with the setting`,
      );
    }
  });

  it('registers every search attribute of src/common/constants.ts as Keyword in a one-shot job', () => {
    const init = services['temporal-init']!;
    assert.match(init.image!, /^temporalio\/admin-tools:/);
    assert.equal(init.depends_on!.temporal!.condition, 'service_healthy');
    const script = init.entrypoint!.find((a) => a.startsWith('/scripts/'))!;
    const text = readFileSync(join(DIR, 'scripts', script.replace('/scripts/', '')), 'utf8');
    assert.match(text, /--type Keyword/);
    for (const name of Object.values(SEARCH_ATTRIBUTES))
      assert.match(text, new RegExp(`\\b${name}\\b`), `${name} registered`);
    const schema = services['temporal-schema']!.entrypoint!.find((a) => a.startsWith('/scripts/'))!;
    assert.ok(existsSync(join(DIR, 'scripts', schema.replace('/scripts/', ''))));
  });

  it('every ${VAR} it reads is in .env.example', () => {
    const example = new Set(
      readFileSync(join(DIR, '.env.example'), 'utf8')
        .split('\n')
        .map((l) => /^([A-Z0-9_]+)=/.exec(l)?.[1])
        .filter(Boolean),
    );
    for (const m of readFileSync(FILE, 'utf8').matchAll(/\$\{([A-Z0-9_]+)/g))
      assert.ok(example.has(m[1]!), `${m[1]} missing from .env.example`);
  });

  it('the worker Dockerfile builds node + the trainer venv and copies only what exists', () => {
    const df = readFileSync(join(REPO, 'infra', 'docker', 'Dockerfile.worker'), 'utf8');
    assert.match(df, /pip install[^\n]*-r trainer\/requirements\.txt/);
    assert.match(df, /npm ci/);
    assert.match(df, /ENTRYPOINT \[[^\]]*"workers\/main\.ts"\]/);
    assert.match(df, /PEFTGRID_PYTHON=\/app\/\.venv\/bin\/python/);
    for (const m of df.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const src of m[1]!.split(/\s+/))
        assert.ok(existsSync(join(REPO, src)), `COPY ${src}: not in the repository`);
    }
  });

  const client = (() => {
    if (spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0) return ['docker', 'compose'];
    if (spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0) return ['docker-compose'];
    return null;
  })();
  it('passes `docker compose config`', { skip: client ? false : 'no Compose client installed' }, () => {
    const res = spawnSync(
      client![0]!,
      [...client!.slice(1), '-f', FILE, '--env-file', join(DIR, '.env.example'), 'config', '-q'],
      { encoding: 'utf8' },
    );
    assert.equal(res.status, 0, res.stderr);
  });
});
