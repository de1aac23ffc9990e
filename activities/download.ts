/**
 * downloadDataset: one raw UnifiedQA split from any base URL (https, http, file://, s3://) into the
 * store. Streams to a local `.part` file that survives retries on the same worker (an HTTP retry
 * resumes it with a Range request), verifies size/sha256 where they are known (the catalog for the
 * canonical bucket, else `input.expected`), then commits the object and a `.meta.json` sidecar.
 * A committed split is never fetched again.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, Transform } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { CATALOG, datasetUrl, isDatasetName, UNIFIEDQA_BASE_URL, type Split } from '../datasets/catalog';
import { contentHash } from '../src/common/hash';
import { runLogger, safeUrl } from '../src/common/logger';
import { joinKey, ObjectNotFoundError, openStore, sha256File, type ObjectRef } from '../src/store';
import { workDir } from './paths';

export interface DownloadDatasetInput {
  storeUrl: string;
  baseUrl: string;
  dataset: string;
  split: string;
  /**
   * Size and sha256 the file must have, for a mirror whose files are known (the catalog's values
   * describe the canonical bucket only and are used there when this is absent). Without either, a
   * download cut short at a line boundary cannot be told from a complete one.
   */
  expected?: { bytes: number; sha256: string };
}

interface RawMeta {
  url: string;
  bytes: number;
  sha256: string;
}

/** Raw files from the canonical bucket live under `unifiedqa`; any other source under its hash. */
export function rawKey(baseUrl: string, dataset: string, split: string): string {
  const source = baseUrl.replace(/\/+$/, '') === UNIFIEDQA_BASE_URL ? 'unifiedqa' : `src-${contentHash(baseUrl)}`;
  return joinKey('datasets', 'raw', source, dataset, `${split}.tsv`);
}

function expectedFile(input: DownloadDatasetInput): { bytes: number; sha256: string } | undefined {
  if (input.expected) return input.expected;
  // Catalog sizes and checksums describe the canonical bucket only; mirrors may differ.
  if (input.baseUrl.replace(/\/+$/, '') !== UNIFIEDQA_BASE_URL || !isDatasetName(input.dataset)) return undefined;
  return CATALOG[input.dataset].splits[input.split as Split];
}

/** Heartbeat at most once per this many bytes (the SDK throttles further; this bounds the calls). */
const HEARTBEAT_BYTES = 1 << 20;

/** `bytes START-END/TOTAL` → START; undefined when absent or unparsable. */
function rangeStart(contentRange: string | null): number | undefined {
  const m = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(contentRange?.trim() ?? '');
  return m ? Number(m[1]) : undefined;
}

async function fetchHttp(url: string, part: string, ctx: Context, expectedBytes: number | undefined): Promise<void> {
  let have = (await stat(part).catch(() => null))?.size ?? 0;
  if (expectedBytes !== undefined && have > expectedBytes) {
    await rm(part, { force: true }); // longer than the file can be: not a prefix of it
    have = 0;
  }
  if (expectedBytes !== undefined && have === expectedBytes) return; // complete; the checksum decides
  const res = await fetch(url, { headers: have ? { Range: `bytes=${have}-` } : {}, signal: ctx.cancellationSignal });
  if (res.status === 404 || res.status === 410) {
    throw ApplicationFailure.nonRetryable(`${safeUrl(url)} does not exist (HTTP ${res.status}); check data.baseUrl and data.datasets`, 'NotFound');
  }
  if (res.status === 403 || res.status === 401) {
    throw ApplicationFailure.nonRetryable(`${safeUrl(url)} refused access (HTTP ${res.status})`, 'NotFound');
  }
  if (res.status === 416 && have > 0) {
    // The part file is at least as long as the object (complete, or the object shrank): start over.
    await res.body?.cancel();
    await rm(part, { force: true });
    throw new Error(`GET ${safeUrl(url)}: HTTP 416 for bytes=${have}-; discarded the partial download`);
  }
  if (!res.ok || !res.body) throw new Error(`GET ${safeUrl(url)}: HTTP ${res.status}`); // 5xx etc.: retry
  // 206 continues the part file only if it starts where the part ends; 200 means the server
  // ignored Range, so start over.
  let append = res.status === 206 && have > 0;
  if (append && rangeStart(res.headers.get('content-range')) !== have) {
    await res.body.cancel();
    await rm(part, { force: true });
    throw new Error(`GET ${safeUrl(url)}: asked for bytes=${have}-, got Content-Range ${JSON.stringify(res.headers.get('content-range'))}; discarded the partial download`);
  }
  if (res.status === 200) append = false;
  let done = append ? have : 0;
  const length = Number(res.headers.get('content-length') ?? NaN);
  const total = Number.isFinite(length) ? done + length : expectedBytes;
  let last = done;
  ctx.heartbeat({ bytes: done, ...(total !== undefined ? { total } : {}) });
  const progress = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      done += chunk.length;
      if (done - last >= HEARTBEAT_BYTES) {
        last = done;
        ctx.heartbeat({ bytes: done, ...(total !== undefined ? { total } : {}) });
      }
      cb(null, chunk);
    },
  });
  // On a dropped connection the bytes already written stay in the part file for the next attempt.
  await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), progress, createWriteStream(part, { flags: append ? 'a' : 'w' }));
  ctx.heartbeat({ bytes: done, ...(total !== undefined ? { total } : {}) });
}

