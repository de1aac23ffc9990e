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
  readManifest,
} from '../../src/store';

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
