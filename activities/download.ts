/**
 * downloadDataset: one raw UnifiedQA split from any base URL (https, http, file://, s3://) into the
 * store. Streams to a local `.part` file that survives retries on the same worker (an HTTP retry
 * resumes it with a Range request), verifies size/sha256 where they are known (the catalog for the
 * canonical bucket, else `input.expected`), then commits the object and a `.meta.json` sidecar.
 *
 * A committed split whose content is known (the catalog's checksum for the canonical bucket, or
 * `expected`) is never fetched again. Any other source can change under the same URL (an edited
 * file:// sample, a re-published mirror), so it is re-checked on every call against the sidecar:
 * file:// by size and mtime, then by sha256; http(s) by ETag or Last-Modified (a HEAD request),
 * else by downloading and hashing again; s3:// by the object's sha256 metadata, else by
 * downloading. Its raw object is content-addressed (`<split>-<sha256 prefix>.tsv`), so a changed
 * source gets a new key, the preparation keyed by it is redone, and old references stay valid.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, Transform } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Context } from '@temporalio/activity';
import { FailureType } from '../src/contracts/failures';
import { failure } from './failure';
import { CATALOG, datasetUrl, isDatasetName, UNIFIEDQA_BASE_URL, type Split } from '../src/data/catalog';
import { contentHash } from '../src/common/hash';
import { runLogger, safeUrl } from '../src/common/logger';
import { joinKey, ObjectNotFoundError, openStore, sha256File, type ObjectRef } from '../src/store';
import { workDir } from './paths';
import { activityHeartbeat, type ActivityHeartbeat } from './transfer-heartbeat';
import type { DownloadDatasetInput } from '../src/contracts';
// Contracts live in src/contracts; re-exported so callers can keep importing them from here.
export type { DownloadDatasetInput } from '../src/contracts';

interface RawMeta {
  url: string;
  bytes: number;
  sha256: string;
  /** The committed object (absent in sidecars written before content-addressed raw keys: rawKey()). */
  key?: string;
  /** What the source said when it was fetched, to notice a change without downloading it again. */
  mtimeMs?: number;
  etag?: string;
  lastModified?: string;
}

function isCanonical(baseUrl: string): boolean {
  return baseUrl.replace(/\/+$/, '') === UNIFIEDQA_BASE_URL;
}

/**
 * Raw files from the canonical bucket live under `unifiedqa/<dataset>/<split>.tsv`; any other
 * source under its URL's hash, named by content when `sha256` is given (`<split>-<16 hex>.tsv`).
 * Without `sha256`: the key of the split's `.meta.json` sidecar, minus that suffix.
 */
export function rawKey(baseUrl: string, dataset: string, split: string, sha256?: string, ext = 'tsv'): string {
  const source = isCanonical(baseUrl) ? 'unifiedqa' : `src-${contentHash(baseUrl)}`;
  const name = sha256 && !isCanonical(baseUrl) ? `${split}-${sha256.slice(0, 16)}.${ext}` : `${split}.${ext}`;
  return joinKey('datasets', 'raw', source, dataset, name);
}

function expectedFile(input: DownloadDatasetInput): { bytes: number; sha256: string } | undefined {
  if (input.expected) return input.expected;
  // Catalog sizes and checksums describe the canonical bucket only; mirrors may differ.
  if (input.url || !isCanonical(input.baseUrl) || !isDatasetName(input.dataset)) return undefined;
  return CATALOG[input.dataset].splits[input.split as Split];
}

/** Heartbeat at most once per this many bytes (the SDK throttles further; this bounds the calls). */
const HEARTBEAT_BYTES = 1 << 20;
/** …or once per this many ms, so a slow source still shows bytes moving. */
const HEARTBEAT_MS = 250;

/** `bytes START-END/TOTAL` → START; undefined when absent or unparsable. */
function rangeStart(contentRange: string | null): number | undefined {
  const m = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(contentRange?.trim() ?? '');
  return m ? Number(m[1]) : undefined;
}

/** ETag and Last-Modified of a response, as recorded in the sidecar. */
function validators(res: Response): Pick<RawMeta, 'etag' | 'lastModified'> {
  const etag = res.headers.get('etag');
  const lastModified = res.headers.get('last-modified');
  return { ...(etag ? { etag } : {}), ...(lastModified ? { lastModified } : {}) };
}

