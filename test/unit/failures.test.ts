/**
 * The failure-type registry (src/contracts/failures.ts): what each retry policy lists, that
 * activities' failures take their retryability from it, and that no workflow or activity keeps a
 * list or an exit code of its own. trainer/events.py is held to it by test/python/test_trainer_protocol.py.
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  FAILURES,
  FailureType,
  NON_RETRYABLE_TYPES,
  nonRetryableTypes,
  TRAINER_EXIT,
} from '../../src/contracts/failures';
import { failure } from '../../activities/failure';
import { EXIT_CHECKPOINT_REJECTED, EXIT_INVALID, EXIT_PREEMPTED } from '../../activities/trainer-process';
import { REPO } from '../helpers/fixtures';

describe('failure registry', () => {
  it('lists every permanent type in every policy, except a name the registry keeps to one workflow', () => {
    assert.deepEqual([...NON_RETRYABLE_TYPES].sort(), [
      'CheckpointRejected',
      'EngineUnsupported',
      'ExportParity',
      'InvalidData',
      'InvalidModel',
      'InvalidSpec',
      'ModelGated',
      'ModelNotFound',
      'ModelTooLarge',
      'NotFound',
      'RevisionNotFound',
      'TrainerError',
      'UnsupportedMethod',
    ]);
    assert.deepEqual(nonRetryableTypes('prepareData'), NON_RETRYABLE_TYPES);
    assert.deepEqual(
      nonRetryableTypes('fineTuneRun'),
      NON_RETRYABLE_TYPES.filter((t) => t !== 'NotFound'),
    );
    // Everything the two hand-written lists held is still listed where it was.
    for (const t of ['InvalidSpec', 'ModelNotFound', 'UnsupportedMethod', 'InvalidData', 'InvalidModel'])
      assert.ok(nonRetryableTypes('fineTuneRun').includes(t as FailureType), t);
    for (const t of ['InvalidData', 'NotFound', 'InvalidSpec'])
      assert.ok(nonRetryableTypes('prepareData').includes(t as FailureType), t);
    for (const t of ['ChecksumMismatch', 'CheckpointUploadFailed', 'Preempted', 'TrainerCrashed', 'ExportFailed'])
      assert.ok(!NON_RETRYABLE_TYPES.includes(t as FailureType), t);
  });

  it('names each type by itself, so FailureType.X is the string X', () => {
    for (const t of Object.keys(FAILURES)) assert.equal(FailureType[t as FailureType], t);
  });

  it('failure() takes retryability from the registry, not the call site', () => {
    const permanent = failure(FailureType.InvalidData, 'bad split', { key: 'k' });
    assert.equal(permanent.type, 'InvalidData');
    assert.equal(permanent.nonRetryable, true);
    assert.deepEqual(permanent.details, [{ key: 'k' }]);
    const transient = failure(FailureType.ChecksumMismatch, 'short read');
    assert.equal(transient.nonRetryable, false);
    assert.deepEqual(transient.details, []);
  });

  it('the trainer-process exit codes are the registry', () => {
    assert.deepEqual(
      [EXIT_INVALID, EXIT_CHECKPOINT_REJECTED, EXIT_PREEMPTED],
      [TRAINER_EXIT.invalid, TRAINER_EXIT.checkpointRejected, TRAINER_EXIT.preempted],
    );
  });

  it('no workflow or activity spells a failure type, a type list or an exit code itself', () => {
    const types = Object.keys(FAILURES).join('|');
    for (const dir of ['activities', 'workflows']) {
      for (const f of readdirSync(join(REPO, dir)).filter((n) => n.endsWith('.ts'))) {
        const src = readFileSync(join(REPO, dir, f), 'utf8');
        assert.doesNotMatch(
          src,
          new RegExp(`['"](${types})['"]`),
          `${dir}/${f} spells a failure type: use FailureType`,
        );
        assert.doesNotMatch(
          src,
          /nonRetryableErrorTypes: \[/,
          `${dir}/${f} lists non-retryable types: use nonRetryableTypes()`,
        );
        assert.doesNotMatch(src, /EXIT_\w+ = \d/, `${dir}/${f} defines an exit code: use TRAINER_EXIT`);
      }
    }
  });
});
