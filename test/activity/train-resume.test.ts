/**
 * trainModel's resume path with the real trainer on a real file store: a retry whose heartbeat
 * names an old checkpoint resumes from the newest committed one, commits into its own stage and
 * leaves the committed checkpoints untouched; a checkpoint the trainer rejects (exit 3,
 * `CheckpointRejected`) is marked, the attempt falls back to the previous one and the step's
 * commit later replaces it. Losses equal the uninterrupted run's, bit for bit (CPU).
 */
import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import { DefaultLogger } from '@temporalio/worker';
import { MockActivityEnvironment } from '@temporalio/testing';
import { checkpointKey, readRejections, REJECTED } from '../../activities/checkpoints';
import {
  checkpointsPrefix,
  committedCheckpoints,
  trainModel,
  type TrainHeartbeat,
  type TrainModelInput,
  type TrainModelResult,
} from '../../activities/train';
import { writePgtok } from '../../src/data/pgtok';
import {
  FileObjectStore,
  joinKey,
  manifestFileKey,
  MANIFEST,
  readManifest,
  type DirectoryManifest,
} from '../../src/store';
import { REPO, scratchDir, tinyModel } from '../helpers/fixtures';

const dir = scratchDir('train-resume');
const storeDir = join(dir, 'store');
const store = new FileObjectStore(storeDir);
const runKey = 'tiny-llama__lora__resume';

// h5 (issue 12 point 4, trainer side) makes the trainer exit 3 with CheckpointRejected for an
// unusable --resume-from; before that change it exits 2 (InvalidSpec) and the fallback cannot run.
const trainerRejects = readFileSync(join(REPO, 'trainer', 'events.py'), 'utf8').includes('CheckpointRejected');

async function input(): Promise<TrainModelInput> {
  let seed = 11;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % 5000) + 10;
  const shard = writePgtok(
    Array.from({ length: 40 }, () => ({ ids: Array.from({ length: 20 }, rnd), promptLength: 16 })),
  );
  return {
    storeUrl: store.url,
    runKey,
    modelPath: tinyModel('llama'),
    family: 'llama',
    method: { method: 'lora', r: 4, alpha: 8, dropout: 0.1 },
    training: {
      maxSteps: 8,
      lr: 5e-3,
      warmupSteps: 1,
      scheduler: 'linear',
      optimizer: 'adamw',
      batchSize: 4,
      checkpointEverySteps: 2,
      maxLength: 64,
      seed: 3,
      device: 'cpu',
    },
    trainData: await store.put('datasets/tokenized/r/train.pgtok', shard),
    retention: { keepLast: 10, keepBest: false },
  };
}

const finalLosses = () =>
  (
    JSON.parse(readFileSync(join(storeDir, 'runs', runKey, 'final', 'training_log.json'), 'utf8')) as {
      losses: number[];
    }
  ).losses;
const manifestText = (step: number) => readFileSync(join(storeDir, checkpointKey(runKey, step), MANIFEST), 'utf8');

/** Forget that the run finished at `lastKept`+: delete final/ and later checkpoints' manifests (uncommits them). */
async function rewindTo(lastKept: number): Promise<void> {
  await store.delete(joinKey('runs', runKey, 'final', MANIFEST));
  for (const step of await committedCheckpoints(store, runKey))
    if (step > lastKept) await store.delete(joinKey(checkpointKey(runKey, step), MANIFEST));
}

function env(attempt: number, heartbeat?: unknown) {
  return new MockActivityEnvironment(
    { attempt, ...(heartbeat ? { heartbeatDetails: heartbeat } : {}) },
    { logger: new DefaultLogger('ERROR') },
  );
}