async function fetchHttp(
  url: string,
  part: string,
  ctx: Context,
  hb: ActivityHeartbeat,
  expectedBytes: number | undefined,
): Promise<Pick<RawMeta, 'etag' | 'lastModified'>> {
  let have = (await stat(part).catch(() => null))?.size ?? 0;
  if (expectedBytes !== undefined && have > expectedBytes) {
    await rm(part, { force: true }); // longer than the file can be: not a prefix of it
    have = 0;
  }
  if (expectedBytes !== undefined && have === expectedBytes) return {}; // complete; the checksum decides
  const res = await fetch(url, { headers: have ? { Range: `bytes=${have}-` } : {}, signal: ctx.cancellationSignal });
  if (res.status === 404 || res.status === 410) {
    throw failure(
      FailureType.NotFound,
      `${safeUrl(url)} does not exist (HTTP ${res.status}); check data.baseUrl and data.datasets`,
    );
  }
  if (res.status === 403 || res.status === 401) {
    throw failure(FailureType.NotFound, `${safeUrl(url)} refused access (HTTP ${res.status})`);
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
    throw new Error(
      `GET ${safeUrl(url)}: asked for bytes=${have}-, got Content-Range ${JSON.stringify(res.headers.get('content-range'))}; discarded the partial download`,
    );
  }
  if (res.status === 200) append = false;
  const done = append ? have : 0;
  const length = Number(res.headers.get('content-length') ?? NaN);
  const total = Number.isFinite(length) ? done + length : expectedBytes;
  // On a dropped connection the bytes already written stay in the part file for the next attempt.
  await pipeline(
    Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
    countBytes(hb, done, total),
    createWriteStream(part, { flags: append ? 'a' : 'w' }),
  );
  return validators(res);
}

/**
 * A pass-through that heartbeats `{ phase: 'download-data', bytes, totalBytes }` as bytes flow
 * (from `start`, where a resumed download continues), at the first and the last byte too.
 * `totalBytes` is absent when the source does not say how long it is.
 */
function countBytes(hb: ActivityHeartbeat, start: number, total: number | undefined): Transform {
  let done = start;
  let lastBytes = done;
  let lastAt = Date.now();
  const report = () =>
    hb.details({ phase: 'download-data', bytes: done, ...(total !== undefined ? { totalBytes: total } : {}) });
  report();
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      done += chunk.length;
      if (done - lastBytes >= HEARTBEAT_BYTES || Date.now() - lastAt >= HEARTBEAT_MS) {
        lastBytes = done;
        lastAt = Date.now();
        report();
      }
      cb(null, chunk);
    },
    flush(cb) {
      report();
      cb();
    },
  });
}

async function statSource(path: string): Promise<Stats> {
  const st = await stat(path).catch(() => null);
  if (!st) throw failure(FailureType.NotFound, `${path} does not exist; check data.baseUrl and data.datasets`);
  return st;
}

async function fetchFile(url: string, part: string, hb: ActivityHeartbeat): Promise<Pick<RawMeta, 'mtimeMs'>> {
  const path = fileURLToPath(url);
  const { mtimeMs, size } = await statSource(path);
  await pipeline(createReadStream(path), countBytes(hb, 0, size), createWriteStream(part));
  return { mtimeMs };
}

/**
 * Whether a non-canonical source still holds what the sidecar recorded. file://: same size and
 * mtime, or else the same sha256 (a touched but unedited file is not fetched again); http(s): same
 * ETag, or same Last-Modified and length; s3://: same sha256 metadata. Anything else: unknown,
 * which the caller treats as changed (it downloads and hashes; same bytes keep the same key).
 */
async function sourceUnchanged(url: string, meta: RawMeta, ctx: Context): Promise<boolean> {
  if (url.startsWith('file://')) {
    const path = fileURLToPath(url);
    const st = await statSource(path);
    if (st.size !== meta.bytes) return false;
    if (meta.mtimeMs !== undefined && st.mtimeMs === meta.mtimeMs) return true;
    return (await sha256File(path)) === meta.sha256;
  }
  if (/^https?:\/\//.test(url)) {
    if (!meta.etag && !meta.lastModified) return false;
    const res = await fetch(url, { method: 'HEAD', signal: ctx.cancellationSignal });
    if (!res.ok) return false; // the download that follows reports 404s and retries 5xx
    const now = validators(res);
    if (meta.etag && now.etag) return now.etag === meta.etag;
    const length = res.headers.get('content-length');
    return (
      !!meta.lastModified &&
      now.lastModified === meta.lastModified &&
      (length === null || Number(length) === meta.bytes)
    );
  }
  if (url.startsWith('s3://')) {
    const slash = url.lastIndexOf('/');
    const info = await openStore(url.slice(0, slash)).head(decodeURIComponent(url.slice(slash + 1)));
    return !!info?.sha256 && info.sha256 === meta.sha256 && info.bytes === meta.bytes;
  }
  return false;
}