async function fetchFile(url: string, part: string): Promise<void> {
  const path = fileURLToPath(url);
  if (!(await stat(path).catch(() => null))) {
    throw ApplicationFailure.nonRetryable(`${path} does not exist; check data.baseUrl and data.datasets`, 'NotFound');
  }
  await pipeline(createReadStream(path), createWriteStream(part));
}

async function fetchS3(url: string, part: string): Promise<void> {
  const slash = url.lastIndexOf('/');
  const source = openStore(url.slice(0, slash));
  const name = decodeURIComponent(url.slice(slash + 1));
  try {
    await source.getFile(name, part);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw ApplicationFailure.nonRetryable(`${url} does not exist; check data.baseUrl and data.datasets`, 'NotFound');
    throw err;
  }
}

export async function downloadDataset(input: DownloadDatasetInput): Promise<ObjectRef> {
  const ctx = Context.current();
  const { storeUrl, baseUrl, dataset, split } = input;
  if (!/^[a-z0-9_]+$/.test(dataset) || !/^[a-z0-9_]+$/.test(split)) {
    throw ApplicationFailure.nonRetryable(`invalid dataset/split name ${JSON.stringify(`${dataset}/${split}`)}: expected [a-z0-9_]+`, 'InvalidSpec');
  }
  const { expected: given } = input;
  if (given !== undefined && !(Number.isSafeInteger(given.bytes) && given.bytes >= 0 && /^[0-9a-f]{64}$/.test(given.sha256))) {
    throw ApplicationFailure.nonRetryable(`invalid expected ${JSON.stringify(given)}: need { bytes: integer >= 0, sha256: 64 lowercase hex }`, 'InvalidSpec');
  }
  const expected = expectedFile(input);
  const log = runLogger({ activity: 'downloadDataset', dataset, split });
  const store = openStore(storeUrl);
  const key = rawKey(baseUrl, dataset, split);
  const metaKey = `${key}.meta.json`;
  if (await store.head(metaKey)) {
    const meta = JSON.parse((await store.get(metaKey)).toString('utf8')) as RawMeta;
    const head = await store.head(key);
    // A commit made without (or against other) expectations is redone when it does not match them.
    if (head && head.bytes === meta.bytes && (!expected || expected.sha256 === meta.sha256)) return { key, bytes: meta.bytes, sha256: meta.sha256 };
  }

  const url = datasetUrl(baseUrl, dataset, split);
  const part = join(workDir('downloads'), `${contentHash(url)}.part`);
  await mkdir(dirname(part), { recursive: true });
  log.info({ url: safeUrl(url) }, 'downloading');
  if (url.startsWith('file://')) await fetchFile(url, part);
  else if (/^https?:\/\//.test(url)) await fetchHttp(url, part, ctx, expected?.bytes);
  else if (url.startsWith('s3://')) await fetchS3(url, part);
  else throw ApplicationFailure.nonRetryable(`unsupported data.baseUrl scheme in ${safeUrl(url)}: expected https://, http://, s3:// or file://`, 'InvalidSpec');

  const bytes = (await stat(part)).size;
  const sha256 = await sha256File(part);
  if (expected && (expected.bytes !== bytes || expected.sha256 !== sha256)) {
    await rm(part, { force: true }); // a truncated or altered download: fetch it whole next time
    throw ApplicationFailure.retryable(`${safeUrl(url)}: got ${bytes} bytes (sha256 ${sha256.slice(0, 12)}…), expected ${expected.bytes} (${expected.sha256.slice(0, 12)}…)`, 'ChecksumMismatch');
  }
  const ref = await store.putFile(key, part);
  await store.put(metaKey, JSON.stringify({ url: safeUrl(url), bytes, sha256 } satisfies RawMeta));
  await rm(part, { force: true });
  log.info({ key, bytes }, 'downloaded');
  return ref;
}

