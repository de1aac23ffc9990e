// downloadDataset against a real HTTP server on loopback that serves files, honours Range, and can
// misbehave on demand (drop the connection mid-body, ignore Range, serve a truncated file). The
// activity runs for real inside MockActivityEnvironment, which supplies its heartbeat context.
import { test, after, before, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { DefaultLogger } from '@temporalio/worker';
import { MockActivityEnvironment } from '@temporalio/testing';
import { downloadDataset, rawKey, type DownloadDatasetInput } from '../../activities/download';
import type { ObjectRef } from '../../src/store';

const root = mkdtempSync(join(tmpdir(), 'data-download-'));
process.env.PEFTGRID_DATA_DIR = join(root, 'data'); // where the activity keeps its .part files
after(() => rmSync(root, { recursive: true, force: true }));

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** What the server does with the next request for a path; consumed once, then it behaves. */
type Misbehaviour =
  | { kind: 'drop-after'; bytes: number } // full Content-Length, then the socket dies
  | { kind: 'ignore-range' } // 200 with the whole file even when asked for a range
  | { kind: 'wrong-range' } // 206 that starts at 0 whatever was asked
  | { kind: 'truncated'; bytes: number }; // a well-formed response that holds only the first bytes

const files = new Map<string, Buffer>();
const plans = new Map<string, Misbehaviour[]>();
const requests: { path: string; range: string | undefined; method: string | undefined }[] = [];
/** Paths served without ETag (like a plain static server): a re-check has to download them. */
const noValidators = new Set<string>();
let server: Server;
let baseUrl: string;

function serve(req: IncomingMessage, res: ServerResponse): void {
  const path = req.url ?? '/';
  requests.push({ path, range: req.headers.range, method: req.method });
  const body = files.get(path);
  if (!body) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    return;
  }
  const plan = plans.get(path)?.shift();
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (plan?.kind === 'truncated') {
    res.writeHead(200, { 'content-length': plan.bytes }).end(body.subarray(0, plan.bytes));
    return;
  }
  if (plan?.kind === 'wrong-range' && range) {
    res
      .writeHead(206, { 'content-length': body.length, 'content-range': `bytes 0-${body.length - 1}/${body.length}` })
      .end(body);
    return;
  }
  const start = range && plan?.kind !== 'ignore-range' ? Number(range[1]) : 0;
  if (start >= body.length && start > 0) {
    res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
    return;
  }
  const slice = body.subarray(start);
  res.writeHead(start > 0 ? 206 : 200, {
    // As real object stores do: the ETag is a function of the content (Node omits HEAD bodies).
    ...(noValidators.has(path) ? {} : { etag: `"${sha(body).slice(0, 16)}"` }),
    'content-length': slice.length,
    ...(start > 0 ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
    'accept-ranges': 'bytes',
  });
  if (plan?.kind === 'drop-after') {
    // Flush a prefix, then kill the connection once it has left: the client sees a short body.
    res.write(slice.subarray(0, plan.bytes), () => setTimeout(() => res.socket?.destroy(), 50));
    return;
  }
  res.end(slice);
}

before(async () => {
  server = createServer(serve);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mirror`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  requests.length = 0;
  plans.clear();
});

let storeCount = 0;
function freshStore(): { dir: string; url: string } {
  const dir = join(root, `store-${++storeCount}`);
  return { dir, url: `file://${dir}` };
}

/** A raw split on the mirror: TSV-looking text, `size` bytes, distinct per name. */
function publish(dataset: string, split: string, size: number): Buffer {
  const line = (i: number) =>
    `question ${i} of ${dataset}/${split}? \\n (a) yes (b) no\t${randomBytes(6).toString('hex')}\n`;
  const parts: string[] = [];
  let n = 0;
  for (let i = 0; n < size; i++) {
    parts.push(line(i));
    n += parts[parts.length - 1]!.length;
  }
  const body = Buffer.from(parts.join('')).subarray(0, size);
  files.set(`/mirror/${dataset}/${split}.tsv`, body);
  return body;
}

async function run(input: DownloadDatasetInput, heartbeats: unknown[] = []): Promise<ObjectRef> {
  // The SDK logs every expected failure at WARN; keep the test output to real problems.
  const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
  env.on('heartbeat', (d: unknown) => heartbeats.push(d));
  return env.run<[DownloadDatasetInput], ObjectRef, typeof downloadDataset>(downloadDataset, input);
}

async function rejection(p: Promise<unknown>): Promise<ApplicationFailure | Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  assert.fail('expected the activity to throw');
}

function partFiles(): string[] {
  const dir = join(root, 'data', 'work', 'downloads');
  return existsSync(dir) ? readdirSync(dir).map((f) => join(dir, f)) : [];
}

function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

test('a connection dropped mid-body is resumed from the .part file with a Range request', async () => {
  const body = publish('arc_easy', 'train', 3 * 1024 * 1024 + 123);
  plans.set('/mirror/arc_easy/train.tsv', [{ kind: 'drop-after', bytes: 1024 * 1024 + 7 }]);
  const store = freshStore();
  const input = { storeUrl: store.url, baseUrl, dataset: 'arc_easy', split: 'train' };

  const first = await rejection(run(input));
  assert.ok(
    !(first instanceof ApplicationFailure && first.nonRetryable),
    `a dropped connection must be retryable, got ${String(first)}`,
  );
  const [part] = partFiles();
  assert.ok(part, 'the partial download is kept for the retry');
  const have = statSync(part).size;
  assert.ok(have > 0 && have < body.length, `part file holds a proper prefix (${have} of ${body.length})`);
  assert.ok(readFileSync(part).equals(body.subarray(0, have)), 'part file is a prefix of the file');
  assert.equal(tree(store.dir).length, 0, 'nothing is committed by a failed attempt');

  const heartbeats: unknown[] = [];
  const ref = await run(input, heartbeats);
  assert.equal(requests.length, 2);
  assert.equal(requests[0]!.range, undefined);
  assert.equal(requests[1]!.range, `bytes=${have}-`);
  assert.equal(ref.sha256, sha(body));
  assert.equal(ref.bytes, body.length);
  assert.equal(ref.key, rawKey(baseUrl, 'arc_easy', 'train', sha(body)));
  assert.ok(readFileSync(join(store.dir, ref.key)).equals(body));
  assert.deepEqual(
    JSON.parse(readFileSync(join(store.dir, `${rawKey(baseUrl, 'arc_easy', 'train')}.meta.json`), 'utf8')),
    {
      url: `${baseUrl}/arc_easy/train.tsv`,
      bytes: body.length,
      sha256: sha(body),
      key: ref.key,
      etag: `"${sha(body).slice(0, 16)}"`,
    },
  );
  assert.deepEqual(partFiles(), [], 'the part file is removed after the commit');

  // Heartbeats start at the activity's first line, then report bytes done: from where the resume
  // started, increasing, ending at the size; then the commit's upload into the store, likewise.
  type Beat = { phase: string; bytes?: number; totalBytes?: number };
  assert.deepEqual(heartbeats[0], { phase: 'starting' });
  const download = (heartbeats as Beat[]).filter((h) => h.phase === 'download-data');
  const bytes = download.map((h) => h.bytes!);
  assert.ok(bytes.length >= 3, `heartbeats ${JSON.stringify(heartbeats)}`);
  assert.equal(bytes[0], have);
  assert.equal(bytes[bytes.length - 1], body.length);
  assert.deepEqual(
    bytes,
    [...bytes].sort((a, b) => a - b),
  );
  assert.deepEqual(download.at(-1), { phase: 'download-data', bytes: body.length, totalBytes: body.length });
  const upload = (heartbeats as Beat[]).filter((h) => h.phase === 'upload-data');
  assert.deepEqual(
    { bytes: upload.at(-1)?.bytes, totalBytes: upload.at(-1)?.totalBytes },
    { bytes: body.length, totalBytes: body.length },
  );
});

test('a server that ignores Range gets the whole file again, not a spliced one', async () => {
  const body = publish('boolq', 'train', 2 * 1024 * 1024);
  plans.set('/mirror/boolq/train.tsv', [{ kind: 'drop-after', bytes: 600_000 }, { kind: 'ignore-range' }]);
  const input = { storeUrl: freshStore().url, baseUrl, dataset: 'boolq', split: 'train' };
  await rejection(run(input));
  const ref = await run(input);
  assert.match(requests[1]!.range ?? '', /^bytes=\d+-$/);
  assert.equal(ref.sha256, sha(body));
  assert.equal(ref.bytes, body.length);
});

test('a 206 that does not start where the part file ends discards the part instead of splicing', async () => {
  const body = publish('openbookqa', 'train', 2 * 1024 * 1024);
  plans.set('/mirror/openbookqa/train.tsv', [{ kind: 'drop-after', bytes: 500_000 }, { kind: 'wrong-range' }]);
  const input = { storeUrl: freshStore().url, baseUrl, dataset: 'openbookqa', split: 'train' };
  await rejection(run(input));
  const err = await rejection(run(input));
  assert.match(err.message, /Content-Range/);
  assert.deepEqual(partFiles(), []);
  const ref = await run(input);
  assert.equal(requests[2]!.range, undefined, 'third attempt starts from zero');
  assert.equal(ref.sha256, sha(body));
});

test('404 is a non-retryable NotFound that names the URL, and commits nothing', async () => {
  const store = freshStore();
  const err = await rejection(run({ storeUrl: store.url, baseUrl, dataset: 'squad2', split: 'train' }));
  assert.ok(err instanceof ApplicationFailure, String(err));
  assert.equal(err.nonRetryable, true);
  assert.equal(err.type, 'NotFound');
  assert.match(
    err.message,
    /\/mirror\/squad2\/train\.tsv does not exist \(HTTP 404\); check data\.baseUrl and data\.datasets/,
  );
  assert.deepEqual(tree(store.dir), []);
});

test('a committed split is not downloaded again while its ETag holds; a re-published file is', async () => {
  const body = publish('arc_hard', 'dev', 50_000);
  const store = freshStore();
  const input = { storeUrl: store.url, baseUrl, dataset: 'arc_hard', split: 'dev' };
  const first = await run(input);
  assert.equal(requests.length, 1);
  const second = await run(input);
  assert.deepEqual(second, first);
  assert.deepEqual(
    requests.map((r) => r.method),
    ['GET', 'HEAD'],
    'the second call only asked whether the file changed',
  );
  assert.equal(first.sha256, sha(body));
  // Same bytes and expectations that match the commit: no request at all.
  await run({ ...input, expected: { bytes: body.length, sha256: sha(body) } });
  assert.equal(requests.length, 2);

  // The mirror re-publishes the file under the same URL: a new ETag, so it is fetched and committed
  // under a new content key; the old object stays for anything that still references it.
  const edited = publish('arc_hard', 'dev', 50_000);
  const third = await run(input);
  assert.deepEqual(
    requests.slice(2).map((r) => r.method),
    ['HEAD', 'GET'],
  );
  assert.equal(third.sha256, sha(edited));
  assert.notEqual(third.key, first.key);
  assert.ok(readFileSync(join(store.dir, first.key)).equals(body));
  assert.deepEqual(await run(input), third);
});

test('a source without ETag or Last-Modified is downloaded and hashed again; the same bytes keep their key', async () => {
  const body = publish('qasc', 'dev', 20_000);
  noValidators.add('/mirror/qasc/dev.tsv');
  const input = { storeUrl: freshStore().url, baseUrl, dataset: 'qasc', split: 'dev' };
  const first = await run(input);
  assert.deepEqual(await run(input), first);
  assert.deepEqual(
    requests.map((r) => r.method),
    ['GET', 'GET'],
    'no validator to ask: the content is the only check',
  );
  const edited = publish('qasc', 'dev', 20_000);
  const third = await run(input);
  assert.equal(third.sha256, sha(edited));
  assert.notEqual(third.key, first.key);
  assert.equal(first.sha256, sha(body));
});

test('dataset or split names that could leave the store prefix are rejected before any I/O', async () => {
  const store = freshStore();
  const before = tree(root);
  for (const [dataset, split] of [
    ['../../evil', 'train'],
    ['boolq', '../../../escape'],
    ['boolq/..', 'train'],
    ['..', '..'],
    ['Boolq', 'train'],
  ] as const) {
    const err = await rejection(run({ storeUrl: store.url, baseUrl, dataset, split }));
    assert.ok(err instanceof ApplicationFailure, String(err));
    assert.equal(err.type, 'InvalidSpec');
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, /invalid dataset\/split name .* expected \[a-z0-9_\]\+/);
  }
  assert.equal(requests.length, 0);
  assert.deepEqual(tree(root), before, 'nothing written anywhere under the scratch root');
});

