/**
 * The checkpoint store protocol (activities/checkpoints.ts, activities/resume.ts) on a real file
 * store and, where SeaweedFS is built, on the S3 store: resume picks the newest committed
 * checkpoint even when the heartbeat is older; a committed step is never rewritten; two attempts
 * committing the same step at once never leave a manifest pointing at a mix of their files; a
 * checkpoint the trainer rejects (exit 3) is marked and the attempt falls back, one trainer start
 * per candidate, down to a fresh start. The trainer is a stub here; test/activity/train-resume
 * runs the real one.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import {
  attemptStage,
  checkpointKey,
  commitCheckpoint,
  committedCheckpoints,
  markRejected,
  readRejections,
  REJECTED,
  restoreCheckpoint,
  type RestoredCheckpoint,
} from '../../activities/checkpoints';
import { runWithCheckpointFallback } from '../../activities/resume';
import { EXIT_CHECKPOINT_REJECTED, type TrainerRunResult } from '../../activities/trainer-process';
import {
  FileObjectStore,
  getDirectory,
  joinKey,
  manifestFileKey,
  MANIFEST,
  readManifest,
  S3ObjectStore,
  type ObjectStore,
} from '../../src/store';
import { scratchDir } from '../helpers/fixtures';
import { startS3Server, weedAvailable, type S3Server } from '../helpers/s3-server';

const dir = scratchDir('checkpoints');
const log = pino({ level: 'silent' });
const VERSION = 'peftgrid@test+abc';

/** A local checkpoint directory whose every file carries `tag` (so a mix of two is detectable). */
function localCheckpoint(name: string, step: number, tag: string, size = 4096): string {
  const d = join(dir, 'local', name);
  mkdirSync(join(d, 'nested'), { recursive: true });
  writeFileSync(join(d, 'trainable.safetensors'), Buffer.alloc(size, tag));
  writeFileSync(join(d, 'optimizer.pt'), Buffer.alloc(size * 2, tag));
  writeFileSync(join(d, 'nested', 'rng.pt'), `${tag} rng`);
  writeFileSync(join(d, 'trainer_state.json'), JSON.stringify({ version: 1, step, tag }));
  return d;
}

async function commitSteps(store: ObjectStore, runKey: string, steps: number[]): Promise<void> {
  for (const step of steps) {
    const out = await commitCheckpoint(
      store,
      checkpointKey(runKey, step),
      localCheckpoint(`${runKey}-${step}`, step, `s${step}`),
      { step, runKey },
      attemptStage(1),
    );
    assert.equal(out.status, 'committed');
  }
}

