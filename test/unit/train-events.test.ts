/**
 * trainModel's event handling as a pure function (activities/train-events.ts): what each trainer
 * event does to the attempt's state and which effects (heartbeat, log, progress, checkpoint
 * commit, retention, stopping the trainer) the activity must run, in order.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { parseTrainerLine, type TrainerEvent } from '../../src/contracts/trainer-events';
import {
  attemptResources,
  attemptTokensPerSec,
  initialTrainState,
  onCheckpointOutcome,
  onTrainerEvent,
  onTrainerSpawn,
  type TrainState,
} from '../../activities/train-events';

const step = (n: number, over: Partial<Extract<TrainerEvent, { event: 'step' }>> = {}): TrainerEvent => ({
  event: 'step',
  step: n,
  loss: 2 - n / 10,
  lr: 1e-4,
  gradNorm: 1,
  tokens: 100,
  tokensPerSec: 1000,
  elapsedMs: n * 50,
  stepMs: 50,
  ...over,
});
const kinds = (t: { effects: { kind: string }[] }) => t.effects.map((e) => e.kind);

describe('onTrainerEvent', () => {
  it('a spawn heartbeats the step and checkpoint it resumes from, and restarts the load clock', () => {
    const s0 = initialTrainState(10, 1000);
    const t = onTrainerSpawn(s0, { step: 4, prefix: 'runs/k/checkpoints/step-4' }, 5000);
    assert.deepEqual(t.effects, [
      { kind: 'heartbeat', details: { step: 4, maxSteps: 10, checkpointKey: 'runs/k/checkpoints/step-4' } },
    ]);
    assert.equal(t.state.spawnedAt, 5000);
    const fresh = onTrainerSpawn(t.state, null, 6000);
    assert.deepEqual(fresh.state.heartbeat, { step: 0, maxSteps: 10, checkpointKey: undefined });
  });

  it('start logs the load time since the spawn', () => {
    const s = onTrainerSpawn(initialTrainState(10, 0), null, 1000).state;
    const t = onTrainerEvent(
      s,
      { event: 'start', step: 0, maxSteps: 10, device: 'cpu', trainableParams: 1, totalParams: 2 },
      1750,
    );
    assert.deepEqual(t.effects, [
      { kind: 'log', level: 'info', fields: { step: 0, loadMs: 750, device: 'cpu' }, msg: 'trainer started' },
    ]);
    assert.equal(t.state, s, 'start changes nothing');
  });

  it('a step logs, heartbeats, reports progress and accumulates throughput; only the first step of the attempt logs its time', () => {
    let s: TrainState = onTrainerSpawn(initialTrainState(10, 0), null, 1000).state;
    const t1 = onTrainerEvent(s, step(1), 3000);
    assert.deepEqual(kinds(t1), ['log', 'heartbeat', 'reportProgress', 'log']);
    assert.deepEqual(t1.effects[1], {
      kind: 'heartbeat',
      details: { step: 1, maxSteps: 10, checkpointKey: undefined, loss: 1.9, tokensPerSec: 1000 },
    });
    assert.deepEqual(t1.effects[2], { kind: 'reportProgress', step: 1, loss: 1.9, tokensPerSec: 1000, maxSteps: 10 });
    assert.deepEqual(t1.effects[3], {
      kind: 'log',
      level: 'info',
      fields: { step: 1, sinceSpawnMs: 2000, stepMs: 50 },
      msg: 'first training step of this attempt',
    });
    s = t1.state;
    const t2 = onTrainerEvent(s, step(2), 3100);
    assert.deepEqual(kinds(t2), ['log', 'heartbeat', 'reportProgress']);
    assert.deepEqual(t2.state.loop, { tokens: 200, elapsedMs: 100 });
    assert.equal(attemptTokensPerSec(t2.state), 2000);
    // A respawn (fallback to an older checkpoint) keeps the attempt's "first step" logged once.
    const again = onTrainerEvent(onTrainerSpawn(t2.state, null, 4000).state, step(1), 4100);
    assert.deepEqual(kinds(again), ['log', 'heartbeat', 'reportProgress']);
  });

  it('a null loss (not finite in the trainer) is no loss, not 0', () => {
    const t = onTrainerEvent(initialTrainState(10, 0), step(1, { loss: null, tokensPerSec: null }), 0);
    assert.equal(t.state.heartbeat.loss, undefined);
    assert.equal(t.state.heartbeat.tokensPerSec, undefined);
  });

  it('a checkpoint asks for its commit; the outcome heartbeats the key and prunes, or stops the trainer and skips later ones', () => {
    const s = onTrainerEvent(initialTrainState(10, 0), step(5), 0).state;
    const t = onTrainerEvent(s, { event: 'checkpoint', step: 5, dir: '/w/ckpt/step-5', loss: null }, 0);
    assert.deepEqual(t.effects, [{ kind: 'commitCheckpoint', step: 5, dir: '/w/ckpt/step-5', loss: undefined }]);
    const ok = onCheckpointOutcome(t.state, 5, 'runs/k/checkpoints/step-5');
    assert.deepEqual(ok.effects, [
      { kind: 'heartbeat', details: { ...s.heartbeat, checkpointKey: 'runs/k/checkpoints/step-5' } },
      { kind: 'applyRetention' },
    ]);
    const failed = onCheckpointOutcome(ok.state, 10, null);
    assert.deepEqual(failed.effects, [{ kind: 'stopTrainer', reason: 'checkpoint upload of step 10 failed' }]);
    assert.equal(failed.state.uploadFailedAt, 10);
    assert.equal(
      failed.state.heartbeat.checkpointKey,
      'runs/k/checkpoints/step-5',
      'the last committed one stays the resume point',
    );
    const later = onTrainerEvent(failed.state, { event: 'checkpoint', step: 15, dir: '/w/ckpt/step-15', loss: 1 }, 0);
    assert.deepEqual(later.effects, []);
  });

  it('preempting logs the signal step; done is kept for the final commit; error and export change nothing', () => {
    const s = initialTrainState(10, 0);
    const p = onTrainerEvent(s, { event: 'preempting', signal: 'SIGTERM', signalStep: 3, step: 4 }, 0);
    assert.deepEqual(p.effects, [
      {
        kind: 'log',
        level: 'info',
        fields: { signal: 'SIGTERM', signalStep: 3, step: 4 },
        msg: 'trainer received SIGTERM',
      },
    ]);
    const done: TrainerEvent = {
      event: 'done',
      step: 10,
      finalDir: '/w/out/final',
      trainLoss: 1.2,
      trainPerplexity: 3.3,
    };
    assert.deepEqual(onTrainerEvent(s, done, 0).state.done, done);
    for (const ev of [
      { event: 'error', type: 'InvalidSpec', message: 'x' },
      {
        event: 'export',
        outputDir: '/o',
        maxAbsDiff: 0,
        prefillMaxAbsDiff: 0,
        decodeMaxAbsDiff: 0,
        bytes: 1,
        exportSeconds: 1,
        seconds: 1,
      },
    ] as TrainerEvent[]) {
      assert.deepEqual(onTrainerEvent(s, ev, 0), { state: s, effects: [] });
    }
    assert.equal(attemptTokensPerSec(s), null, 'nothing ran: no throughput');
  });
});

describe('the resources event', () => {
  const resources: TrainerEvent = {
    event: 'resources',
    peakMemoryBytes: 5 * 2 ** 30,
    peakMemorySource: 'cuda.max_memory_allocated',
    mfu: 0.41,
    flopsPerToken: 6e9,
    peakFlops: 989e12,
    gradientCheckpointing: true,
  };

  it('is kept for the result and logged; the result carries peak memory, MFU and checkpointing', () => {
    const s0 = initialTrainState(10, 0);
    assert.deepEqual(attemptResources(s0), {});
    const t = onTrainerEvent(s0, resources, 10);
    assert.deepEqual(kinds(t), ['log']);
    assert.deepEqual(attemptResources(t.state), {
      peakMemoryBytes: 5 * 2 ** 30,
      peakMemorySource: 'cuda.max_memory_allocated',
      mfu: 0.41,
      gradientCheckpointing: true,
    });
  });

  it('leaves MFU out where the trainer has none (CPU)', () => {
    const t = onTrainerEvent(initialTrainState(10, 0), { ...resources, mfu: null, peakMemorySource: 'ru_maxrss' }, 10);
    assert.equal('mfu' in attemptResources(t.state), false);
  });

  it('parses from the trainer line, bool field included', () => {
    const parsed = parseTrainerLine(JSON.stringify(resources));
    assert.ok(parsed.ok);
    assert.equal(parseTrainerLine(JSON.stringify({ ...resources, gradientCheckpointing: 'yes' })).ok, false);
  });
});
