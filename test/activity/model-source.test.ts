/** Models by `s3://` prefix: materialized once per worker from a real S3-compatible server. */
import { strict as assert } from 'node:assert';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { localModelDir, materializedFrom } from '../../activities/model-source';
import { loadTokenizer } from '../../src/data';
import { S3ObjectStore } from '../../src/store';
import type { ActivityHeartbeatDetails } from '../../src/contracts';
import { scratchDir, tinyModel } from '../helpers/fixtures';
import { startS3Server, type S3Server } from '../helpers/s3-server';

describe('model directories from s3:// prefixes', { timeout: 3 * 60_000 }, () => {
  const dir = scratchDir('model-source');
  let server: S3Server;
  before(async () => {
    server = await startS3Server(join(dir, 'weed'), 29000 + (process.pid % 40) * 20);
    Object.assign(process.env, server.env);
    process.env.PEFTGRID_DATA_DIR = join(dir, 'worker');
  });
  after(async () => server?.stop());

  it('downloads the model once, verified, and the tokenizer loads from it', async () => {
    const src = tinyModel('llama');
    const url = `s3://${server.bucket}/models/tiny-llama`;
    const store = new S3ObjectStore(url);
    for (const f of readdirSync(src).filter((n) => !n.startsWith('.'))) await store.putFile(f, join(src, f));
    store.destroy();

    const beats: ActivityHeartbeatDetails[] = [];
    const local = await localModelDir(url, { heartbeat: (d) => beats.push(d) });
    assert.equal(materializedFrom(local), url);
    // The download heartbeats its bytes: from 0, never backwards, ending at the model's size.
    const total = readdirSync(src)
      .filter((n) => !n.startsWith('.'))
      .reduce((s, f) => s + statSync(join(src, f)).size, 0);
    assert.ok(beats.length >= 2, JSON.stringify(beats));
    // The details name the model too (a slot waiting on another's download says which).
    assert.deepEqual(beats[0], { phase: 'download-model', model: url, bytes: 0, totalBytes: total });
    const { hashedBytes, ...last } = beats.at(-1)!;
    assert.deepEqual(last, { phase: 'download-model', model: url, bytes: total, totalBytes: total });
    assert.equal(hashedBytes, total, 'every file verified against its sha256');
    for (let i = 1; i < beats.length; i++) assert.ok(beats[i]!.bytes! >= beats[i - 1]!.bytes!, JSON.stringify(beats));
    assert.ok(readFileSync(join(local, 'config.json')).equals(readFileSync(join(src, 'config.json'))));
    const tok = await loadTokenizer(local);
    assert.equal(tok.sha256, (await loadTokenizer(src)).sha256);
    const stamp = statSync(join(local, '.complete')).mtimeMs;
    const cachedBeats: unknown[] = [];
    assert.equal(await localModelDir(url, { heartbeat: (d) => cachedBeats.push(d) }), local, 'cached: same directory');
    assert.deepEqual(cachedBeats, [], 'nothing moves, nothing to report');
    assert.equal(statSync(join(local, '.complete')).mtimeMs, stamp, 'not downloaded again');
    assert.equal(await localModelDir(src), src, 'local paths pass through');
  });

  it('tokenizerOnly fetches config and tokenizer files, never the weights; two slots share one copy', async () => {
    const src = tinyModel('gemma');
    const url = `s3://${server.bucket}/models/tiny-gemma`;
    const store = new S3ObjectStore(url);
    for (const f of readdirSync(src).filter((n) => !n.startsWith('.'))) await store.putFile(f, join(src, f));
    store.destroy();
    const [tok, again] = await Promise.all([
      localModelDir(url, { tokenizerOnly: true }),
      localModelDir(url, { tokenizerOnly: true }),
    ]);
    assert.equal(tok, again);
    const files = readdirSync(tok);
    assert.ok(!files.some((f) => f.endsWith('.safetensors')), files.join());
    assert.ok(files.includes('tokenizer.json') && files.includes('config.json'), files.join());
    assert.equal((await loadTokenizer(tok)).sha256, (await loadTokenizer(src)).sha256);
    // A full copy, once there, serves tokenizer-only callers too.
    const full = await localModelDir(url);
    assert.notEqual(full, tok);
    assert.ok(readdirSync(full).includes('model.safetensors'));
    assert.equal(await localModelDir(url, { tokenizerOnly: true }), full);
  });

  it('a prefix without config.json is a non-retryable ModelNotFound', async () => {
    await assert.rejects(
      () => localModelDir(`s3://${server.bucket}/models/nothing-here`),
      (err: Error & { type?: string; nonRetryable?: boolean }) => {
        assert.equal(err.type, 'ModelNotFound');
        assert.equal(err.nonRetryable, true);
        return true;
      },
    );
  });
});
