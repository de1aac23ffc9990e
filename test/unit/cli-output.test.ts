/**
 * The CLI's output conventions: one `--output text|json|jsonl` flag with the earlier flags as
 * aliases; non-TTY progress as one line per change; `grid list` rows; `logs` lines.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { takeProfile, UsageError } from '../../src/cli/args';
import { resultsFormat } from '../../src/cli/grid';
import { gridListText, runsText, type GridListRow } from '../../src/cli/grid-list';
import { logLineText, logRecordOut, parseLogText } from '../../src/cli/logs';
import { outputMode } from '../../src/cli/output';
import { ChangeTracker, changeText } from '../../src/cli/progress-lines';
import type { RunLine } from '../../src/cli/watch';

describe('--output', () => {
  it('text by default; --output picks; --json is --output json', () => {
    assert.equal(outputMode({}), 'text');
    assert.equal(outputMode({ output: 'jsonl' }), 'jsonl');
    assert.equal(outputMode({ json: true }), 'json');
    assert.equal(outputMode({ json: true, output: 'json' }), 'json');
  });

  it('rejects an unknown mode and flags that disagree', () => {
    assert.throws(
      () => outputMode({ output: 'yaml' }),
      (e: unknown) => e instanceof UsageError && /--output: got "yaml", expected text, json, jsonl/.test(e.message),
    );
    assert.throws(() => outputMode({ json: true, output: 'jsonl' }), UsageError);
  });

  it('grid results: --format md|csv are the text forms, --format json is --output json', () => {
    assert.equal(resultsFormat(undefined, 'text'), 'md');
    assert.equal(resultsFormat('csv', 'text'), 'csv');
    assert.equal(resultsFormat('json', 'text'), 'json');
    assert.equal(resultsFormat(undefined, 'json'), 'json');
    assert.equal(resultsFormat(undefined, 'jsonl'), 'jsonl');
    assert.equal(resultsFormat('json', 'json'), 'json');
    assert.throws(() => resultsFormat('csv', 'json'), UsageError);
    assert.throws(() => resultsFormat('json', 'jsonl'), UsageError);
    assert.throws(() => resultsFormat('html', 'text'), /--format: got "html", expected md, csv or json/);
  });
});

describe('non-TTY progress: one line per change', () => {
  const run = (over: Partial<RunLine>): RunLine => ({
    runKey: 'k1',
    model: 'tiny',
    label: 'lora r=4',
    phase: 'pending',
    ...over,
  });
  const at = (s: number) => new Date(Date.UTC(2026, 11, 2, 6, 0, s));

  it('prints the grid phase and each run once, then only what changed', () => {
    const t = new ChangeTracker('g');
    const first = t.next('running', [run({}), run({ runKey: 'k2', label: 'icl shots=0' })], at(1));
    assert.deepEqual(first.map(changeText), [
      '06:00:01 grid g: running',
      '06:00:01 tiny · lora r=4 pending',
      '06:00:01 tiny · icl shots=0 pending',
    ]);
    assert.deepEqual(
      t.next('running', [run({}), run({ runKey: 'k2', label: 'icl shots=0' })], at(3)),
      [],
      'nothing changed',
    );
    const moved = t.next(
      'running',
      [run({ phase: 'training', step: 1, maxSteps: 100 }), run({ runKey: 'k2', label: 'icl shots=0' })],
      at(5),
    );
    assert.equal(moved.length, 1);
    assert.equal(moved[0]!.run!.runKey, 'k1');
    assert.match(changeText(moved[0]!), /^06:00:05 tiny · lora r=4 training 1\/100$/);
  });

  it('training: loss and ETA moving are not changes; each tenth of the steps is', () => {
    const t = new ChangeTracker('g');
    t.next('running', [run({ phase: 'training', step: 10, maxSteps: 100, loss: 2 })]);
    assert.equal(
      t.next('running', [run({ phase: 'training', step: 15, maxSteps: 100, loss: 1.9, etaSec: 80 })]).length,
      0,
    );
    assert.equal(t.next('running', [run({ phase: 'training', step: 20, maxSteps: 100, loss: 1.8 })]).length, 1);
    assert.equal(
      t.next('running', [run({ phase: 'training', step: 21, maxSteps: 100, attempt: 2 })]).length,
      1,
      'a retry is a change',
    );
    assert.equal(
      t.next('running', [run({ phase: 'training', step: 21, maxSteps: 100, attempt: 2, queued: true })]).length,
      1,
    );
    const lines = t.next('reporting', [run({ phase: 'completed' })]).map(changeText);
    assert.deepEqual(
      lines.map((l) => l.slice(9)),
      ['grid g: reporting', 'tiny · lora r=4 completed'],
    );
  });

  it('no bar, no run of padding spaces', () => {
    const [c] = new ChangeTracker('g')
      .next('running', [run({ phase: 'training', step: 5, maxSteps: 20, loss: 1.23456 })])
      .slice(1);
    const text = changeText(c!);
    assert.ok(!/[█░]/.test(text) && !/ {2}/.test(text), text);
    assert.match(text, /training 5\/20 loss 1\.235$/);
    const long = run({ label: 'lora r=16 alpha=32 dropout=0.05 targets=q_proj,v_proj', phase: 'evaluating' });
    assert.equal(
      changeText(new ChangeTracker('g').next('running', [long])[1]!).slice(9),
      `tiny · ${long.label} evaluating`,
    );
  });
});

describe('grid list rows', () => {
  const row: GridListRow = {
    gridId: 'peftgrid-grid-study-small-0123456789',
    name: 'study-small',
    status: 'RUNNING',
    started: '2026-12-02T06:01:02.345Z',
    runs: 8,
    byPhase: { completed: 3, failed: 1, training: 1, evaluating: 1, pending: 2 },
  };

  it('counts runs by outcome', () => {
    assert.equal(runsText(row), '3/8 completed, 1 failed, 2 running, 2 pending');
    assert.equal(runsText({ ...row, byPhase: undefined }), '8 runs');
  });

  it('a table with names and dates', () => {
    const text = gridListText([
      row,
      {
        ...row,
        gridId: 'g2',
        name: 'demo',
        status: 'COMPLETED',
        closed: '2026-12-02T07:00:00.000Z',
        runs: 1,
        byPhase: { completed: 1 },
      },
    ]);
    const lines = text.trimEnd().split('\n');
    assert.match(lines[0]!, /^STARTED \(UTC\) +CLOSED \(UTC\) +STATUS +NAME +RUNS +GRID ID$/);
    assert.match(
      lines[1]!,
      /^2026-12-02 06:01:02 +- +RUNNING +study-small +3\/8 completed, .* peftgrid-grid-study-small-0123456789$/,
    );
    assert.match(lines[2]!, /^2026-12-02 06:01:02 +2026-12-02 07:00:00 +COMPLETED +demo +1\/1 completed +g2$/);
    assert.match(gridListText([]), /no grids yet/);
  });
});

describe('logs lines', () => {
  it('parses pino and trainer records; keeps a foreign line as text', () => {
    const text = [
      JSON.stringify({
        level: 30,
        time: 1764655262000,
        pid: 1,
        runKey: 'k',
        msg: 'train attempt started',
        scheduledAt: 5,
      }),
      JSON.stringify({ level: 30, time: 1764655263000, source: 'trainer', msg: 'step 1 loss 2.0' }),
      'not json',
      '',
    ].join('\n');
    const records = parseLogText(text);
    assert.equal(records.length, 3);
    assert.equal(records[2]!.msg, 'not json');
    const lines = records.map((record) => logLineText({ runKey: 'k', contentKey: 't', key: 'x', record }, false));
    assert.deepEqual(lines, [
      '2025-12-02T06:01:02.000Z INFO train attempt started scheduledAt=5',
      '2025-12-02T06:01:03.000Z trainer: step 1 loss 2.0',
      '- INFO not json',
    ]);
    assert.match(
      logLineText({ runKey: 'run-a', contentKey: 't', key: 'x', record: records[1]! }, true),
      / run-a trainer: /,
    );
    // json/jsonl: the run's key wins over the activity's own runKey binding (the training key).
    const out = logRecordOut({ runKey: 'run-a', contentKey: 'k', key: 'x', record: records[0]! });
    assert.equal(out.runKey, 'run-a');
    assert.equal(out.contentKey, 'k');
  });
});

describe('--profile', () => {
  it('is taken out of the arguments, wherever it is, into TEMPORAL_PROFILE', () => {
    const env: Record<string, string | undefined> = {};
    assert.deepEqual(takeProfile(['grid', 'list', '--profile', 'cloud', '-o', 'json'], env), [
      'grid',
      'list',
      '-o',
      'json',
    ]);
    assert.equal(env.TEMPORAL_PROFILE, 'cloud');
    assert.deepEqual(takeProfile(['--profile=staging', 'logs', 'g'], env), ['logs', 'g']);
    assert.equal(env.TEMPORAL_PROFILE, 'staging');
    const untouched: Record<string, string | undefined> = {};
    assert.deepEqual(takeProfile(['grid', 'list'], untouched), ['grid', 'list']);
    assert.deepEqual(untouched, {});
    assert.throws(() => takeProfile(['grid', 'list', '--profile'], {}), UsageError);
    assert.throws(() => takeProfile(['--profile', '--json'], {}), UsageError);
  });
});
