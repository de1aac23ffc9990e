/**
 * Checkpoint retention on a real file store: which checkpoints survive (the last K and the lowest
 * loss), that deletion removes the manifest before any file (so an interrupted deletion never
 * leaves a committed checkpoint with holes), and that trainModel applies the policy while the real
 * trainer runs.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DefaultLogger } from '@temporalio/worker';
import { MockActivityEnvironment } from '@temporalio/testing';
import {
  checkpointsPrefix,
  committedCheckpoints,
  trainModel,
  type TrainModelInput,
  type TrainModelResult,
} from '../../activities/train';
import { planRuns } from '../../src/config/plan';
import { validateGrid } from '../../src/config/validate';
import { writePgtok } from '../../src/data/pgtok';
import {
  FileObjectStore,
  getDirectory,
  pruneCheckpoints,
  putDirectory,
  readManifest,
  type ObjectStore,
} from '../../src/store';
import { scratchDir, tinyModel } from '../helpers/fixtures';

const dir = scratchDir('retention');

/** Commits fake checkpoints `step-<N>` with the given losses (files first, manifest last). */
async function commit(store: ObjectStore, prefix: string, losses: Record<number, number | null>): Promise<void> {
  for (const [step, loss] of Object.entries(losses)) {
    const src = join(dir, 'src', prefix.replace(/\//g, '_'), `step-${step}`);
    mkdirSync(join(src, 'nested'), { recursive: true });
    writeFileSync(join(src, 'trainable.safetensors'), Buffer.alloc(1000 + Number(step), Number(step)));
    writeFileSync(join(src, 'nested', 'optimizer.pt'), `opt ${step}`);
    await putDirectory(store, `${prefix}/step-${step}`, src, { step: Number(step), loss });
  }
}

/** A real file store that records every delete and can fail the n-th one (an interrupted prune). */
class RecordingStore extends FileObjectStore {
  deletes: string[] = [];
  failOnDelete = 0;
  override async delete(key: string): Promise<void> {
    if (this.failOnDelete && this.deletes.length + 1 === this.failOnDelete)
      throw new Error('injected: store went away mid-deletion');
    this.deletes.push(key);
    await super.delete(key);
  }
}

describe('checkpoint retention', { timeout: 3 * 60_000 }, () => {
  it('is a top-level grid block with defaults, validated at the edge, carried to every run', () => {
    const base = {
      name: 'g',
      models: [{ name: 'm', path: tinyModel('llama'), family: 'llama' }],
      methods: [{ method: 'lora' }],
    };
    const g = validateGrid(base, 'test', dir);
    assert.deepEqual(g.retention, { keepLast: 3, keepBest: true });
    assert.deepEqual(
      planRuns(validateGrid({ ...base, retention: { keepLast: 5, keepBest: false } }, 'test', dir))[0]!.retention,
      { keepLast: 5, keepBest: false },
    );
    assert.throws(() => validateGrid({ ...base, retention: { keepLast: 0 } }, 'test', dir), /retention\.keepLast/);
    // Retention does not change what a run computes, so it must not change the run key either.
    assert.equal(
      planRuns(g)[0]!.runKey,
      planRuns(validateGrid({ ...base, retention: { keepLast: 9 } }, 'test', dir))[0]!.runKey,
    );
  });

  it('keeps the last K committed and the lowest-loss one; leaves uncommitted directories alone', async () => {
    const store = new FileObjectStore(join(dir, 'store-a'));
    const prefix = 'runs/r/checkpoints';
    await commit(store, prefix, { 5: 3.0, 10: 1.2, 15: 2.5, 20: null, 25: 2.2, 30: 2.4 });
    // An upload that never committed (no manifest): it may still be in flight, so it stays.
    await store.put(`${prefix}/step-35/trainable.safetensors`, 'partial');

    const r = await pruneCheckpoints(store, prefix, { keepLast: 2, keepBest: true });
    assert.deepEqual(r, { kept: [30, 25, 10], deleted: [5, 15, 20], best: 10 });
    for (const step of [5, 15, 20])
      assert.deepEqual(await store.list(`${prefix}/step-${step}/`), [], `step-${step} fully deleted`);
    for (const step of [10, 25, 30])
      await getDirectory(store, `${prefix}/step-${step}`, join(dir, 'check-a', `step-${step}`));
    assert.equal((await store.list(`${prefix}/step-35/`)).length, 1);

    // Without keepBest only the newest survive; keepLast: 1 never deletes the newest.
    const r2 = await pruneCheckpoints(store, prefix, { keepLast: 1, keepBest: false });
    assert.deepEqual(r2, { kept: [30], deleted: [10, 25], best: null });
    assert.deepEqual(await committedCheckpoints(store, 'r'), [30]);
    await assert.rejects(() => pruneCheckpoints(store, prefix, { keepLast: 0, keepBest: true }), /keepLast: got 0/);
    // Idempotent: a second pass with the same policy deletes nothing.
    assert.deepEqual((await pruneCheckpoints(store, prefix, { keepLast: 1, keepBest: false })).deleted, []);
  });

  it('deletes the manifest first, so an interrupted deletion leaves nothing half-committed', async () => {
    const store = new RecordingStore(join(dir, 'store-b'));
    const prefix = 'runs/r/checkpoints';
    await commit(store, prefix, { 2: 1.0, 4: 0.9, 6: 0.8 });
    await pruneCheckpoints(store, prefix, { keepLast: 1, keepBest: false });
    for (const step of [2, 4]) {
      const mine = store.deletes.filter((k) => k.startsWith(`${prefix}/step-${step}/`));
      assert.equal(mine.length, 3, `every object of step-${step} deleted: ${mine.join(', ')}`);
      assert.equal(mine[0], `${prefix}/step-${step}/manifest.json`, `manifest deleted first: ${mine.join(', ')}`);
    }

    // Fail the second delete: the manifest of the victim is gone, one file remains. The victim
    // must not be listed as committed, and everything still committed must verify completely.
    const s2 = new RecordingStore(join(dir, 'store-c'));
    await commit(s2, prefix, { 2: 1.0, 4: 0.9, 6: 0.8 });
    s2.failOnDelete = 2;
    await assert.rejects(() => pruneCheckpoints(s2, prefix, { keepLast: 1, keepBest: false }), /injected/);
    assert.ok((await s2.list(`${prefix}/step-2/`)).length > 0, 'the deletion really was interrupted');
    assert.equal(await readManifest(s2, `${prefix}/step-2`), null);
    const committed = await committedCheckpoints(s2, 'r');
    assert.deepEqual(committed, [6, 4]);
    for (const step of committed)
      await getDirectory(s2, `${prefix}/step-${step}`, join(dir, 'check-c', `step-${step}`));
  });

  it('trainModel applies the policy after each commit while the real trainer runs', async () => {
    const storeDir = join(dir, 'store-train');
    const store = new FileObjectStore(storeDir);
    process.env.PEFTGRID_DATA_DIR = join(dir, 'worker');
    // 48 synthetic examples: 20 prompt tokens, 4 answer tokens (ids inside the tiny vocabulary).
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % 5000) + 10;
    const shard = writePgtok(
      Array.from({ length: 48 }, () => ({ ids: Array.from({ length: 24 }, rnd), promptLength: 20 })),
    );
    const trainData = await store.put('datasets/tokenized/t/train.pgtok', shard);
    const runKey = 'tiny-llama__lora__retention';
    const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
    const input: TrainModelInput = {
      storeUrl: store.url,
      runKey,
      modelPath: tinyModel('llama'),
      family: 'llama',
      method: { method: 'lora', r: 4, alpha: 8, dropout: 0 },
      training: {
        maxSteps: 14,
        lr: 5e-3,
        warmupSteps: 0,
        scheduler: 'constant',
        optimizer: 'adamw',
        batchSize: 4,
        checkpointEverySteps: 2,
        maxLength: 64,
        seed: 1,
        device: 'cpu',
      },
      trainData,
      retention: { keepLast: 2, keepBest: true },
    };
    const result = (await env.run(trainModel, input)) as TrainModelResult;
    assert.equal(result.steps, 14);
    const losses = (
      JSON.parse(readFileSync(join(storeDir, 'runs', runKey, 'final', 'training_log.json'), 'utf8')) as {
        losses: number[];
      }
    ).losses;
    const ckptSteps = [2, 4, 6, 8, 10, 12, 14];
    const best = ckptSteps.reduce((b, s) => (losses[s - 1]! < losses[b - 1]! ? s : b), 14);
    const expected = [...new Set([14, 12, best])].sort((a, b) => b - a);
    const kept = await committedCheckpoints(store, runKey);
    assert.deepEqual(
      kept,
      expected,
      `losses at checkpoints: ${ckptSteps.map((s) => `${s}:${losses[s - 1]!.toFixed(4)}`).join(' ')}`,
    );
    for (const step of kept) {
      const m = await readManifest<{ loss: number }>(store, `${checkpointsPrefix(runKey)}/step-${step}`);
      assert.ok(Math.abs(m!.meta.loss - losses[step - 1]!) < 1e-6, `manifest loss of step ${step} is that step's loss`);
    }
    // No leftovers of deleted checkpoints: every object under checkpoints/ belongs to a kept one.
    const stray = (await store.list(checkpointsPrefix(runKey) + '/')).filter(
      (o) => !kept.some((s) => o.key.includes(`/step-${s}/`)),
    );
    assert.deepEqual(stray, []);
    console.log(`retention keepLast=2 keepBest: kept ${kept.join(',')} of ${ckptSteps.join(',')} (best ${best})`);
  });

  // Retention only ever sees what was committed; this is the other half of that contract: when a
  // checkpoint cannot be committed at all, the attempt stops the trainer and fails retryably
  // instead of training on with nothing durable behind it.
  it('trainModel gives up on a checkpoint the store keeps refusing: trainer stopped, retryable failure, nothing committed', async () => {
    const storeDir = join(dir, 'store-refuse');
    const store = new FileObjectStore(storeDir);
    process.env.PEFTGRID_DATA_DIR = join(dir, 'worker-refuse');
    process.env.PEFTGRID_CHECKPOINT_RETRY_MS = '3000';
    const runKey = 'tiny-llama__lora__refuse';
    // A plain file where the step-2 directory must go: every upload into it fails (ENOTDIR).
    await store.put(`${checkpointsPrefix(runKey)}/step-2`, 'in the way');
    const shard = writePgtok(
      Array.from({ length: 16 }, (_, i) => ({
        ids: Array.from({ length: 12 }, (_, j) => 10 + ((i * 31 + j * 7) % 4000)),
        promptLength: 8,
      })),
    );
    const trainData = await store.put('datasets/tokenized/t/train.pgtok', shard);
    const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
    const input: TrainModelInput = {
      storeUrl: store.url,
      runKey,
      modelPath: tinyModel('llama'),
      family: 'llama',
      method: { method: 'lora', r: 4, alpha: 8, dropout: 0 },
      training: {
        maxSteps: 400,
        lr: 1e-3,
        warmupSteps: 0,
        scheduler: 'constant',
        optimizer: 'adamw',
        batchSize: 4,
        checkpointEverySteps: 2,
        maxLength: 32,
        seed: 1,
        device: 'cpu',
      },
      trainData,
    };
    const t0 = Date.now();
    try {
      await assert.rejects(
        () => env.run(trainModel, input),
        (err: Error & { type?: string; nonRetryable?: boolean }) => {
          assert.equal(err.type, 'CheckpointUploadFailed', err.message);
          assert.equal(err.nonRetryable, false);
          return true;
        },
      );
    } finally {
      delete process.env.PEFTGRID_CHECKPOINT_RETRY_MS;
    }
    assert.deepEqual(await committedCheckpoints(store, runKey), []);
    assert.equal(
      await readManifest(store, `runs/${runKey}/final`),
      null,
      'the trainer was stopped long before 400 steps',
    );
    assert.ok(Date.now() - t0 < 120_000);
  });
});
