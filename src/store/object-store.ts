import type { TransferOptions } from './progress';

/**
 * One interface over every place bulk data lives. Keys are `/`-separated, relative to the store's
 * prefix, and never contain `..`: a key cannot escape the prefix.
 */
export interface ObjectInfo {
  key: string;
  bytes: number;
  /** Hex sha256 of the content, where the backend knows it (always for objects written by peftgrid). */
  sha256?: string;
}

/** A reference that travels through workflow history instead of the bytes themselves. */
export interface ObjectRef {
  key: string;
  bytes: number;
  sha256: string;
}

export interface ObjectStore {
  /** The URL this store was opened from (`file:///abs/dir`, `s3://bucket/prefix`). */
  readonly url: string;
  put(key: string, data: Uint8Array | string): Promise<ObjectRef>;
  /**
   * Upload a local file (streamed; large files in parallel parts where the backend can).
   * `opts.onProgress` sees the bytes as they go up (and the pre-upload hash as `hashedBytes`).
   */
  putFile(key: string, localPath: string, opts?: TransferOptions): Promise<ObjectRef>;
  get(key: string): Promise<Buffer>;
  /**
   * Download to a local file, verifying `expectedSha256` when given (else the sha256 the object
   * carries, where the backend keeps one). `opts.onProgress` sees the bytes as they come down.
   */
  getFile(key: string, localPath: string, expectedSha256?: string, opts?: TransferOptions): Promise<void>;
  /** null when absent. */
  head(key: string): Promise<ObjectInfo | null>;
  /** Every object whose key starts with `prefix`, sorted by key. */
  list(prefix: string): Promise<ObjectInfo[]>;
  delete(key: string): Promise<void>;
}

/** Thrown when a key is empty, absolute, or tries to leave the store prefix. */
export class InvalidKeyError extends Error {
  constructor(key: string) {
    super(
      `invalid object key ${JSON.stringify(key)}: keys are relative, '/'-separated, without '..' or empty segments`,
    );
    this.name = 'InvalidKeyError';
  }
}

/** Thrown by get/getFile when the object does not exist. */
export class ObjectNotFoundError extends Error {
  constructor(
    readonly storeUrl: string,
    readonly key: string,
  ) {
    super(`object not found: ${key} in ${storeUrl}`);
    this.name = 'ObjectNotFoundError';
  }
}

/** Thrown when downloaded bytes do not match the expected sha256 (a corrupt or partial object). */
export class ChecksumMismatchError extends Error {
  constructor(
    readonly key: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`checksum mismatch for ${key}: expected sha256 ${expected}, got ${actual}`);
    this.name = 'ChecksumMismatchError';
  }
}

export function checkKey(key: string): string {
  if (
    !key ||
    key.startsWith('/') ||
    key.includes('\\') ||
    key.split('/').some((s) => s === '' || s === '.' || s === '..')
  ) {
    throw new InvalidKeyError(key);
  }
  return key;
}

/** `a/b` + `c` → `a/b/c`, validated. */
export function joinKey(...parts: string[]): string {
  return checkKey(parts.filter(Boolean).join('/'));
}
