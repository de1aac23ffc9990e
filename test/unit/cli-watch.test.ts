import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { gridLines, ProgressMemory, renderLine, type RunLine } from '../../src/cli/watch';
import { summaryLine } from '../../src/cli/grid';
import type { GridProgress, GridResult, RunPhase, RunResult } from '../../src/contracts';

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

  it('shows the bytes of a transfer in progress, never the activity phase as the run phase', async () => {
    const beat = {
      phase: 'download-model',
      bytes: 1.5 * 1024 ** 3,
      totalBytes: 13.5 * 1024 ** 3,
      step: 0,
      maxSteps: 20,
    };
    const client = {
      workflow: {
        getHandle: (id: string) => ({
          query: async () =>
            id === 'g'
              ? { gridId: 'g', phase: 'running', runs: [{ ...base, phase: 'tokenizing' }] }
              : { ...base, phase: 'training' },
          describe: async () => ({
            raw: {
              pendingActivities: [
                { attempt: 1, heartbeatDetails: { payloads: [{ data: Buffer.from(JSON.stringify(beat)) }] } },
              ],
            },
          }),
        }),
      },
    } as unknown as Client;
    const [line] = (await gridLines(client, 'g')).lines;
    assert.equal(line!.phase, 'training', "the heartbeat's phase is the activity's, not the run's");
    assert.deepEqual(line!.transfer, { phase: 'download-model', bytes: beat.bytes, totalBytes: beat.totalBytes });
    assert.match(renderLine(line!), /training   ░{20} 0\/20 · downloading model 1\.5 GiB \/ 13\.5 GiB \(11%\)$/);
    const upload = { phase: 'upload-onnx' as const, bytes: 300 * 1024 ** 2 };
    assert.match(
      renderLine({ ...base, phase: 'exporting', transfer: upload }),
      / exporting \(uploading onnx 300 MiB\)$/,
    );
  });

  it('summarizes a finished grid, counting reused runs', () => {
    const run = (status: RunResult['status'], reused?: boolean): RunResult => ({
      runKey: 'k',
      model: 'm',
      method: 'lora',
      label: 'l',
      status,
      ...(reused ? { reused } : {}),
    });
    const result = {
      gridId: 'g',
      reportPrefix: 'grids/g',
      markdown: '',
      runs: [run('completed', true), run('completed'), run('failed'), run('cancelled')],
    } as GridResult;
    assert.equal(
      summaryLine(result),
      'grid g: 4 runs: 2 completed (1 reused from an earlier start), 1 failed, 1 cancelled; report in grids/g',
    );
    assert.equal(summaryLine({ ...result, runs: [run('completed')] }), 'grid g: 1 run: 1 completed; report in grids/g');
  });

  it('never shows a run or the grid going back a phase', () => {
    const memory = new ProgressMemory();
    const shown = (phases: RunPhase[]) => phases.map((p) => memory.run('r1', p));
    assert.deepEqual(
      shown([
        'pending',
        'tokenizing',
        'training',
        'tokenizing',
        'exporting',
        'evaluating',
        'tokenizing',
        'training',
        'evaluating',
        'completed',
        'tokenizing',
      ]),
      [
        'pending',
        'tokenizing',
        'training',
        'training',
        'exporting',
        'evaluating',
        'evaluating',
        'evaluating',
        'evaluating',
        'completed',
        'completed',
      ],
    );
    // Skipping phases forward is fine (in-context runs skip training and export); runs are independent.
    assert.equal(memory.run('icl', 'evaluating'), 'evaluating');
    assert.equal(memory.run('r2', 'tokenizing'), 'tokenizing');
    assert.equal(memory.run('r3', 'failed'), 'failed');
    assert.equal(memory.run('r3', 'evaluating'), 'failed');
    assert.deepEqual(
      (['preparing', 'running', 'preparing', 'reporting', 'running'] as const).map((p) => memory.gridPhase(p)),
      ['preparing', 'running', 'running', 'reporting', 'reporting'],
    );
  });

  it("a run query that times out (busy worker) does not turn evaluating back into the grid's tokenizing", async () => {
    // The grid reports every run in flight as 'tokenizing'; the run itself knows its real phase.
    let runAnswer: () => Promise<unknown> = async () => ({ runKey: 'k', phase: 'evaluating', label: 'l', model: 'm' });
    const grid: GridProgress = {
      gridId: 'g',
      phase: 'running',
      runs: [{ runKey: 'k', phase: 'tokenizing', label: 'l', model: 'm' }],
    };
    const client = {
      workflow: {
        getHandle: (id: string) => ({
          query: async () => (id === 'g' ? grid : runAnswer()),
          describe: async () => ({ raw: { pendingActivities: [] } }),
        }),
      },
    } as unknown as Client;
    const memory = new ProgressMemory();
    assert.equal((await gridLines(client, 'g', memory)).lines[0]!.phase, 'evaluating');
    runAnswer = async () => {
      throw new Error('query timed out');
    };
    const stale = await gridLines(client, 'g', memory);
    assert.equal(stale.lines[0]!.phase, 'evaluating');
    assert.equal(stale.progress.runs[0]!.phase, 'evaluating');
    assert.match(renderLine(stale.lines[0]!), / evaluating$/);
    // Without the memory (the old display) the same answers went backwards.
    assert.equal((await gridLines(client, 'g')).lines[0]!.phase, 'tokenizing');
  });
});
