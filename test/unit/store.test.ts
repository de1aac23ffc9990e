import { strict as assert } from 'node:assert';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  ChecksumMismatchError,
  FileObjectStore,
  getDirectory,
  InvalidKeyError,
  putDirectory,
  ProgressCounter,
  readManifest,
} from '../../src/store';
import { progressLog } from '../helpers/progress';

const tmp = () => mkdtempSync(join(tmpdir(), 'peftgrid-store-'));

describe('file object store', () => {
  it('round-trips objects and lists by prefix', async () => {
    const s = new FileObjectStore(tmp());
    const ref = await s.put('a/b/c.txt', 'hello');
    assert.equal(ref.bytes, 5);
    assert.equal(ref.sha256, '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    await s.put('a/b/d.txt', 'x');
    await s.put('a/e.txt', 'y');
    assert.deepEqual(
      (await s.list('a/b/')).map((o) => o.key),
      ['a/b/c.txt', 'a/b/d.txt'],
    );
    assert.deepEqual(
      (await s.list('a/')).map((o) => o.key),
      ['a/b/c.txt', 'a/b/d.txt', 'a/e.txt'],
    );
    assert.equal((await s.get('a/b/c.txt')).toString(), 'hello');
    assert.equal(await s.head('nope'), null);
    await s.delete('a/e.txt');
    assert.equal(await s.head('a/e.txt'), null);
  });

  it('refuses keys that would escape the prefix', async () => {
    const s = new FileObjectStore(tmp());
    for (const key of ['../x', 'a/../../x', '/etc/passwd', 'a//b', '']) {
      await assert.rejects(() => s.put(key, 'x'), InvalidKeyError, key);
    }
  });

  it('verifies checksums on download', async () => {
    const root = tmp();
    const s = new FileObjectStore(root);
    await s.put('k', 'data');
    await assert.rejects(() => s.getFile('k', join(tmp(), 'out'), '0'.repeat(64)), ChecksumMismatchError);
  });
});

describe('directory artifacts', () => {
  it('commits files first and the manifest last; a corrupted file fails verification', async () => {
    const src = tmp();
    mkdirSync(join(src, 'sub'));
    writeFileSync(join(src, 'a.bin'), Buffer.alloc(1000, 7));
    writeFileSync(join(src, 'sub', 'b.json'), '{"x":1}');
    const root = tmp();
    const s = new FileObjectStore(root);
    assert.equal(await readManifest(s, 'ck/step-1'), null);
    const m = await putDirectory(s, 'ck/step-1', src, { step: 1 });
    assert.deepEqual(
      m.files.map((f) => f.path),
      ['a.bin', 'sub/b.json'],
    );
    const dst = tmp();
    await getDirectory(s, 'ck/step-1', dst);
    assert.equal(readFileSync(join(dst, 'sub', 'b.json'), 'utf8'), '{"x":1}');

    writeFileSync(join(root, 'ck', 'step-1', 'a.bin'), Buffer.alloc(10, 7)); // truncate in the store
    await assert.rejects(() => getDirectory(s, 'ck/step-1', tmp()), ChecksumMismatchError);
  });
});

describe('transfer progress', () => {
  const big = (path: string, bytes: number) => {
    const b = Buffer.alloc(bytes);
    for (let i = 0; i < b.length; i += 512) b[i] = i % 251;
    writeFileSync(path, b);
    return b;
  };

  it('file store putFile/getFile report bytes as they move, up to the total', async () => {
    const src = tmp();
    const bytes = 12 * (1 << 20) + 77;
    const data = big(join(src, 'w.bin'), bytes);
    const s = new FileObjectStore(tmp());
    const up = progressLog();
    const ref = await s.putFile('m/w.bin', join(src, 'w.bin'), up);
    assert.equal(ref.bytes, bytes);
    up.check(bytes, 5);
    const down = progressLog();
    const out = join(tmp(), 'w.bin');
    await s.getFile('m/w.bin', out, ref.sha256, down);
    down.check(bytes, 5);
    assert.ok(readFileSync(out).equals(data));
  });

  it('putDirectory/getDirectory report the directory summed over its files', async () => {
    const src = tmp();
    mkdirSync(join(src, 'sub'));
    big(join(src, 'a.bin'), 5 * (1 << 20));
    big(join(src, 'sub', 'b.bin'), 3 * (1 << 20) + 5);
    writeFileSync(join(src, 'c.json'), '{}');
    const total = 8 * (1 << 20) + 5 + 2;
    const s = new FileObjectStore(tmp());
    const up = progressLog();
    await putDirectory(s, 'ck/step-2', src, {}, { ...up, parallel: 2 });
    up.check(total, 4);
    const dst = tmp();
    const down = progressLog();
    await getDirectory(s, 'ck/step-2', dst, down);
    down.check(total, 4);
    // Files already present are verified in place: hashed, counted as done, not moved again.
    const again = progressLog();
    await getDirectory(s, 'ck/step-2', dst, again);
    assert.equal(again.reports.at(-1)!.bytes, total);
    assert.ok((again.reports.at(-1)!.hashedBytes ?? 0) >= 8 << 20, JSON.stringify(again.reports));
  });

  it('throttles: within the interval and under the byte step only the first and last reports go out', () => {
    const reports: number[] = [];
    const c = new ProgressCounter(100, {
      onProgress: (p) => reports.push(p.bytes),
      progressEveryMs: 60_000,
      progressEveryBytes: 50,
    });
    for (let i = 0; i < 10; i++) c.add(4); // 40 bytes: under the step
    c.add(20); // 60 since the last report: due
    c.add(40);
    c.done();
    assert.deepEqual(reports, [0, 60, 100]);
  });

  it('tick() repeats the last report once the interval has passed, and only then', async () => {
    const reports: number[] = [];
    const c = new ProgressCounter(10, {
      onProgress: (p) => reports.push(p.bytes),
      progressEveryMs: 30,
      progressEveryBytes: 1,
    });
    c.add(5);
    c.tick(); // within the interval: nothing
    await new Promise((r) => setTimeout(r, 40));
    c.tick();
    assert.deepEqual(reports, [0, 5, 5]);
  });
});
