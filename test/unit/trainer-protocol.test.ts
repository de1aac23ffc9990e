/**
 * The trainer's stdout protocol on this side (src/contracts/trainer-events.ts): the published
 * schema/trainer-protocol.json is current (test/python/test_trainer_protocol.py holds
 * trainer/events.py to it, so changing either side alone fails one of the two), and the parser
 * rejects lines off the schema with a reason instead of letting `Number(undefined)` through.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  parseTrainerLine,
  TRAINER_EVENTS,
  trainerProtocol,
  trainerProtocolText,
} from '../../src/contracts/trainer-events';
import { REPO } from '../helpers/fixtures';

const REGENERATE = `node --import tsx -e "import('./src/contracts/trainer-events.ts').then(({ default: m }) => process.stdout.write(m.trainerProtocolText()))" > schema/trainer-protocol.json`;

describe('trainer protocol', () => {
  it('publishes its events, failure types and exit codes, and the committed schema/trainer-protocol.json is current', () => {
    const committed = readFileSync(join(REPO, 'schema', 'trainer-protocol.json'), 'utf8');
    assert.equal(committed, trainerProtocolText(), `regenerate it: ${REGENERATE}`);
    const p = trainerProtocol();
    assert.deepEqual(Object.keys(p.events), [
      'start',
      'step',
      'checkpoint',
      'preempting',
      'resources',
      'done',
      'error',
      'generating',
      'sequence',
      'batch',
      'score',
      'generated',
      'export',
      'quantize',
      'staging',
      'staged',
    ]);
    assert.deepEqual(p.failures.EngineUnsupported, { exitCode: 2, retryable: false });
    assert.deepEqual(p.failures.CheckpointRejected, { exitCode: 3, retryable: false });
    assert.deepEqual(p.exitCodes, { done: 0, invalid: 2, checkpointRejected: 3, preempted: 75 });
  });

  it('parses every event of the table, nulls for floats included', () => {
    const step = {
      event: 'step',
      step: 4,
      loss: null,
      lr: 1e-4,
      gradNorm: 0.5,
      tokens: 96,
      tokensPerSec: 1200.5,
      elapsedMs: 80,
      stepMs: 20,
    };
    assert.deepEqual(parseTrainerLine(JSON.stringify(step)), { ok: true, event: step });
    const done = { event: 'done', step: 8, finalDir: '/w/out/final', trainLoss: 2.5, trainPerplexity: null };
    assert.deepEqual(parseTrainerLine(JSON.stringify(done)), { ok: true, event: done });
    assert.equal(Object.keys(TRAINER_EVENTS.checkpoint).join(), 'step,dir,loss');
  });

  it("parses the torch engine's list and boolean fields, and rejects a token list that is not integers", () => {
    const seq = {
      event: 'sequence',
      index: 3,
      tokens: [5, 17, 2],
      finishReason: 'eos',
      generatedTokens: 3,
      truncated: false,
      error: '',
    };
    assert.deepEqual(parseTrainerLine(JSON.stringify(seq)), { ok: true, event: seq });
    const batch = { event: 'batch', size: 2, promptWidth: 9, ttftMs: 4.5, stepMs: [1.5, 2], done: 2, total: 4 };
    assert.deepEqual(parseTrainerLine(JSON.stringify(batch)), { ok: true, event: batch });
    const bad = parseTrainerLine(JSON.stringify({ ...seq, tokens: [1.5] }));
    assert.equal(bad.ok, false);
    assert.match((bad as { reason: string }).reason, /^sequence event: tokens\.0: /);
    assert.equal(parseTrainerLine(JSON.stringify({ ...seq, truncated: 'no' })).ok, false);
  });

  it('drops fields it does not know (a newer trainer may add one), keeping the ones it does', () => {
    const res = parseTrainerLine('{"event":"checkpoint","step":3,"dir":"/x","loss":1.5,"extra":true}');
    assert.deepEqual(res, { ok: true, event: { event: 'checkpoint', step: 3, dir: '/x', loss: 1.5 } });
  });

  it('rejects a line off the schema, saying which field and why', () => {
    const cases: Array<[string, RegExp]> = [
      ['not json', /^not JSON$/],
      ['[1, 2]', /^event: got undefined; expected one of start, step/],
      ['{"event":"chekpoint","step":3}', /^event: got "chekpoint"; expected one of/],
      ['{"event":"checkpoint","dir":"/x","loss":1}', /^checkpoint event: step: .*expected number, received undefined/],
      [
        '{"event":"checkpoint","step":"3","dir":"/x","loss":1}',
        /^checkpoint event: step: .*expected number, received string/,
      ],
      ['{"event":"checkpoint","step":3.5,"dir":"/x","loss":1}', /^checkpoint event: step: .*int/i],
      ['{"event":"done","step":3,"trainLoss":1,"trainPerplexity":2}', /^done event: finalDir: .*expected string/],
      ['{"event":"error","type":"InvalidSpec"}', /^error event: message: /],
    ];
    for (const [line, reason] of cases) {
      const res = parseTrainerLine(line);
      assert.equal(res.ok, false, line);
      if (!res.ok) assert.match(res.reason, reason, line);
    }
  });
});