/** Wraps a store so every putFile waits a random few ms: concurrent writers really interleave. */
function jittery(store: ObjectStore): ObjectStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop === 'putFile' || prop === 'put') {
        return async (...args: unknown[]) => {
          await new Promise((r) => setTimeout(r, Math.random() * 15));
          return (v as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        };
      }
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

const rejectedRun = (type = 'CheckpointRejected'): TrainerRunResult => ({
  code: EXIT_CHECKPOINT_REJECTED,
  signal: null,
  error: { type, message: '--resume-from: trainer_state.json version 0; expected 1' },
  stderrTail: '',
});
const okRun: TrainerRunResult = { code: 0, signal: null, stderrTail: '' };

function suite(name: string, open: () => ObjectStore) {
  describe(`checkpoints on the ${name} store`, { timeout: 3 * 60_000 }, () => {
    it('resumes from the newest committed checkpoint even when the heartbeat names an older one', async () => {
      const store = open();
      const runKey = `newest-${name}`;
      await commitSteps(store, runKey, [2, 4, 6]);
      const got = await restoreCheckpoint(
        store,
        runKey,
        join(dir, 'restore', runKey),
        { hinted: checkpointKey(runKey, 4), codeVersion: VERSION },
        log,
      );
      assert.equal(got?.step, 6, 'the listing is newer than the heartbeat: its newest wins');
      assert.equal(JSON.parse(readFileSync(join(got!.dir, 'trainer_state.json'), 'utf8')).tag, 's6');
      // A heartbeat that names a checkpoint the listing does not show is still a candidate (and
      // loses to nothing higher): here it is absent from the store, so the listing's newest wins.
      assert.equal(
        (
          await restoreCheckpoint(
            store,
            runKey,
            join(dir, 'restore', `${runKey}-b`),
            { hinted: checkpointKey(runKey, 99), codeVersion: VERSION },
            log,
          )
        )?.step,
        6,
      );
    });

    it('a second commit of a committed step is skipped: the committed files do not change', async () => {
      const store = open();
      const runKey = `twice-${name}`;
      const prefix = checkpointKey(runKey, 4);
      const first = await commitCheckpoint(
        store,
        prefix,
        localCheckpoint('twice-a', 4, 'A'),
        { step: 4, runKey },
        'a1-aaaa',
      );
      assert.equal(first.status, 'committed');
      const before = await store.get(joinKey(prefix, MANIFEST));
      const keysBefore = (await store.list(prefix + '/')).map((o) => `${o.key}:${o.bytes}`);
      const second = await commitCheckpoint(
        store,
        prefix,
        localCheckpoint('twice-b', 4, 'B', 5000),
        { step: 4, runKey },
        'a2-bbbb',
      );
      assert.equal(second.status, 'skipped');
      assert.deepEqual(await store.get(joinKey(prefix, MANIFEST)), before, 'manifest untouched');
      assert.deepEqual(
        (await store.list(prefix + '/')).map((o) => `${o.key}:${o.bytes}`),
        keysBefore,
        'no file written or rewritten',
      );
      const m = await getDirectory<{ step: number }>(store, prefix, join(dir, 'check', runKey));
      assert.equal(m.stage, 'a1-aaaa');
      assert.equal(readFileSync(join(dir, 'check', runKey, 'trainable.safetensors'))[0], 'A'.charCodeAt(0));
    });

    it('two attempts committing the same step at once never produce a manifest that points at a mix', async () => {
      const base = open();
      const store = jittery(base);
      for (let round = 0; round < 6; round++) {
        const runKey = `race-${name}-${round}`;
        const prefix = checkpointKey(runKey, 8);
        const a = localCheckpoint(`race-a-${round}`, 8, 'A');
        const b = localCheckpoint(`race-b-${round}`, 8, 'B');
        const [ra, rb] = await Promise.all([
          commitCheckpoint(store, prefix, a, { step: 8, runKey }, attemptStage(1)),
          commitCheckpoint(store, prefix, b, { step: 8, runKey }, attemptStage(2)),
        ]);
        assert.ok(ra.status === 'committed' || rb.status === 'committed');
        const manifest = (await readManifest<{ step: number }>(base, prefix))!;
        const winner = [ra, rb].find((r) => r.manifest.stage === manifest.stage);
        assert.ok(winner, `the manifest names one writer's stage (${manifest.stage})`);
        // Every file the manifest lists verifies, and all carry the same writer's tag.
        const local = join(dir, 'race-check', runKey);
        await getDirectory(base, prefix, local);
        const tags = new Set(
          manifest.files
            .filter((f) => f.path !== 'trainer_state.json')
            .map((f) => readFileSync(join(local, ...f.path.split('/')))[0]),
        );
        assert.equal(tags.size, 1, `files of one writer only: ${[...tags].join(',')}`);
        for (const f of manifest.files)
          assert.ok(manifestFileKey(prefix, manifest, f.path).startsWith(`${prefix}/${manifest.stage}/`));
      }
    });

    it('a rejected checkpoint is replaced when training reaches its step again: manifest deleted first', async () => {
      const base = open();
      const ops: string[] = [];
      const store = new Proxy(base, {
        get(target, prop, receiver) {
          const v = Reflect.get(target, prop, receiver) as unknown;
          if (prop === 'delete' || prop === 'put' || prop === 'putFile') {
            return (key: string, ...rest: unknown[]) => {
              ops.push(`${String(prop)} ${key}`);
              return (v as (...a: unknown[]) => Promise<unknown>).call(target, key, ...rest);
            };
          }
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
      const runKey = `replace-${name}`;
      const prefix = checkpointKey(runKey, 6);
      await commitCheckpoint(store, prefix, localCheckpoint('rep-old', 6, 'O'), { step: 6, runKey }, 'a1-old');
      await markRejected(store, prefix, {
        codeVersion: VERSION,
        type: 'CheckpointRejected',
        reason: 'state version',
        at: 1,
      });
      ops.length = 0;
      const out = await commitCheckpoint(
        store,
        prefix,
        localCheckpoint('rep-new', 6, 'N'),
        { step: 6, runKey },
        'a3-new',
      );
      assert.deepEqual(out.status === 'committed' && out.replaced, true);
      assert.equal(ops[0], `delete ${prefix}/${MANIFEST}`, `manifest deleted before anything else: ${ops.join(' | ')}`);
      assert.equal(ops[1], `delete ${prefix}/${REJECTED}`);
      assert.equal(ops.at(-1), `put ${prefix}/${MANIFEST}`, 'new manifest written last');
      assert.deepEqual(await readRejections(base, prefix), []);
      const local = join(dir, 'rep-check', runKey);
      assert.equal((await getDirectory(base, prefix, local)).stage, 'a3-new');
      assert.equal(readFileSync(join(local, 'optimizer.pt'))[0], 'N'.charCodeAt(0));
    });

    it('falls back past checkpoints the trainer rejects, marks them, and later attempts skip them', async () => {
      const store = open();
      const runKey = `fallback-${name}`;
      await commitSteps(store, runKey, [2, 4, 6]);
      const given: (number | null)[] = [];
      const res = await runWithCheckpointFallback({
        store,
        runKey,
        localRoot: join(dir, 'fb', runKey, '1'),
        hinted: checkpointKey(runKey, 6),
        codeVersion: VERSION,
        log,
        run: async (from: RestoredCheckpoint | null) => {
          given.push(from?.step ?? null);
          return from && from.step >= 4 ? rejectedRun() : okRun;
        },
      });
      assert.deepEqual(given, [6, 4, 2], 'one trainer start per candidate, newest first');
      assert.equal(res.resume?.step, 2);
      assert.equal(res.result.code, 0);
      assert.deepEqual(res.rejected, [6, 4]);
      for (const step of [6, 4]) {
        const marks = await readRejections(store, checkpointKey(runKey, step));
        assert.equal(marks.length, 1);
        assert.equal(marks[0]!.codeVersion, VERSION);
        assert.match(marks[0]!.reason, /state\.json version 0/);
        // The weights stay: another worker version may load them.
        assert.ok(await readManifest(store, checkpointKey(runKey, step)), `step-${step} still committed`);
      }
      assert.deepEqual(await committedCheckpoints(store, runKey), [6, 4, 2]);

      // A later attempt of the same code version goes straight to step 2; another version tries 6.
      const later: (number | null)[] = [];
      await runWithCheckpointFallback({
        store,
        runKey,
        localRoot: join(dir, 'fb', runKey, '2'),
        hinted: checkpointKey(runKey, 6),
        codeVersion: VERSION,
        log,
        run: async (f) => {
          later.push(f?.step ?? null);
          return okRun;
        },
      });
      assert.deepEqual(later, [2]);
      const other: (number | null)[] = [];
      await runWithCheckpointFallback({
        store,
        runKey,
        localRoot: join(dir, 'fb', runKey, '3'),
        codeVersion: 'peftgrid@other',
        log,
        run: async (f) => {
          other.push(f?.step ?? null);
          return okRun;
        },
      });
      assert.deepEqual(other, [6]);
    });

    it('when every checkpoint is rejected it starts from scratch: committed + 1 trainer starts, no loop', async () => {
      const store = open();
      const runKey = `scratch-${name}`;
      await commitSteps(store, runKey, [3, 6]);
      const given: (number | null)[] = [];
      const res = await runWithCheckpointFallback({
        store,
        runKey,
        localRoot: join(dir, 'fb', runKey),
        codeVersion: VERSION,
        log,
        // A trainer that rejects every checkpoint, and then (contract breach) a fresh start too.
        run: async (from) => {
          given.push(from?.step ?? null);
          return rejectedRun();
        },
      });
      assert.deepEqual(given, [6, 3, null]);
      assert.equal(res.resume, null);
      assert.equal(
        res.result.code,
        EXIT_CHECKPOINT_REJECTED,
        'the caller sees the fresh-start rejection and fails non-retryably',
      );
    });
  });
}

suite('file', () => new FileObjectStore(join(dir, 'file-store')));

describe('S3 store', { skip: weedAvailable() ? false : 'SeaweedFS not built (infra/bootstrap.sh --with-s3)' }, () => {
  let server: S3Server;
  let s3: S3ObjectStore;
  before(async () => {
    server = await startS3Server(join(dir, 'weed'));
    Object.assign(process.env, server.env);
    s3 = new S3ObjectStore(`s3://${server.bucket}/ck-${process.pid}`);
  });
  after(async () => {
    s3?.destroy();
    await server?.stop();
  });
  suite('S3', () => s3);
});
