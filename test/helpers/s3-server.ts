/**
 * A real S3-compatible server for tests: SeaweedFS (`weed mini`, Apache-2.0) on loopback, built and
 * cached by `infra/bootstrap.sh --with-s3`. Can be stopped and restarted on the same data directory
 * to simulate an object-store outage.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';

export const WEED_BIN =
  process.env.PEFTGRID_WEED_BIN ??
  join(process.env.PEFTGRID_CACHE ?? join(homedir(), '.cache', 'peftgrid'), 'bin', 'weed');

export interface S3Server {
  endpoint: string;
  bucket: string;
  env: Record<string, string>;
  stop(): Promise<void>;
  start(): Promise<void>;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export function weedAvailable(): boolean {
  return existsSync(WEED_BIN);
}

/** Starts `weed mini` with every port derived from `base` (base+0 = S3), data under `dir`. */
export async function startS3Server(
  dir: string,
  base = 28000 + (process.pid % 50) * 20,
  /** Other credentials than the defaults (the secret-scan test uses distinctive ones). */
  keys: { AWS_ACCESS_KEY_ID?: string; AWS_SECRET_ACCESS_KEY?: string } = {},
): Promise<S3Server> {
  if (!weedAvailable())
    throw new Error(`SeaweedFS not found at ${WEED_BIN}: run \`bash infra/bootstrap.sh --with-s3\``);
  mkdirSync(dir, { recursive: true });
  const bucket = 'peftgrid-test';
  const env = {
    AWS_ACCESS_KEY_ID: 'peftgrid',
    AWS_SECRET_ACCESS_KEY: 'peftgrid-test-secret',
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL: `http://127.0.0.1:${base}`,
    ...keys,
  };
  const ports = {
    's3.port': base,
    'master.port': base + 1,
    'volume.port': base + 2,
    'filer.port': base + 3,
    'webdav.port': base + 4,
    'admin.port': base + 5,
    'master.port.grpc': base + 11,
    'volume.port.grpc': base + 12,
    'filer.port.grpc': base + 13,
    's3.port.grpc': base + 14,
    'admin.port.grpc': base + 15,
    'admin.port.legacy': 0,
    's3.port.iceberg': 0,
    's3.port.lance': 0,
  };
  let child: ChildProcess | undefined;
  const start = async () => {
    const log = openSync(join(dir, 'weed.log'), 'a');
    child = spawn(
      WEED_BIN,
      [
        'mini',
        `-dir=${join(dir, 'data')}`,
        '-ip=127.0.0.1',
        '-ip.bind=127.0.0.1',
        '-admin.ui=false',
        ...Object.entries(ports).map(([k, v]) => `-${k}=${v}`),
      ],
      {
        env: { ...process.env, ...env, S3_BUCKET: bucket },
        stdio: ['ignore', log, log],
        detached: true,
      },
    );
    closeSync(log);
    mkdirSync(join(dir, 'data'), { recursive: true });
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (await portOpen(base)) {
        // The S3 port opens before the bucket exists; give the filer a moment to create it.
        await new Promise((r) => setTimeout(r, 1500));
        return;
      }
      if (child.exitCode !== null) throw new Error(`weed exited with ${child.exitCode}; see ${join(dir, 'weed.log')}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    throw new Error(`SeaweedFS did not open port ${base} within 60 s; see ${join(dir, 'weed.log')}`);
  };
  const stop = async () => {
    if (!child || child.exitCode !== null) return;
    const c = child;
    const exited = new Promise((r) => c.once('exit', r));
    try {
      process.kill(-c.pid!, 'SIGTERM');
    } catch {
      /* gone */
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-c.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, 10_000);
    await exited;
    clearTimeout(timer);
    while (await portOpen(base)) await new Promise((r) => setTimeout(r, 200));
  };
  // weed runs in its own process group (so stop() can signal all of it); make sure a test
  // process that dies early does not leave it behind.
  process.once('exit', () => {
    if (child && child.exitCode === null)
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
  });
  await start();
  return { endpoint: env.AWS_ENDPOINT_URL, bucket, env, stop, start };
}
