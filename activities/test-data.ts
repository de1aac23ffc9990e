/**
 * The tokenized test split as evaluation reads it, verified against the sha256 of the ObjectRef the
 * run carries. Evaluation must score exactly the data the run was planned on: a split overwritten
 * or corrupted in the store after tokenization would otherwise be evaluated, and its metrics would
 * look just as valid as right ones.
 */
import { createHash } from 'node:crypto';
import { FailureType } from '../src/contracts/failures';
import { failure } from './failure';
import type { ObjectRef, ObjectStore } from '../src/store';
import type { TestItem } from './evaluate';

/**
 * Reads and parses the split. A mismatch is read once more (a body cut short in transit is not the
 * object); a second mismatch is the stored object itself, which every retry would read again: a
 * non-retryable `InvalidData` naming the key and both checksums.
 */
export async function readTestItems(store: ObjectStore, ref: ObjectRef): Promise<TestItem[]> {
  let bytes = await store.get(ref.key);
  let sha256 = createHash('sha256').update(bytes).digest('hex');
  if (sha256 !== ref.sha256) {
    bytes = await store.get(ref.key);
    sha256 = createHash('sha256').update(bytes).digest('hex');
  }
  if (sha256 !== ref.sha256) {
    throw failure(
      FailureType.InvalidData,
      `test split ${ref.key} in ${store.url} is not the one this run was planned on: sha256 ${sha256} (${bytes.length} bytes), ` +
        `expected ${ref.sha256} (${ref.bytes} bytes); it was changed or corrupted after tokenization, so it is not evaluated`,
      {
        key: ref.key,
        expectedSha256: ref.sha256,
        actualSha256: sha256,
        expectedBytes: ref.bytes,
        actualBytes: bytes.length,
      },
    );
  }
  return bytes
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as TestItem);
}
