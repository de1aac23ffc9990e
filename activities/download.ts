/**
 * downloadDataset: one raw UnifiedQA split from any base URL (https, http, file://) into the
 * store. Streams to a local `.part` file that survives retries on the same worker (an HTTP retry
 * resumes it with a Range request), verifies size/sha256 where the catalog knows them, then
 * commits the object and a `.meta.json` sidecar. A committed split is never fetched again.
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

function expectedFile(baseUrl: string, dataset: string, split: string) {
  // Catalog sizes and checksums describe the canonical bucket only; mirrors may differ.
  if (baseUrl.replace(/\/+$/, '') !== UNIFIEDQA_BASE_URL || !isDatasetName(dataset)) return undefined;
  return CATALOG[dataset].splits[split as Split];
}

async function fetchHttp(url: string, part: string, ctx: Context): Promise<void> {
  const have = (await stat(part).catch(() => null))?.size ?? 0;
  const res = await fetch(url, { headers: have ? { Range: `bytes=${have}-` } : {}, signal: ctx.cancellationSignal });
  if (res.status === 404 || res.status === 410) {
    throw ApplicationFailure.nonRetryable(`${safeUrl(url)} does not exist (HTTP ${res.status}); check data.baseUrl and data.datasets`, 'NotFound');
  }
  if (res.status === 403 || res.status === 401) {
    throw ApplicationFailure.nonRetryable(`${safeUrl(url)} refused access (HTTP ${res.status})`, 'NotFound');
  }
  if (!res.ok || !res.body) throw new Error(`GET ${safeUrl(url)}: HTTP ${res.status}`); // 5xx etc.: retry
  // 206 continues the part file; 200 means the server ignored Range, so start over.
  const append = res.status === 206 && have > 0;
  let done = append ? have : 0;
  let last = 0;
  const progress = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      done += chunk.length;
      if (done - last > 8 << 20) {
        last = done;
        ctx.heartbeat({ bytes: done });
      }
      cb(null, chunk);
    },
  });
  await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), progress, createWriteStream(part, { flags: append ? 'a' : 'w' }));
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
  const log = runLogger({ activity: 'downloadDataset', dataset, split });
  const store = openStore(storeUrl);
  const key = rawKey(baseUrl, dataset, split);
  const metaKey = `${key}.meta.json`;
  if (await store.head(metaKey)) {
    const meta = JSON.parse((await store.get(metaKey)).toString('utf8')) as RawMeta;
    const head = await store.head(key);
    if (head && head.bytes === meta.bytes) return { key, bytes: meta.bytes, sha256: meta.sha256 };
  }

  const url = datasetUrl(baseUrl, dataset, split);
  const part = join(workDir('downloads'), `${contentHash(url)}.part`);
  await mkdir(dirname(part), { recursive: true });
  log.info({ url: safeUrl(url) }, 'downloading');
  if (url.startsWith('file://')) await fetchFile(url, part);
  else if (/^https?:\/\//.test(url)) await fetchHttp(url, part, ctx);
  else if (url.startsWith('s3://')) await fetchS3(url, part);
  else throw ApplicationFailure.nonRetryable(`unsupported data.baseUrl scheme in ${safeUrl(url)}: expected https://, http://, s3:// or file://`, 'InvalidSpec');

  const bytes = (await stat(part)).size;
  const sha256 = await sha256File(part);
  const expected = expectedFile(baseUrl, dataset, split);
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

