/**
 * `s3://bucket/prefix` on @aws-sdk/client-s3: AWS, SeaweedFS, MinIO, R2 … Endpoint, region and
 * credentials come from the standard AWS environment and config chain (AWS_ENDPOINT_URL_S3 or
 * AWS_ENDPOINT_URL for S3-compatible servers, which also switches to path-style addressing).
 * Large files go up as parallel multipart uploads and come down as parallel ranged GETs; every
 * object peftgrid writes carries its sha256 in metadata, verified on the way down.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline, Transform, type Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { s3Env, type Env } from '../common/env';
import { mapLimit } from './directory';
import { sha256File } from './file-store';
import {
  ChecksumMismatchError,
  checkKey,
  ObjectNotFoundError,
  type ObjectInfo,
  type ObjectRef,
  type ObjectStore,
} from './object-store';
import { ProgressCounter, type TransferOptions } from './progress';

export interface S3StoreOptions {
  /** Files at least this large use multipart upload / ranged download. @default 16 MiB */
  multipartThreshold?: number;
  /** Part size. @default 8 MiB */
  partSize?: number;
  /** Parts in flight at once. @default 4 */
  parallel?: number;
  /** Extra client config (tests point it at a loopback server). */
  client?: S3ClientConfig;
}

const MiB = 1024 * 1024;

/**
 * `src` as the body of a request, counting each chunk as the HTTP client reads it (so, give or
 * take the socket's buffers, as it is sent). `pipeline` carries a read error into the body.
 */
function counted(src: Readable, onBytes: (n: number) => void): Readable {
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      onBytes(chunk.length);
      cb(null, chunk);
    },
  });
  return pipeline(src, tap, () => undefined);
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}

