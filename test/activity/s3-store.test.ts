/**
 * The s3:// backend against a real S3-compatible server (SeaweedFS on loopback): round trips,
 * multipart upload + ranged download of large files, manifest-committed directories, checksum
 * verification, and an outage in the middle of an upload that leaves no half object visible.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ChecksumMismatchError, getDirectory, putDirectory, readManifest, S3ObjectStore } from '../../src/store';
import { scratchDir } from '../helpers/fixtures';
import { progressLog } from '../helpers/progress';
import { startS3Server, type S3Server } from '../helpers/s3-server';

describe('S3ObjectStore on SeaweedFS', { timeout: 5 * 60_000 }, () => {
  const dir = scratchDir('s3');
  let server: S3Server;
  let store: S3ObjectStore;

  before(async () => {
    server = await startS3Server(join(dir, 'weed'));
    Object.assign(process.env, server.env);
    store = new S3ObjectStore(`s3://${server.bucket}/t-${process.pid}`, {
      multipartThreshold: 5 << 20,
      partSize: 5 << 20,
    });
  });
  after(async () => {
    store?.destroy();
    await server?.stop();
  });

  it('round-trips objects, heads, lists and deletes', async () => {
    const ref = await store.put('a/b.txt', 'hello');
    assert.equal(ref.sha256, '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    assert.equal((await store.get('a/b.txt')).toString(), 'hello');
    assert.deepEqual(await store.head('a/b.txt'), { key: 'a/b.txt', bytes: 5, sha256: ref.sha256 });
    assert.equal(await store.head('a/none'), null);
    await store.put('a/c.txt', 'x');
    assert.deepEqual(
      (await store.list('a/')).map((o) => o.key),
      ['a/b.txt', 'a/c.txt'],
    );
    await store.delete('a/b.txt');
    assert.equal(await store.head('a/b.txt'), null);
  });

  it('uploads large files in parallel parts and downloads them in ranges, verified', async () => {
    const src = join(dir, 'big');
    mkdirSync(src, { recursive: true });
    const big = Buffer.alloc(17 * (1 << 20) + 123);
    for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
    writeFileSync(join(src, 'weights.bin'), big);
    writeFileSync(join(src, 'state.json'), '{"step":3}');
    const m = await putDirectory(store, 'ck/step-3', src, { step: 3 });
    assert.equal(m.files.length, 2);
    const dst = join(dir, 'big-dst');
    await getDirectory(store, 'ck/step-3', dst);
    assert.ok(readFileSync(join(dst, 'weights.bin')).equals(big));
    // A tampered object fails verification against the manifest.
    await store.put('ck/step-3/state.json', '{"step":4}');
    await assert.rejects(() => getDirectory(store, 'ck/step-3', join(dir, 'tampered')), ChecksumMismatchError);
  });

  it('reports bytes as they move: single PUT/GET, multipart upload and ranged download, directories', async () => {
    const src = join(dir, 'progress');
    mkdirSync(src, { recursive: true });
    const bytes = 17 * (1 << 20) + 321; // over the 5 MiB threshold: 4 parts, last one short
    const big = Buffer.alloc(bytes);
    for (let i = 0; i < big.length; i += 1024) big[i] = i % 241;
    writeFileSync(join(src, 'weights.bin'), big);
    writeFileSync(join(src, 'small.bin'), Buffer.alloc(3 << 20, 3)); // under it: one PUT, one GET

    const up = progressLog();
    const ref = await store.putFile('p/weights.bin', join(src, 'weights.bin'), up);
    up.check(bytes, 6);
    assert.equal(up.reports.at(-1)!.hashedBytes, bytes, 'the pre-upload sha256 is reported as hashed bytes');
    const down = progressLog();
    await store.getFile('p/weights.bin', join(dir, 'progress-dst', 'weights.bin'), ref.sha256, down);
    down.check(bytes, 6);
    assert.ok(readFileSync(join(dir, 'progress-dst', 'weights.bin')).equals(big));

    const upSmall = progressLog();
    await store.putFile('p/small.bin', join(src, 'small.bin'), upSmall);
    upSmall.check(3 << 20);
    const downSmall = progressLog();
    await store.getFile('p/small.bin', join(dir, 'progress-dst', 'small.bin'), undefined, downSmall);
    downSmall.check(3 << 20);

    const upDir = progressLog();
    await putDirectory(store, 'p/dir', src, {}, upDir);
    upDir.check(bytes + (3 << 20), 6);
    const downDir = progressLog();
    await getDirectory(store, 'p/dir', join(dir, 'progress-dir'), downDir);
    downDir.check(bytes + (3 << 20), 6);
  });

  it('an outage during an upload leaves no committed directory; it commits after the server returns', async () => {
    const src = join(dir, 'outage');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'weights.bin'), Buffer.alloc(30 << 20, 1));
    const failing = new S3ObjectStore(store.url, {
      multipartThreshold: 5 << 20,
      partSize: 5 << 20,
      parallel: 1,
      client: { maxAttempts: 1 },
    });
    // Settle the promise at once: a rejection while the server is down must not go unhandled.
    const upload = putDirectory(failing, 'ck/step-9', src, { step: 9 }).then(
      () => null,
      (err: unknown) => err,
    );
    await new Promise((r) => setTimeout(r, 150));
    await server.stop();
    assert.ok((await upload) instanceof Error, 'the upload failed while the server was down');
    await server.start();
    assert.equal(await readManifest(store, 'ck/step-9'), null, 'no manifest: the half checkpoint is invisible');
    await putDirectory(store, 'ck/step-9', src, { step: 9 });
    assert.equal((await readManifest<{ step: number }>(store, 'ck/step-9'))?.meta.step, 9);
    failing.destroy();
  });
});
