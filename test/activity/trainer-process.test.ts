/**
 * runTrainer's heartbeat: the trainer's child process (the real `python -m trainer`) can take many
 * seconds to import torch before its first event, so the heartbeat starts at spawn, not on the
 * first interval tick or the first event.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import pino from 'pino';
import { runTrainer } from '../../activities/trainer-process';

test('heartbeats at spawn, before the first interval and before any event', async () => {
  let beats = 0;
  const events: unknown[] = [];
  const result = await runTrainer({
    args: ['no-such-command'], // argparse refuses it at once: exit 2, no event
    log: pino({ level: 'silent' }),
    onEvent: (e) => void events.push(e),
    heartbeat: () => void beats++,
    heartbeatEveryMs: 60_000, // no interval tick within this test
  });
  assert.equal(result.code, 2, result.stderrTail);
  assert.deepEqual(events, []);
  assert.equal(beats, 1, 'one heartbeat at spawn');
});
