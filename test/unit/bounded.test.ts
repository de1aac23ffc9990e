/** src/common/bounded.ts: the grid's run scheduler, outside Temporal. */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { runBounded } from '../../src/common/bounded';

/** `condition` stand-in: re-checks after every macrotask, as the workflow re-checks after every activation. */
const waitUntil = (ready: () => boolean) =>
  new Promise<void>((resolve) => {
    const check = () => (ready() ? resolve() : setImmediate(check));
    check();
  });

/** A run that takes `ticks` macrotasks, recording concurrency and start/finish order. */
function recorder(ticks: (item: number) => number) {
  const log: string[] = [];
  let now = 0;
  let peak = 0;
  const run = async (item: number) => {
    now++;
    peak = Math.max(peak, now);
    log.push(`start ${item}`);
    for (let i = 0; i < ticks(item); i++) await new Promise((r) => setImmediate(r));
    log.push(`end ${item}`);
    now--;
  };
  return { run, log, peak: () => peak };
}

describe('runBounded', () => {
  it('never has more than limit in flight, starts in order, and waits for all', async () => {
    const r = recorder((i) => (i % 3) + 1);
    const left = await runBounded({
      items: [0, 1, 2, 3, 4, 5, 6],
      limit: 3,
      maxStarts: 100,
      stopStarting: () => false,
      waitUntil,
      run: r.run,
    });
    assert.deepEqual(left, []);
    assert.equal(r.peak(), 3);
    assert.deepEqual(
      r.log.filter((l) => l.startsWith('start')),
      [0, 1, 2, 3, 4, 5, 6].map((i) => `start ${i}`),
    );
    assert.equal(r.log.filter((l) => l.startsWith('end')).length, 7, 'every started item finished before it resolved');
  });

  it('a freed slot starts the next item only after one finishes', async () => {
    const r = recorder(() => 2);
    await runBounded({ items: [0, 1, 2], limit: 1, maxStarts: 100, stopStarting: () => false, waitUntil, run: r.run });
    assert.deepEqual(r.log, ['start 0', 'end 0', 'start 1', 'end 1', 'start 2', 'end 2']);
  });

  it('stops after maxStarts and returns the unstarted items in order', async () => {
    const r = recorder(() => 1);
    const left = await runBounded({
      items: ['a', 'b', 'c', 'd'].map((_, i) => i),
      limit: 2,
      maxStarts: 3,
      stopStarting: () => false,
      waitUntil,
      run: r.run,
    });
    assert.deepEqual(left, [3]);
    assert.equal(r.log.filter((l) => l.startsWith('start')).length, 3);
  });

  it('stops when stopStarting() turns true (continue-as-new suggested)', async () => {
    const r = recorder(() => 1);
    let starts = 0;
    const left = await runBounded({
      items: [0, 1, 2, 3],
      limit: 4,
      maxStarts: 100,
      stopStarting: () => starts >= 2,
      waitUntil,
      run: async (i) => {
        starts++;
        await r.run(i);
      },
    });
    assert.deepEqual(left, [2, 3]);
  });

  it('calls waitUntil once before every start, with nothing started when the items are empty', async () => {
    let waits = 0;
    const counting = (ready: () => boolean) => {
      waits++;
      return waitUntil(ready);
    };
    assert.deepEqual(
      await runBounded({
        items: [],
        limit: 1,
        maxStarts: 5,
        stopStarting: () => false,
        waitUntil: counting,
        run: async () => {},
      }),
      [],
    );
    assert.equal(waits, 0);
    await runBounded({
      items: [1, 2, 3],
      limit: 2,
      maxStarts: 5,
      stopStarting: () => false,
      waitUntil: counting,
      run: async () => {},
    });
    assert.equal(waits, 3);
  });

  it('rejects a limit below 1 (it would wait forever)', async () => {
    await assert.rejects(
      runBounded({ items: [1], limit: 0, maxStarts: 1, stopStarting: () => false, waitUntil, run: async () => {} }),
      /limit = 0, expected an integer >= 1/,
    );
  });
});
