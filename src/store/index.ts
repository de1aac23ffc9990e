import { resolve } from 'node:path';
import { FileObjectStore } from './file-store';
import { S3ObjectStore } from './s3-store';
import type { ObjectStore } from './object-store';

export * from './object-store';
export { FileObjectStore, sha256File } from './file-store';
export * from './directory';
export * from './progress';
export { S3ObjectStore, s3ClientConfigFromEnv, type S3StoreOptions } from './s3-store';

/** Thrown by {@link openStore} for a URL no backend serves. */
export class UnsupportedStoreError extends Error {
  constructor(url: string) {
    super(`unsupported store URL ${JSON.stringify(url)}: expected file:///dir or s3://bucket/prefix`);
    this.name = 'UnsupportedStoreError';
  }
}

const cache = new Map<string, ObjectStore>();

/** Opens (and caches per process) the store behind a URL. */
export function openStore(url: string): ObjectStore {
  let store = cache.get(url);
  if (store) return store;
  if (url.startsWith('file://')) store = new FileObjectStore(resolve(url.slice('file://'.length)));
  else if (url.startsWith('s3://')) store = new S3ObjectStore(url);
  else throw new UnsupportedStoreError(url);
  cache.set(url, store);
  return store;
}
export { DEFAULT_RETENTION, pruneCheckpoints, type PruneResult, type RetentionPolicy } from './retention';
