/**
 * Workflow tier: results out of a real finished run, through the CLI as a user types it (the bin,
 * as a child process with TEMPORAL_ADDRESS pointing at a real dev server): `fetch --adapter`
 * (loaded with PeftModel.from_pretrained), `--merged` (AutoModelForCausalLM, same logits as the
 * adapter on its base), `--onnx`; `logs` (and `--follow` while the run trains); `grid list`;
 * `grid status --watch` on a pipe (one line per change); and the refusals: a run that has not
 * finished, an unknown run, a directory that exists. Tiny random-init Llama, 4 LoRA steps.
 */
import { strict as assert } from 'node:assert';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Runtime, DefaultLogger } from '@temporalio/worker';
import { TASK_QUEUES } from '../../src/common/constants';
import { planRuns } from '../../src/config/plan';
import type { GridResult } from '../../src/contracts';
import { PYTHON, REPO, scratchDir, tinyModel } from '../helpers/fixtures';
import { tinyLoraGrid, startWorkflowStack, type WorkflowStack } from '../helpers/tiny-grid';

Runtime.install({ logger: new DefaultLogger('WARN') });

interface CliResult {
  code: number | null;
  out: string;
  err: string;
}

describe('results out: fetch, logs, grid list, non-TTY progress', { timeout: 15 * 60_000 }, () => {
  let env: TestWorkflowEnvironment;
  let stack: WorkflowStack;
  const dir = scratchDir('wf-results-out');
  const grid = tinyLoraGrid({
    name: 'wf-out',
    store: `file://${join(dir, 'store')}`,
    maxSteps: 4,
    checkpointEverySteps: 2,
  });
  const runs = planRuns(grid);
  const runKey = runs[0]!.runKey;
  const gridId = `wf-out-${Date.now()}`;
  let watched: Promise<CliResult>;
  let followed: Promise<CliResult>;

  /** `peftgrid <args>` as a child process; stdout and stderr are pipes (not a TTY). */
  const cli = (...args: string[]): Promise<CliResult> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [join(REPO, 'bin', 'peftgrid.js'), ...args], {
        cwd: REPO,
        env: { ...process.env, TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: env.namespace ?? 'default' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out, err }));
    });

  const python = (script: string, ...args: string[]) =>
    execFileSync(PYTHON, ['-c', script, ...args], {
      cwd: REPO,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });

  before(async () => {
    stack = await startWorkflowStack(join(dir, 'data'));
    env = stack.env;
  });

  after(async () => {
    await stack?.stop();
  });

  it('follows a live grid on a pipe: one line per change, and the logs as they come', async () => {
    const handle = await env.client.workflow.start('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: gridId,
      args: [{ gridId, grid, runs }],
    });
    watched = cli('grid', 'status', gridId, '--watch');
    followed = cli('logs', gridId, '--follow', '--output', 'jsonl');
    const result = (await handle.result()) as GridResult;
    assert.equal(result.runs[0]!.status, 'completed', result.runs[0]!.error);

    const w = await watched;
    assert.equal(w.code, 0, w.err);
    const progress = w.out.split('\n').filter((l) => /^\d\d:\d\d:\d\d /.test(l));
    assert.ok(
      progress.some((l) => / grid .*: running$/.test(l)),
      w.out,
    );
    assert.ok(
      progress.some((l) => / completed$/.test(l)),
      w.out,
    );
    assert.ok(!w.out.includes('█') && !w.out.includes('\x1b['), 'no bars or cursor moves on a pipe');
    // One line per change: never the same line twice in a row, and far fewer than one per poll.
    const bodies = progress.map((l) => l.slice(9));
    for (let i = 1; i < bodies.length; i++) assert.notEqual(bodies[i], bodies[i - 1], `repeated: ${bodies[i]}`);
    assert.ok(progress.length <= 20, `${progress.length} progress lines:\n${w.out}`);
    assert.match(w.out, /1 run: 1 completed/, 'the result follows');

    const f = await followed;
    assert.equal(f.code, 0, f.err);
    const records = f.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { runKey: string; source?: string; msg: string; time: number });
    assert.ok(records.length > 0, f.err);
    assert.ok(records.every((r) => r.runKey === runKey));
    assert.ok(
      records.some((r) => r.source === 'trainer'),
      'the trainer stderr lines',
    );
    assert.ok(
      records.some((r) => r.msg === 'training finished; final adapter committed'),
      'the activity lines',
    );
    for (let i = 1; i < records.length; i++) assert.ok(records[i]!.time >= records[i - 1]!.time - 5000);
  });

  it('logs after the fact: text lines of the run (train, export, evaluate), selected by a part of its label', async () => {
    const r = await cli('logs', gridId, '--run', 'lora');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^\d{4}-\d\d-\d\dT[\d:.]+Z trainer: /m);
    assert.match(r.out, /INFO training finished; final adapter committed/);
    assert.match(r.out, /INFO ONNX export committed/, 'the export activity logs with its run');
    assert.match(r.out, /INFO evaluation written/, 'and the evaluate activity, under the evaluation key');
  });

  it('fetch --adapter and --merged: PeftModel loads the adapter; the merged model has its logits', async () => {
    const adapter = join(dir, 'out', 'adapter');
    const a = await cli('fetch', gridId, runKey, '--adapter', adapter);
    assert.equal(a.code, 0, a.err);
    assert.match(a.out, /fetched the adapter of/);
    assert.ok(existsSync(join(adapter, 'adapter_model.safetensors')));
    const merged = join(dir, 'out', 'merged');
    const m = await cli('fetch', gridId, runKey, '--merged', merged, '--output', 'json');
    assert.equal(m.code, 0, m.err);
    assert.equal((JSON.parse(m.out) as { dir: string }).dir, merged);
    assert.ok(!existsSync(join(merged, 'adapter_config.json')), 'merged, not an adapter');
    // One interpreter for every check: importing torch is the slow part.
    const report = python(
      [
        'import sys, json, torch',
        'from transformers import AutoModelForCausalLM, AutoTokenizer',
        'from peft import PeftModel',
        'base_dir, adapter_dir, merged_dir = sys.argv[1:4]',
        'ref = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), adapter_dir).eval()',
        'c = ref.peft_config["default"]',
        'merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()',
        'base = AutoModelForCausalLM.from_pretrained(base_dir).eval()',
        'ids = AutoTokenizer.from_pretrained(merged_dir)("is the sky blue? yes", return_tensors="pt").input_ids',
        'with torch.no_grad():',
        '    a, b, z = merged(ids).logits, ref(ids).logits, base(ids).logits',
        'print(json.dumps({"type": str(c.peft_type.value), "r": c.r,',
        '                  "vsAdapter": (a - b).abs().max().item(), "vsBase": (a - z).abs().max().item()}))',
      ].join('\n'),
      tinyModel('llama'),
      adapter,
      merged,
    );
    const got = JSON.parse(report.trim().split('\n').pop()!) as {
      type: string;
      r: number;
      vsAdapter: number;
      vsBase: number;
    };
    assert.deepEqual([got.type, got.r], ['LORA', 4]);
    assert.ok(got.vsAdapter < 1e-4, `merged vs adapter-on-base logits differ by ${got.vsAdapter}`);
    assert.ok(got.vsBase > got.vsAdapter, `the merge changed nothing (vs base ${got.vsBase})`);
  });

  it('fetch --onnx: the export the run was evaluated with', async () => {
    const out = join(dir, 'out', 'onnx');
    const r = await cli('fetch', gridId, runKey, '--onnx', out);
    assert.equal(r.code, 0, r.err);
    assert.ok(existsSync(join(out, 'model.onnx')) && existsSync(join(out, 'engine.json')));
  });

  it('refuses an existing directory, an unknown run and a run that has not finished; writes nothing', async () => {
    const taken = join(dir, 'out', 'taken');
    mkdirSync(taken, { recursive: true });
    writeFileSync(join(taken, 'mine.txt'), 'keep me');
    const exists = await cli('fetch', gridId, runKey, '--adapter', taken);
    assert.equal(exists.code, 1);
    assert.match(exists.err, /already exists; nothing was overwritten/);
    assert.deepEqual(readdirSync(taken), ['mine.txt']);
    assert.equal(readFileSync(join(taken, 'mine.txt'), 'utf8'), 'keep me');

    const unknown = await cli('fetch', gridId, 'no-such-run', '--adapter', join(dir, 'out', 'x'));
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /has no run "no-such-run"/);
    assert.match(unknown.err, new RegExp(runKey));

    // A second grid whose run trains far longer than this test waits.
    const long = tinyLoraGrid({
      name: 'wf-out-long',
      store: `file://${join(dir, 'store')}`,
      maxSteps: 5000,
      checkpointEverySteps: 1000,
    });
    const longId = `wf-out-long-${Date.now()}`;
    const handle = await env.client.workflow.start('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: longId,
      args: [{ gridId: longId, grid: long, runs: planRuns(long) }],
    });
    try {
      const early = await cli('fetch', longId, 'lora', '--merged', join(dir, 'out', 'early'));
      assert.equal(early.code, 1);
      assert.match(early.err, /has not finished \((NOT_STARTED|RUNNING)\)/);
      assert.ok(!existsSync(join(dir, 'out', 'early')));
      assert.deepEqual(
        readdirSync(join(dir, 'out')).filter((n) => n.includes('.partial-')),
        [],
        'no partial directory left',
      );

      const list = await cli('grid', 'list', '--output', 'json');
      assert.equal(list.code, 0, list.err);
      const rows = JSON.parse(list.out) as Array<{
        gridId: string;
        name: string;
        status: string;
        runs: number;
        byPhase?: Record<string, number>;
      }>;
      const done = rows.find((g) => g.gridId === gridId)!;
      assert.equal(done.name, 'wf-out');
      assert.equal(done.status, 'COMPLETED');
      assert.equal(done.runs, 1);
      assert.deepEqual(done.byPhase, { completed: 1 });
      const live = rows.find((g) => g.gridId === longId)!;
      assert.equal(live.status, 'RUNNING');
      assert.equal(live.name, 'wf-out-long');
      assert.ok(rows.indexOf(live) < rows.indexOf(done), 'newest first');
      const text = await cli('grid', 'list');
      assert.match(text.out, /^STARTED \(UTC\) +CLOSED \(UTC\) +STATUS +NAME +RUNS +GRID ID$/m);
      assert.match(
        text.out,
        new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d .*COMPLETED +wf-out +1/1 completed +${gridId}$`, 'm'),
      );
    } finally {
      await handle.terminate('test done');
    }
  });
});