describe('trainModel resume path (real trainer)', { timeout: 8 * 60_000 }, () => {
  let base: TrainModelInput;
  let reference: number[] = [];

  it('an uninterrupted run (the reference)', async () => {
    process.env.PEFTGRID_DATA_DIR = join(dir, 'worker');
    base = await input();
    const r = (await env(1).run(trainModel, base)) as TrainModelResult;
    assert.equal(r.steps, 8);
    assert.equal(r.resumedFrom, 0);
    // The trainer's `resources` event (this input has no gradientCheckpointing: 'auto', off for a tiny model).
    assert.equal(r.gradientCheckpointing, false);
    assert.equal(r.peakMemorySource, 'ru_maxrss');
    assert.ok((r.peakMemoryBytes ?? 0) > 2 ** 20, `peak RSS ${r.peakMemoryBytes}`);
    assert.equal(r.mfu, undefined, 'no MFU on CPU');
    // A finished run returns them from the final manifest without training.
    const again = (await env(1).run(trainModel, base)) as TrainModelResult;
    assert.equal(again.resumedFrom, null);
    assert.equal(again.peakMemoryBytes, r.peakMemoryBytes);
    assert.equal(again.gradientCheckpointing, false);
    reference = finalLosses();
    assert.deepEqual(await committedCheckpoints(store, runKey), [8, 6, 4, 2]);
    const m = (await readManifest(store, checkpointKey(runKey, 2)))!;
    assert.match(m.stage ?? '', /^a1-[0-9a-f]{8}$/, 'files staged under the attempt');
    for (const f of m.files)
      assert.ok(manifestFileKey(checkpointKey(runKey, 2), m, f.path).includes(`/step-2/${m.stage}/`));
  });

  it('a retry whose heartbeat names step 2 resumes from the newest committed (6), rewrites nothing committed', async () => {
    await rewindTo(6);
    const before = [2, 4, 6].map(manifestText);
    const e = env(2, { step: 3, checkpointKey: checkpointKey(runKey, 2), maxSteps: 8 });
    const beats: TrainHeartbeat[] = [];
    e.on('heartbeat', (d: TrainHeartbeat) => beats.push(d));
    const r = (await e.run(trainModel, base)) as TrainModelResult;
    assert.equal(r.resumedFrom, 6, 'the listing is newer than the heartbeat');
    // Heartbeats from the first line; until the trainer starts they keep the previous attempt's
    // checkpointKey (a retry dying mid-download must not erase its successor's hint).
    assert.deepEqual(beats[0], { step: 3, maxSteps: 8, checkpointKey: checkpointKey(runKey, 2), phase: 'starting' });
    const phase = (p: string) => beats.filter((b) => b.phase === p);
    for (const p of ['download-data', 'download-checkpoint', 'upload-checkpoint', 'upload-adapter']) {
      const last = phase(p).at(-1);
      assert.ok(last && last.totalBytes! > 0 && last.bytes === last.totalBytes, `${p}: ${JSON.stringify(phase(p))}`);
    }
    for (const b of [...phase('download-data'), ...phase('download-checkpoint')])
      assert.equal(b.checkpointKey, checkpointKey(runKey, 2), JSON.stringify(b));
    assert.equal(phase('upload-checkpoint').at(-1)!.step, 8, "uploads carry the attempt's own step");
    assert.deepEqual([2, 4, 6].map(manifestText), before, 'committed checkpoints untouched');
    const m8 = (await readManifest(store, checkpointKey(runKey, 8)))!;
    assert.match(m8.stage ?? '', /^a2-/, "step 8 committed again, into the new attempt's stage");
    assert.deepEqual(finalLosses(), reference, 'bit-exact continuation');
  });

  it(
    '[needs h5: trainer exit 3] a checkpoint the trainer rejects is marked, the attempt falls back to the previous one, and its step is replaced later',
    { skip: trainerRejects ? false : 'trainer has no CheckpointRejected yet (h5, issue 12 point 4)' },
    async () => {
      await rewindTo(6);
      // Unloadable for this trainer (a state version it does not know), yet intact for the store:
      // the manifest's sha256 is updated, so only the trainer can refuse it.
      const prefix = checkpointKey(runKey, 6);
      const manifest = JSON.parse(manifestText(6)) as DirectoryManifest;
      const entry = manifest.files.find((f) => f.path === 'trainer_state.json')!;
      const local = join(storeDir, manifestFileKey(prefix, manifest, entry.path));
      const state = JSON.parse(readFileSync(local, 'utf8')) as Record<string, unknown>;
      const bytes = Buffer.from(JSON.stringify({ ...state, version: 999 }));
      writeFileSync(local, bytes);
      Object.assign(entry, { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
      writeFileSync(join(storeDir, prefix, MANIFEST), JSON.stringify(manifest));
      const oldStage = manifest.stage;

      const r = (await env(3, { step: 6, checkpointKey: prefix, maxSteps: 8 }).run(
        trainModel,
        base,
      )) as TrainModelResult;
      assert.equal(r.resumedFrom, 4, 'fell back to the previous committed checkpoint within the attempt');
      assert.deepEqual(finalLosses(), reference);
      // Training passed step 6 again: its commit replaced the rejected one (and dropped the marker).
      const m6 = (await readManifest(store, prefix))!;
      assert.notEqual(m6.stage, oldStage);
      assert.match(m6.stage ?? '', /^a3-/);
      assert.deepEqual(await readRejections(store, prefix), []);
      assert.equal(await store.head(joinKey(prefix, REJECTED)), null);
      assert.deepEqual(await committedCheckpoints(store, runKey), [8, 6, 4, 2]);
      assert.ok((await store.list(checkpointsPrefix(runKey) + '/')).length > 0);
    },
  );
});
