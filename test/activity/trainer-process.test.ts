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

test("hands every line of the trainer's stderr to onStderrLine, whole, the last one too", async () => {
  const lines: string[] = [];
  const result = await runTrainer({
    args: ['no-such-command'],
    log: pino({ level: 'silent' }),
    onStderrLine: (l) => void lines.push(l),
  });
  assert.equal(result.code, 2);
  // argparse's usage and its error line, exactly as stderr holds them, split at newlines only.
  assert.deepEqual(
    lines,
    result.stderrTail
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => l.trimEnd()),
  );
  assert.match(lines.at(-1)!, /invalid choice: 'no-such-command'/);
});