export function s3ClientConfigFromEnv(env: Env = process.env): S3ClientConfig {
  const { endpoint, region, maxAttempts } = s3Env(env);
  return {
    region,
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    maxAttempts,
    // Newer SDKs add CRC checksums to every request; several S3-compatible servers reject them.
    // peftgrid verifies its own sha256 end to end instead.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}

export class S3ObjectStore implements ObjectStore {
  readonly url: string;
  readonly bucket: string;
  readonly prefix: string;
  private readonly s3: S3Client;
  private readonly threshold: number;
  private readonly partSize: number;
  private readonly parallel: number;

  constructor(url: string, options: S3StoreOptions = {}) {
    const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
    if (!m) throw new TypeError(`invalid S3 URL ${JSON.stringify(url)}: expected s3://bucket[/prefix]`);
    this.url = url.replace(/\/+$/, '');
    this.bucket = m[1]!;
    this.prefix = m[2]!.replace(/\/+$/, '');
    this.s3 = new S3Client({ ...s3ClientConfigFromEnv(), ...options.client });
    this.threshold = options.multipartThreshold ?? 16 * MiB;
    this.partSize = options.partSize ?? 8 * MiB;
    this.parallel = options.parallel ?? 4;
  }

  private k(key: string): string {
    checkKey(key);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  async put(key: string, data: Uint8Array | string): Promise<ObjectRef> {
    const body = typeof data === 'string' ? Buffer.from(data) : data;
    const sha256 = createHash('sha256').update(body).digest('hex');
    await this.s3.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: this.k(key), Body: body, Metadata: { sha256 } }),
    );
    return { key, bytes: body.byteLength, sha256 };
  }

  async putFile(key: string, localPath: string, opts: TransferOptions = {}): Promise<ObjectRef> {
    const { size } = await stat(localPath);
    const progress = new ProgressCounter(size, opts);
    // The sha256 goes into the object's metadata, which S3 takes before the first byte: hashed
    // first, and reported as `hashedBytes` (tens of seconds for a multi-GB file).
    const sha256 = await sha256File(localPath, (n) => progress.addHashed(n));
    if (size < this.threshold) {
      await this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.k(key),
          Body: counted(createReadStream(localPath), (n) => progress.add(n)),
          ContentLength: size,
          Metadata: { sha256 },
        }),
      );
      progress.done();
      return { key, bytes: size, sha256 };
    }
    const { UploadId } = await this.s3.send(
      new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: this.k(key), Metadata: { sha256 } }),
    );
    const parts = Array.from({ length: Math.ceil(size / this.partSize) }, (_, i) => i);
    try {
      const etags = await mapLimit(parts, this.parallel, async (i) => {
        const start = i * this.partSize;
        const end = Math.min(size, start + this.partSize) - 1;
        // Counted up to the part's size at most, so progress can never pass the total.
        let sent = 0;
        const res = await this.s3.send(
          new UploadPartCommand({
            Bucket: this.bucket,
            Key: this.k(key),
            UploadId,
            PartNumber: i + 1,
            Body: counted(createReadStream(localPath, { start, end }), (n) => {
              const before = sent;
              sent = Math.min(end - start + 1, sent + n);
              progress.add(sent - before);
            }),
            ContentLength: end - start + 1,
          }),
        );
        return { ETag: res.ETag, PartNumber: i + 1 };
      });
      // S3 may take minutes to assemble a large object ("Processing of a Complete Multipart Upload
      // request could take several minutes"): progress repeats meanwhile, so the caller can heartbeat.
      const ticking = setInterval(() => progress.tick(), opts.progressEveryMs ?? 1000);
      try {
        await this.s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key: this.k(key),
            UploadId,
            MultipartUpload: { Parts: etags },
          }),
        );
      } finally {
        clearInterval(ticking);
      }
    } catch (err) {
      // Uncommitted parts cost storage and are invisible anyway; a retry starts a new upload.
      await this.s3
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.k(key), UploadId }))
        .catch(() => undefined);
      throw err;
    }
    progress.done();
    return { key, bytes: size, sha256 };
  }

  async get(key: string): Promise<Buffer> {
    try {
      const res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.k(key) }));
      return Buffer.from(await res.Body!.transformToByteArray());
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(this.url, key);
      throw err;
    }
  }

  async getFile(key: string, localPath: string, expectedSha256?: string, opts: TransferOptions = {}): Promise<void> {
    const head = await this.head(key);
    if (!head) throw new ObjectNotFoundError(this.url, key);
    const progress = new ProgressCounter(head.bytes, opts);
    await mkdir(dirname(localPath), { recursive: true });
    const tmp = `${localPath}.part-${process.pid}`;
    const fh = await open(tmp, 'w');
    try {
      const ranges =
        head.bytes < this.threshold
          ? [[0, head.bytes - 1]]
          : Array.from({ length: Math.ceil(head.bytes / this.partSize) }, (_, i) => [
              i * this.partSize,
              Math.min(head.bytes, (i + 1) * this.partSize) - 1,
            ]);
      await mapLimit(ranges, this.parallel, async ([start, end]) => {
        if (end! < start!) return; // empty object
        const res = await this.s3.send(
          new GetObjectCommand({ Bucket: this.bucket, Key: this.k(key), Range: `bytes=${start}-${end}` }),
        );
        // Streamed to its offset chunk by chunk: progress as bytes arrive, no part held in memory.
        let at = start!;
        for await (const chunk of res.Body as AsyncIterable<Uint8Array>) {
          await fh.write(chunk, 0, chunk.length, at);
          at += chunk.length;
          progress.add(chunk.length);
        }
        // A connection cut mid-body ends the stream early without an error on some servers.
        if (at !== end! + 1) throw new Error(`GET ${key} bytes=${start}-${end}: body ended after ${at - start!} bytes`);
      });
    } finally {
      await fh.close();
    }
    const want = expectedSha256 ?? head.sha256;
    if (want) {
      const actual = await sha256File(tmp, (n) => progress.addHashed(n));
      if (actual !== want) {
        await rm(tmp, { force: true });
        throw new ChecksumMismatchError(key, want, actual);
      }
    }
    await rename(tmp, localPath);
    progress.done();
  }

  async head(key: string): Promise<ObjectInfo | null> {
    try {
      const res = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.k(key) }));
      return { key, bytes: res.ContentLength ?? 0, ...(res.Metadata?.sha256 ? { sha256: res.Metadata.sha256 } : {}) };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    const full = this.prefix ? `${this.prefix}/${prefix}` : prefix;
    let token: string | undefined;
    do {
      const res = await this.s3.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: full, ContinuationToken: token }),
      );
      for (const o of res.Contents ?? []) {
        if (o.Key) out.push({ key: this.prefix ? o.Key.slice(this.prefix.length + 1) : o.Key, bytes: o.Size ?? 0 });
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.k(key) }));
  }

  destroy(): void {
    this.s3.destroy();
  }
}
