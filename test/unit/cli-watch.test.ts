import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { renderLine, type RunLine } from '../../src/cli/watch';
import { summaryLine } from '../../src/cli/grid';
import type { GridResult, RunResult } from '../../workflows/types';

const base: RunLine = { runKey: 'm__lora__1', model: 'm', label: 'lora r=8', phase: 'training' };

describe('grid progress lines', () => {
  it('shows a bar, step, loss and ETA while training', () => {
    const line = renderLine({ ...base, step: 5, maxSteps: 20, loss: 1.23456, etaSec: 61.4 });
    assert.match(line, /training +█{5}░{15} 5\/20 loss 1\.235 eta 61s$/);
  });

  it('says when a run waits for a worker slot, and when its trainer is still loading', () => {
    assert.match(renderLine({ ...base, queued: true }), /training \(queued: waiting for a free worker slot\)$/);
    assert.match(renderLine({ ...base, queued: false }), /training \(starting: loading the model\)$/);
    assert.match(renderLine({ ...base, attempt: 2 }), /loading the model, attempt 2\)$/);
    assert.match(renderLine({ ...base, phase: 'evaluating', queued: true }), /evaluating \(queued/);
    assert.match(renderLine({ ...base, phase: 'completed' }), / completed$/);
  });

  it('summarizes a finished grid, counting reused runs', () => {
    const run = (status: RunResult['status'], reused?: boolean): RunResult => ({ runKey: 'k', model: 'm', method: 'lora', label: 'l', status, ...(reused ? { reused } : {}) });
    const result = { gridId: 'g', reportPrefix: 'grids/g', markdown: '', runs: [run('completed', true), run('completed'), run('failed'), run('cancelled')] } as GridResult;
    assert.equal(summaryLine(result), 'grid g: 4 runs: 2 completed (1 reused from an earlier start), 1 failed, 1 cancelled; report in grids/g');
    assert.equal(summaryLine({ ...result, runs: [run('completed')] }), 'grid g: 1 run: 1 completed; report in grids/g');
  });
});
