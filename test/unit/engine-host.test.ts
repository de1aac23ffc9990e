// The engine process (src/engine/host.ts): ONNX Runtime off the caller's thread, so its event loop
// keeps turning during a forward pass; cancellation kills a pass in progress; the process never
// outlives its parent.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import {
  EngineHost,
  EngineHostExitedError,
  engineRunInFromEnv,
  generate,
  loadModel,
  type EngineModel,
} from '../../src/engine';
import { ensureTinyOnnx, makePrompts, REPO_ROOT } from '../helpers/engine-fixture';

let dir: string;
let host: EngineHost;
let model: EngineModel;

before(async () => {
  dir = await ensureTinyOnnx();
  host = new EngineHost();
  model = await loadModel(dir, { intraOpNumThreads: 1, host });
});

after(async () => {
  await model?.release();
  await host?.close();
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The longest gap between 10 ms ticks of a timer on this thread while `work` runs, ms. */
async function maxTimerLag<T>(work: () => Promise<T>): Promise<{ lagMs: number; value: T }> {
  let lagMs = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    lagMs = Math.max(lagMs, now - last - 10);
    last = now;
  }, 10);
  try {
    const value = await work();
    return { lagMs, value };
  } finally {
    clearInterval(timer);
  }
}

// Eight prompts of ~500 tokens in one batch: the prefill is a single ORT run of ~100 ms on the
// tiny model, long enough to stall a timer. (Four of ~250 were, until prefill returned the last
// position's logits only — num_logits_to_keep — which cut that pass to ~12 ms, below the noise.)
const longPrefill = (m: EngineModel) =>
  generate(m, makePrompts([500, 496, 490, 484, 478, 470, 466, 460], m.config.vocabSize), {
    maxNewTokens: 4,
    batchSize: 8,
  });

/**
 * A call of many seconds on any machine: 32 prompts of 250 tokens, 32 steps each, without the KV
 * cache (every step recomputes the prefix). A fixed-size cached generation was once long enough,
 * until prefill got cheaper and it finished inside the 300 ms these tests wait (CI failed on it).
 */
const busyCall = (m: EngineModel) =>
  generate(
    m,
    makePrompts(
      Array.from({ length: 32 }, () => 250),
      m.config.vocabSize,
    ),
    { maxNewTokens: 32, batchSize: 4, useCache: false, eosTokenIds: [] },
  );

/** Fails the test if `p` has settled after `ms`: the kill below must hit a call in progress. */
async function stillRunningAfter(p: Promise<unknown>, ms: number) {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((r) => setTimeout(r, ms));
  assert.equal(settled, false, `the call settled within ${ms} ms: too short to test a kill mid-call`);
}

test('models load into an engine process by default, not onto this thread', async () => {
  assert.equal(engineRunInFromEnv({}), 'process');
  assert.equal(engineRunInFromEnv({ PEFTGRID_ENGINE_RUN_IN: 'main' }), 'main');
  assert.throws(
    () => engineRunInFromEnv({ PEFTGRID_ENGINE_RUN_IN: 'thread' }),
    /PEFTGRID_ENGINE_RUN_IN = "thread": expected 'process' or 'main'/,
  );
  assert.equal(model.remote()?.host, host);
  assert.ok(host.pid && host.pid !== process.pid && alive(host.pid));
  const own = await loadModel(dir, { intraOpNumThreads: 1 });
  const ownHost = own.remote()!.host;
  assert.ok(own.remote()!.owned && ownHost !== host);
  await own.release(); // an owned host ends with its model
  assert.ok(ownHost.dead);
  const local = await loadModel(dir, { intraOpNumThreads: 1, runIn: 'main' });
  assert.equal(local.remote(), undefined);
  await local.release();
  await assert.rejects(loadModel(dir, { runIn: 'worker' as 'main' }), TypeError);
  await assert.rejects(loadModel(dir, { runIn: 'main', host }), /contradicts/);
});

test('the event loop keeps turning while a long prefill runs in the engine process', async () => {
  const { lagMs, value } = await maxTimerLag(() => longPrefill(model));
  const passMs = value.stats.batches[0]!.ttftMs;
  // On this thread a timer cannot fire during a run, so its lag is at least the prefill itself
  // (the control below); off it, the lag is scheduling noise. Relative, so load cannot flip it.
  assert.ok(lagMs < passMs / 2, `timer lag ${lagMs.toFixed(0)} ms during a ${passMs.toFixed(0)} ms prefill`);
});

test('control: the same prefill on this thread stalls the timer for the whole pass', async () => {
  const local = await loadModel(dir, { intraOpNumThreads: 1, runIn: 'main' });
  try {
    const { lagMs, value } = await maxTimerLag(() => longPrefill(local));
    const passMs = value.stats.batches[0]!.ttftMs;
    assert.ok(lagMs >= passMs / 2, `timer lag ${lagMs.toFixed(0)} ms during a ${passMs.toFixed(0)} ms prefill`);
  } finally {
    await local.release();
  }
});

test('close() stops a call in progress at once and frees the process', async () => {
  const h = new EngineHost();
  const m = await loadModel(dir, { intraOpNumThreads: 1, host: h });
  const pid = h.pid!;
  // Many long prefills: seconds of work that close() must cut short.
  const running = busyCall(m);
  await stillRunningAfter(running, 300);
  const t0 = performance.now();
  await h.close();
  await assert.rejects(
    running,
    (e: unknown) => e instanceof EngineHostExitedError && e.killed && /stopped \(cancelled\)/.test(e.message),
  );
  assert.ok(performance.now() - t0 < 2000, 'close waited for the generation');
  assert.equal(alive(pid), false);
  await m.release(); // releasing a model of a killed host is a no-op
  await assert.rejects(generate(m, [[5]]), /released/);
  await assert.rejects(loadModel(dir, { host: h }), EngineHostExitedError);
});

test('an engine process that dies (OOM kill) fails its pending call with EngineHostExitedError', async () => {
  const h = new EngineHost();
  try {
    const m = await loadModel(dir, { intraOpNumThreads: 1, host: h });
    const running = busyCall(m);
    await stillRunningAfter(running, 300);
    process.kill(h.pid!, 'SIGKILL');
    await assert.rejects(
      running,
      (e: unknown) => e instanceof EngineHostExitedError && !e.killed && e.signal === 'SIGKILL',
    );
  } finally {
    await h.close();
  }
});

test('the engine process exits when its parent dies', async () => {
  const script = `
    const { EngineHost, loadModel } = require(${JSON.stringify(join(REPO_ROOT, 'src', 'engine'))});
    (async () => {
      const host = new EngineHost();
      await loadModel(${JSON.stringify(dir)}, { host, intraOpNumThreads: 1 });
      console.log(host.pid);
      process.kill(process.pid, 'SIGKILL'); // no cleanup code runs
    })();`;
  const { stdout } = await promisify(execFile)(process.execPath, [
    '--require',
    require.resolve('tsx/cjs'),
    '-e',
    script,
  ]).catch((e: { stdout: string }) => e);
  const pid = Number(stdout.trim());
  assert.ok(pid > 0, `no pid in ${JSON.stringify(stdout)}`);
  const deadline = Date.now() + 10_000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(alive(pid), false, `engine process ${pid} outlived its parent`);
});