async function fetchS3(url: string, part: string, hb: ActivityHeartbeat): Promise<void> {
  const slash = url.lastIndexOf('/');
  const source = openStore(url.slice(0, slash));
  const name = decodeURIComponent(url.slice(slash + 1));
  try {
    await source.getFile(name, part, undefined, hb.transfer('download-data'));
  } catch (err) {
    if (err instanceof ObjectNotFoundError)
      throw failure(FailureType.NotFound, `${url} does not exist; check data.baseUrl and data.datasets`);
    throw err;
  }
}

export async function downloadDataset(input: DownloadDatasetInput): Promise<ObjectRef> {
  const ctx = Context.current();
  const hb = activityHeartbeat(ctx);
  const { storeUrl, baseUrl, dataset, split } = input;
  if (!/^[a-z0-9_]+$/.test(dataset) || !/^[a-z0-9_]+$/.test(split)) {
    throw failure(
      FailureType.InvalidSpec,
      `invalid dataset/split name ${JSON.stringify(`${dataset}/${split}`)}: expected [a-z0-9_]+`,
    );
  }
  const { expected: given } = input;
  if (
    given !== undefined &&
    !(Number.isSafeInteger(given.bytes) && given.bytes >= 0 && /^[0-9a-f]{64}$/.test(given.sha256))
  ) {
    throw failure(
      FailureType.InvalidSpec,
      `invalid expected ${JSON.stringify(given)}: need { bytes: integer >= 0, sha256: 64 lowercase hex }`,
    );
  }
  const expected = expectedFile(input);
  const log = runLogger({ activity: 'downloadDataset', dataset, split });
  const store = openStore(storeUrl);
  // A custom dataset names its file itself: keyed by that URL, as a mirror is by its base URL.
  const source = input.url ?? baseUrl;
  const ext = input.url ? 'jsonl' : 'tsv';
  const metaKey = `${rawKey(source, dataset, split, undefined, ext)}.meta.json`;
  const url = input.url ?? datasetUrl(baseUrl, dataset, split);
  if (await store.head(metaKey)) {
    const meta = JSON.parse((await store.get(metaKey)).toString('utf8')) as RawMeta;
    const committed = meta.key ?? rawKey(source, dataset, split, undefined, ext);
    const head = await store.head(committed);
    // A commit made without (or against other) expectations is redone when it does not match them;
    // without expectations the source itself is asked whether it changed.
    const current = expected ? expected.sha256 === meta.sha256 : await sourceUnchanged(url, meta, ctx);
    if (head && head.bytes === meta.bytes && current) return { key: committed, bytes: meta.bytes, sha256: meta.sha256 };
    if (head && !current)
      log.info({ url: safeUrl(url), committed }, 'source changed since it was committed; fetching it again');
  }

  const part = join(workDir('downloads'), `${contentHash(url)}.part`);
  await mkdir(dirname(part), { recursive: true });
  log.info({ url: safeUrl(url) }, 'downloading');
  let seen: Pick<RawMeta, 'mtimeMs' | 'etag' | 'lastModified'> = {};
  if (url.startsWith('file://')) seen = await fetchFile(url, part, hb);
  else if (/^https?:\/\//.test(url)) seen = await fetchHttp(url, part, ctx, hb, expected?.bytes);
  else if (url.startsWith('s3://')) await fetchS3(url, part, hb);
  else
    throw failure(
      FailureType.InvalidSpec,
      `unsupported data.baseUrl scheme in ${safeUrl(url)}: expected https://, http://, s3:// or file://`,
    );

  const bytes = (await stat(part)).size;
  const sha256 = await sha256File(part);
  if (expected && (expected.bytes !== bytes || expected.sha256 !== sha256)) {
    await rm(part, { force: true }); // a truncated or altered download: fetch it whole next time
    throw failure(
      FailureType.ChecksumMismatch,
      `${safeUrl(url)}: got ${bytes} bytes (sha256 ${sha256.slice(0, 12)}…), expected ${expected.bytes} (${expected.sha256.slice(0, 12)}…)`,
    );
  }
  const key = rawKey(source, dataset, split, sha256, ext);
  const ref = await store.putFile(key, part, hb.transfer('upload-data'));
  // The sidecar is written last: it is the commit point, and names the object it commits.
  await store.put(metaKey, JSON.stringify({ url: safeUrl(url), bytes, sha256, key, ...seen } satisfies RawMeta));
  await rm(part, { force: true });
  log.info({ key, bytes }, 'downloaded');
  return ref;
}
