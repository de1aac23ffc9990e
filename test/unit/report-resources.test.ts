/** The report's training-resources fields: peak memory, MFU and gradient checkpointing per run (src/report/render.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderCsv, renderMarkdown, toRows } from '../../src/report/render';
import type { RunResult } from '../../src/contracts';

const run = (runKey: string, label: string, training?: RunResult['training']): RunResult => ({
  runKey,
  model: 'm',
  method: label.split(' ')[0]!,
  label,
  status: 'completed',
  ...(training ? { training } : {}),
});
const base = { steps: 10, trainLoss: 1, trainPerplexity: 2.7, tokensPerSec: 100 };
const results = [
  run('m__lora', 'lora r=8', {
    ...base,
    peakMemoryBytes: 17.5 * 2 ** 30,
    peakMemorySource: 'cuda.max_memory_allocated',
    mfu: 0.385,
    gradientCheckpointing: true,
  }),
  run('m__full', 'full', {
    ...base,
    peakMemoryBytes: 2 ** 30,
    peakMemorySource: 'ru_maxrss',
    gradientCheckpointing: false,
  }),
  run('m__old', 'ia3', base), // saved before resources were measured
  run('m__icl', 'icl shots=0'),
];

test('toRows carries peak memory, its source, MFU and checkpointing (null where unmeasured)', () => {
  const rows = toRows(results);
  assert.deepEqual(
    rows.map((r) => [r.peakMemoryBytes, r.peakMemorySource, r.mfu, r.gradientCheckpointing]),
    [
      [17.5 * 2 ** 30, 'cuda.max_memory_allocated', 0.385, true],
      [2 ** 30, 'ru_maxrss', null, false],
      [null, null, null, null],
      [null, null, null, null],
    ],
  );
  const csv = renderCsv(rows).split('\n');
  assert.match(csv[0]!, /,peakMemoryBytes,peakMemorySource,mfu,gradientCheckpointing,/);
});

test('renderMarkdown: a training-resources table for the runs that measured them', () => {
  const md = renderMarkdown('g', toRows(results));
  const start = md.indexOf('### m: training resources');
  assert.ok(start > 0, md);
  assert.deepEqual(md.slice(start).split('\n').slice(0, 6), [
    '### m: training resources',
    '',
    '| method | peak memory | MFU % | gradient checkpointing |',
    '| --- | --: | --: | --- |',
    '| lora r=8 | 17.50 GiB | 38.5 | on |',
    '| full | 1.00 GiB (RSS) | – | off |',
  ]);
  assert.match(md, /MFU = \(4·N \+ 2·N_trainable\) FLOPs per trained token/);
  assert.equal(renderMarkdown('g', toRows([results[2]!, results[3]!])).includes('training resources'), false);
});
