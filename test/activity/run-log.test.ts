/**
 * RunLogBook (activities/run-log.ts) on a real file store: the activity's records (redacted) and
 * the trainer's lines land in one object under runs/<trainingKey>/logs/, re-uploaded while they
 * change; a store that fails costs only the upload, never the activity.
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { RunLogBook } from '../../activities/run-log';
import { parseLogText } from '../../src/cli/logs';
import { FileObjectStore, type ObjectStore } from '../../src/store';
import { scratchDir } from '../helpers/fixtures';

describe('RunLogBook', () => {
  it('collects activity records and trainer lines, uploads on a timer and at close', async () => {
    const store = new FileObjectStore(join(scratchDir('run-log'), 'store'));
    const book = new RunLogBook({
      store,
      key: 'tk1',
      activity: 'train',
      attempt: 2,
      bindings: { runKey: 'tk1' },
      flushEveryMs: 50,
    });
    assert.match(book.key, /^runs\/tk1\/logs\/train-\d{8}T\d{6}-\d{3}Z-attempt-2\.jsonl$/);
    book.log.info({ secretAccessKey: 'hunter2', step: 3 }, 'before start');
    assert.equal(await store.head(book.key), null, 'nothing uploaded before start()');
    book.start();
    book.trainer('loading model');
    await new Promise((r) => setTimeout(r, 200));
    const live = parseLogText((await store.get(book.key)).toString('utf8'));
    assert.deepEqual(
      live.map((r) => r.msg),
      ['before start', 'loading model'],
    );
    assert.equal(live[0]!.secretAccessKey, '[redacted]');
    assert.equal(live[0]!.step, 3);
    assert.equal(live[1]!.source, 'trainer');
    book.log.debug('below info: console only');
    book.log.warn('done soon');
    await book.close();
    const all = parseLogText((await store.get(book.key)).toString('utf8'));
    assert.deepEqual(
      all.map((r) => r.msg),
      ['before start', 'loading model', 'done soon'],
    );
    assert.deepEqual(
      (await store.list('runs/tk1/logs/')).map((o) => o.key),
      [book.key],
    );
  });

  it('a failing store never throws out of flush or close', async () => {
    const broken = {
      url: 'file:///broken',
      put: async () => Promise.reject(new Error('store down')),
    } as unknown as ObjectStore;
    const book = new RunLogBook({ store: broken, key: 'tk2', activity: 'train', attempt: 1, bindings: {} });
    book.start();
    book.trainer('line');
    await book.flush();
    await book.close();
  });
});
