/**
 * Bounded-concurrency scheduling for workflow code: start items in order, at most `limit` at once,
 * stop starting after `maxStarts` or when `stopStarting()` says so, then wait for what started.
 *
 * Pure and deterministic, with no Temporal import: the caller injects `waitUntil` (the workflow
 * passes `condition`, tests a microtask poll), so the same code runs in the workflow sandbox and in
 * unit tests. It issues no commands of its own: the order in which `run` is called, and each
 * `waitUntil` before a start, is exactly the loop experimentGridWorkflow had inline (the
 * recorded-history replay tests depend on it).
 */

export interface BoundedRunOptions<T> {
  /** Started in this order. */
  items: readonly T[];
  /** Items in flight at once (>= 1). */
  limit: number;
  /** Items started by this call at most; the rest are returned unstarted. */
  maxStarts: number;
  /** Checked before each start; true stops starting (e.g. continue-as-new suggested). */
  stopStarting: () => boolean;
  /** Resolves once `ready()` is true (the workflow's `condition`). */
  waitUntil: (ready: () => boolean) => Promise<unknown>;
  /** Runs one item. A rejection rejects the whole call once every started item has settled or one rejects (Promise.all). */
  run: (item: T) => Promise<void>;
}

/** Runs items with bounded concurrency; resolves with the items it did not start, in order. */
export async function runBounded<T>(o: BoundedRunOptions<T>): Promise<T[]> {
  if (!Number.isInteger(o.limit) || o.limit < 1)
    throw new TypeError(`runBounded: limit = ${o.limit}, expected an integer >= 1`);
  const pending = [...o.items];
  const inFlight: Promise<void>[] = [];
  let running = 0;
  let started = 0;
  while (pending.length > 0 && started < o.maxStarts && !o.stopStarting()) {
    await o.waitUntil(() => running < o.limit);
    const item = pending.shift()!;
    running++;
    started++;
    inFlight.push(
      o.run(item).finally(() => {
        running--;
      }),
    );
  }
  await Promise.all(inFlight);
  return pending;
}
