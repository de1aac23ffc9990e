/**
 * Bad input at the connection: the CLI and a worker pointed at a server that cannot be reached
 * (a refused port, and one that accepts TCP but never answers) exit 1 within the bounded connect
 * timeout and name the address and namespace. Wrong TLS certificates, a wrong namespace and a
 * missing search attribute need a real server: test/cluster/cluster-bad-input.test.ts.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO } from '../helpers/fixtures';

/** A TCP port that accepts and then says nothing: the worst case for a client's connect. */
function silentServer(): Promise<{ port: number; close: () => void }> {
  return new Promise((resolve) => {
    const sockets: Socket[] = [];
    const s = createServer((sock) => sockets.push(sock));
    s.listen(0, '127.0.0.1', () =>
      resolve({
        port: (s.address() as { port: number }).port,
        close: () => {
          sockets.forEach((x) => x.destroy());
          s.close();
        },
      }),
    );
  });
}

describe('CLI and worker against a server that cannot be reached', { timeout: 120_000 }, () => {
  const env = (address: string) => ({ ...process.env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: 'peftgrid' });

  it('the CLI exits 1 naming the address and namespace (refused port and a silent one)', async () => {
    const silent = await silentServer();
    try {
      for (const address of ['127.0.0.1:9', `127.0.0.1:${silent.port}`]) {
        const t0 = Date.now();
        const res = spawnSync(process.execPath, [join(REPO, 'bin', 'peftgrid.js'), 'grid', 'list'], {
          env: env(address),
          encoding: 'utf8',
          timeout: 60_000,
        });
        assert.equal(res.status, 1, res.stderr);
        assert.match(res.stderr, new RegExp(`Temporal at ${address.replace(/\./g, '\\.')} \\(namespace peftgrid\\)`));
        assert.ok(Date.now() - t0 < 30_000, `took ${Date.now() - t0} ms`);
      }
    } finally {
      silent.close();
    }
  });

  it('a worker exits 1 naming the address and namespace', () => {
    const res = spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'workers', 'main.ts')], {
      cwd: REPO,
      env: env('127.0.0.1:9'),
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(res.status, 1, res.stdout + res.stderr);
    assert.match(res.stdout + res.stderr, /cannot reach Temporal at 127\.0\.0\.1:9 \(namespace peftgrid\)/);
  });
});