test('a truncated download is caught when size/sha256 are known, and a retry fetches it whole', async () => {
  const body = publish('race_string', 'dev', 400_000);
  const expected = { bytes: body.length, sha256: sha(body) };
  plans.set('/mirror/race_string/dev.tsv', [{ kind: 'truncated', bytes: 300_000 }]);
  const store = freshStore();
  const input = { storeUrl: store.url, baseUrl, dataset: 'race_string', split: 'dev', expected };

  const err = await rejection(run(input));
  assert.ok(err instanceof ApplicationFailure, String(err));
  assert.equal(err.type, 'ChecksumMismatch');
  assert.equal(err.nonRetryable, false, 'a bad transfer is worth retrying');
  assert.match(err.message, new RegExp(`got 300000 bytes .* expected ${body.length}`));
  assert.deepEqual(tree(store.dir), [], 'nothing committed');
  assert.deepEqual(partFiles(), [], 'the bad bytes are not resumed from');

  const ref = await run(input);
  assert.equal(requests[1]!.range, undefined);
  assert.deepEqual({ bytes: ref.bytes, sha256: ref.sha256 }, expected);
});

test('without known size/sha256 the same truncated file would be committed: why `expected` exists', async () => {
  const body = publish('mctest_corrected_the_separator', 'dev', 100_000);
  plans.set('/mirror/mctest_corrected_the_separator/dev.tsv', [{ kind: 'truncated', bytes: 60_000 }]);
  const ref = await run({
    storeUrl: freshStore().url,
    baseUrl,
    dataset: 'mctest_corrected_the_separator',
    split: 'dev',
  });
  assert.equal(ref.bytes, 60_000);
  assert.notEqual(ref.sha256, sha(body));
});

test('malformed expectations are rejected as InvalidSpec', async () => {
  publish('boolq', 'dev', 1000);
  for (const expected of [
    { bytes: -1, sha256: 'a'.repeat(64) },
    { bytes: 10, sha256: 'XYZ' },
    { bytes: 1.5, sha256: 'a'.repeat(64) },
  ]) {
    const err = await rejection(run({ storeUrl: freshStore().url, baseUrl, dataset: 'boolq', split: 'dev', expected }));
    assert.ok(err instanceof ApplicationFailure && err.type === 'InvalidSpec', String(err));
  }
  assert.equal(requests.length, 0);
});
