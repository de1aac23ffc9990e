/**
 * Bad connection input against the real mTLS cluster: a client certificate from another CA, no
 * TLS at all, a namespace that does not exist, a namespace without peftgrid's search attributes.
 * The CLI and a worker each exit 1 within the bounded connect timeout and say which problem it is,
 * naming the address and the namespace (and, for a search attribute, the command that registers it).
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { msToTs } from '@temporalio/common/lib/time';
import { ensureCluster, type ClusterHandle } from '../helpers/cluster';
import { REPO, scratchDir } from '../helpers/fixtures';

const stamp = Date.now().toString(36);

function rogueClientCert(dir: string): { cert: string; key: string } {
  const sh = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  sh([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=rogue CA',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
  ]);
  sh(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=rogue', '-keyout', 'client.key', '-out', 'client.csr']);
  sh([
    'x509',
    '-req',
    '-in',
    'client.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-out',
    'client.pem',
  ]);
  return { cert: join(dir, 'client.pem'), key: join(dir, 'client.key') };
}

describe('bad connection input on the cluster', { timeout: 15 * 60_000 }, () => {
  const dir = scratchDir('cluster-bad-input');
  let h: ClusterHandle;
  let rogue: { cert: string; key: string };
  const bare = `pg-nosa-${stamp}`;

  before(async () => {
    h = await ensureCluster();
    rogue = rogueClientCert(dir);
    // A namespace without the search attributes.
    await h.connection.workflowService.registerNamespace({
      namespace: bare,
      workflowExecutionRetentionPeriod: msToTs(24 * 3600_000),
    });
  });
  after(async () => {
    await h?.connection.close().catch(() => undefined);
  });

  function cli(env: Record<string, string | undefined>): { status: number | null; out: string; ms: number } {
    const t0 = Date.now();
    const res = spawnSync(process.execPath, [join(REPO, 'bin', 'peftgrid.js'), 'grid', 'list'], {
      env: { ...process.env, ...h.env, ...env },
      encoding: 'utf8',
      timeout: 90_000,
    });
    return { status: res.status, out: res.stdout + res.stderr, ms: Date.now() - t0 };
  }

  function worker(env: Record<string, string | undefined>): { status: number | null; out: string; ms: number } {
    const t0 = Date.now();
    const res = spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'workers', 'main.ts')], {
      cwd: REPO,
      env: { ...process.env, ...h.env, PEFTGRID_DATA_DIR: join(dir, 'worker'), ...env },
      encoding: 'utf8',
      timeout: 90_000,
    });
    return { status: res.status, out: res.stdout + res.stderr, ms: Date.now() - t0 };
  }

  const at = () => `Temporal at ${h.env.TEMPORAL_ADDRESS!.replace(/\./g, '\\.')}`;

  it('the right settings work (the baseline the failures differ from)', () => {
    const r = cli({});
    assert.equal(r.status, 0, r.out);
  });

  it('a client certificate from another CA: TLS, with address and namespace (CLI and worker)', () => {
    const env = { TEMPORAL_TLS_CERT: rogue.cert, TEMPORAL_TLS_KEY: rogue.key };
    for (const [who, r] of [
      ['cli', cli(env)],
      ['worker', worker(env)],
    ] as const) {
      console.log(`BAD INPUT rogue cert (${who}): exit ${r.status} in ${r.ms} ms: ${r.out.trim().split('\n').at(-1)}`);
      assert.equal(r.status, 1, r.out);
      assert.match(r.out, new RegExp(`TLS handshake with ${at()} \\(namespace peftgrid\\) failed`));
    }
  });

  it('no TLS settings against the mTLS frontend: exit 1, naming address and namespace', () => {
    const r = cli({ TEMPORAL_TLS_CERT: '', TEMPORAL_TLS_KEY: '', TEMPORAL_TLS_CA: '' });
    console.log(`BAD INPUT no TLS (cli): exit ${r.status} in ${r.ms} ms: ${r.out.trim().split('\n').at(-1)}`);
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, new RegExp(`${at()} \\(namespace peftgrid\\)`));
  });

  it('a namespace that does not exist (CLI and worker)', () => {
    const env = { TEMPORAL_NAMESPACE: 'no-such-namespace' };
    for (const [who, r] of [
      ['cli', cli(env)],
      ['worker', worker(env)],
    ] as const) {
      console.log(
        `BAD INPUT wrong namespace (${who}): exit ${r.status} in ${r.ms} ms: ${r.out.trim().split('\n').at(-1)}`,
      );
      assert.equal(r.status, 1, r.out);
      assert.match(r.out, new RegExp(`namespace \\\\?"no-such-namespace\\\\?" does not exist on ${at()}`));
    }
  });

  it('a namespace without the search attributes names them and the command that registers them', () => {
    const r = cli({ TEMPORAL_NAMESPACE: bare });
    console.log(`BAD INPUT no search attributes (cli): exit ${r.status} in ${r.ms} ms`);
    assert.equal(r.status, 1, r.out);
    assert.match(
      r.out,
      /search attributes PeftgridGrid, PeftgridModel, PeftgridMethod, PeftgridStatus are not registered/,
    );
    assert.match(
      r.out,
      new RegExp(`temporal operator search-attribute create --namespace ${bare} .*--name PeftgridGrid --type Keyword`),
    );
    const w = worker({ TEMPORAL_NAMESPACE: bare });
    assert.equal(w.status, 1, w.out);
    assert.match(w.out, /PeftgridGrid/);
  });
});
