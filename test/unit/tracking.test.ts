/**
 * Experiment tracking without a tracker: the pure parts (target, params, final metrics), and the
 * two promises that must hold whatever the server does — a tracker that is down never fails or
 * stalls training (bounded time, one warning naming the uri and the steps skipped), and a resumed
 * attempt does not log the steps its killed predecessor already logged. The real MLflow server is
 * in test/tracking/mlflow-tracking.test.ts.
 */
import { strict as assert } from 'node:assert';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import pino from 'pino';
import { finalMetrics, trackGridReport, trackRunResult } from '../../activities/track';
import { planRuns } from '../../src/config/plan';
import { validateGrid } from '../../src/config/validate';
import type { RunResult, TrackingTarget } from '../../src/contracts';
import { StepMetricsLogger } from '../../src/tracking/step-metrics';
import { flattenParams, trackingTarget } from '../../src/tracking/target';
import { REPO, tinyModel } from '../helpers/fixtures';

// Nothing listens here: in this suite's port range (27500-27509), never started by any test.
const CLOSED = 'http://127.0.0.1:27509';

function captureLog() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines };
}

const target = (uri: string): TrackingTarget => ({
  uri,
  experiment: 'unit',
  key: 'tk-1',
  runName: 'run-1',
  tags: {},
  params: { 'training.lr': '0.001' },
});

const step = (s: number) => ({ step: s, loss: 2 - s / 100, lr: 1e-3, tokensPerSec: 100, gradNorm: null });

describe('tracking target', () => {
  const grid = (tracking?: unknown) =>
    validateGrid(
      {
        name: 'trk',
        models: [{ name: 'tiny', path: tinyModel('llama'), family: 'llama' }],
        methods: [{ method: 'lora', r: 4 }, { method: 'icl' }],
        ...(tracking ? { tracking } : {}),
      },
      'test',
      REPO,
    );

  it('is off by default, and tracking does not change run keys', () => {
    const off = planRuns(grid());
    const on = planRuns(grid({ mlflow: { uri: 'http://127.0.0.1:5000' } }));
    assert.equal(trackingTarget(off[0]!, { trainingKey: 't', evalKey: 'e' }), undefined);
    assert.deepEqual(
      on.map((r) => r.runKey),
      off.map((r) => r.runKey),
    );
  });

  it('keys training runs by the training key, the rest by the evaluation key; params are the flattened config', () => {
    const [lora, icl] = planRuns(grid({ mlflow: { uri: 'http://127.0.0.1:5000' } }));
    const t = trackingTarget(lora!, { trainingKey: 'train-key', evalKey: 'eval-key' })!;
    assert.equal(t.key, 'train-key');
    assert.equal(t.experiment, 'trk', "the grid's name by default");
    assert.equal(t.params['method.r'], '4');
    assert.equal(t.params['training.maxSteps'], '200');
    assert.equal(t.params['model.family'], 'llama');
    assert.equal(t.params['data.datasets'], undefined, 'absent (all datasets) is left out, not "undefined"');
    assert.ok(!Object.keys(t.params).some((k) => k.startsWith('store') || k.startsWith('tracking')));
    assert.equal(t.tags['peftgrid.evalKey'], 'eval-key');
    assert.equal(trackingTarget(icl!, { trainingKey: 'train-key', evalKey: 'eval-key' })!.key, 'eval-key');
  });

  it('flattens nested objects, keeps lists as JSON values and cuts over-long values', () => {
    assert.deepEqual(flattenParams({ a: { b: 1, c: ['q', 'k'] }, d: null, e: 'x'.repeat(7000) }), {
      'a.b': '1',
      'a.c': '["q","k"]',
      e: `${'x'.repeat(5997)}...`,
    });
  });

  it('rejects a tracking uri that is not http(s), naming the field', () => {
    assert.throws(() => grid({ mlflow: { uri: 'localhost:5000' } }), /tracking\.mlflow\.uri: got "localhost:5000"/);
  });
});

describe('a tracker that is down', () => {
  it('step metrics: close returns in bounded time and warns once with the uri and the skipped steps', async () => {
    const { log, lines } = captureLog();
    const tracker = new StepMetricsLogger(target(CLOSED), log, { flushMs: 50 });
    const t0 = Date.now();
    tracker.start();
    for (let s = 1; s <= 12; s++) tracker.observe(step(s));
    await new Promise((r) => setTimeout(r, 200));
    await tracker.close(3000);
    const ms = Date.now() - t0;
    assert.ok(ms < 4000, `closed in ${ms} ms`);
    const warnings = lines.filter((l) => l.level === 40);
    assert.equal(warnings.length, 2, JSON.stringify(warnings));
    assert.match(
      String(warnings[0]!.msg),
      /MLflow tracker http:\/\/127\.0\.0\.1:27509 failed while opening the MLflow run/,
    );
    assert.equal(warnings[1]!.fromStep, 1);
    assert.equal(warnings[1]!.toStep, 12);
    assert.match(String(warnings[1]!.msg), /did not take step metrics 1-12; training went on/);
  });

  it('trackRunResult returns (skipping everything) instead of failing the run', async () => {
    const result = { runKey: 'r', model: 'm', method: 'lora', label: 'l', status: 'completed' } as RunResult;
    const t0 = Date.now();
    const out = await new MockActivityEnvironment().run(trackRunResult, {
      storeUrl: 'file:///nonexistent',
      tracking: target(CLOSED),
      result,
    });
    assert.deepEqual(out, { mlflowRunId: null, skipped: ['the whole run'] });
    assert.ok(Date.now() - t0 < 5000);
  });

  it('trackGridReport returns too, naming the grid report as skipped', async () => {
    const out = await new MockActivityEnvironment().run(trackGridReport, {
      storeUrl: 'file:///nonexistent',
      tracking: { uri: CLOSED, experiment: 'unit' },
      gridId: 'g',
      gridName: 'g',
      reportPrefix: 'grids/g',
    });
    assert.deepEqual(out, { mlflowRunId: null, skipped: ['the grid report'] });
  });
});

/** A stand-in for the few MLflow endpoints the step logger uses; `failFirst` requests answer 503. */
async function fakeMlflow(lastLossStep: number, failFirst: number) {
  const logged: { key: string; step: number }[] = [];
  let requests = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests++;
      const send = (code: number, json: unknown) => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json));
      };
      if (requests <= failFirst) return send(503, { error_code: 'TEMPORARILY_UNAVAILABLE', message: 'busy' });
      if (req.url?.startsWith('/api/2.0/mlflow/experiments/get-by-name'))
        return send(200, { experiment: { experiment_id: '7' } });
      if (req.url === '/api/2.0/mlflow/runs/search') {
        return send(200, {
          runs: [
            {
              info: { run_id: 'run-a', artifact_uri: 'mlflow-artifacts:/7/run-a/artifacts' },
              data: { metrics: lastLossStep >= 0 ? [{ key: 'loss', value: 1, step: lastLossStep }] : [] },
            },
          ],
        });
      }
      if (req.url === '/api/2.0/mlflow/runs/log-batch') {
        const b = JSON.parse(body) as { metrics?: { key: string; step: number }[] };
        logged.push(...(b.metrics ?? []).map((m) => ({ key: m.key, step: m.step })));
        return send(200, {});
      }
      send(404, { error_code: 'ENDPOINT_NOT_FOUND', message: req.url });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { uri, logged, close: () => new Promise((r) => server.close(r)) };
}

describe('step metrics to a tracker', () => {
  it('a resumed attempt logs only the steps after those already logged, one batch per flush', async () => {
    const fake = await fakeMlflow(5, 0);
    const { log } = captureLog();
    const tracker = new StepMetricsLogger(target(fake.uri), log, { flushMs: 10_000 });
    tracker.start();
    for (let s = 4; s <= 9; s++) tracker.observe(step(s));
    await tracker.close();
    await fake.close();
    const lossSteps = fake.logged.filter((m) => m.key === 'loss').map((m) => m.step);
    assert.deepEqual(lossSteps, [6, 7, 8, 9]);
    assert.deepEqual([...new Set(fake.logged.map((m) => m.key))].sort(), ['loss', 'lr', 'tokens_per_sec']);
  });

  it('a tracker down for a while (503s past the retries): metrics are kept and sent when it is back, no gap', async () => {
    // 4 > the 3 tries of one request: the open fails once, the client cools down, the next flush succeeds.
    const fake = await fakeMlflow(-1, 4);
    const { log, lines } = captureLog();
    const tracker = new StepMetricsLogger(target(fake.uri), log, { flushMs: 50, coolDownMs: 100 });
    tracker.start();
    for (let s = 1; s <= 5; s++) tracker.observe(step(s));
    await new Promise((r) => setTimeout(r, 1500));
    for (let s = 6; s <= 8; s++) tracker.observe(step(s));
    await tracker.close();
    await fake.close();
    assert.deepEqual(
      fake.logged.filter((m) => m.key === 'loss').map((m) => m.step),
      [1, 2, 3, 4, 5, 6, 7, 8],
    );
    const warnings = lines.filter((l) => l.level === 40).map((l) => String(l.msg));
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0]!, /failed while opening the MLflow run; training goes on/);
  });
});

describe('final metrics', () => {
  it('names eval, throughput and training figures, skipping what is not finite', () => {
    const result = {
      metrics: {
        overall: {
          n: 4,
          metrics: { exactMatch: { estimate: 0.5, lower: 0, upper: 1 }, jaccardStudy: { estimate: 0.25 } },
          perplexity: { estimate: 12 },
        },
        byDataset: {},
      },
      throughput: { tokensPerSec: 40, ttftMsP50: 5, tokenLatencyMsP50: 1, tokenLatencyMsP95: 2, hitLimitFraction: 0 },
      training: { steps: 10, trainLoss: 1.5, trainPerplexity: 4.5, tokensPerSec: null },
    } as unknown as RunResult;
    const m = Object.fromEntries(finalMetrics(result, 1).map((x) => [x.key, x.value]));
    assert.equal(m['eval.exactMatch'], 0.5);
    assert.equal(m['eval.jaccardStudy'], 0.25);
    assert.equal(m['eval.perplexity'], 12);
    assert.equal(m['eval.tokens_per_sec'], 40);
    assert.equal(m['train.final_loss'], 1.5);
    assert.equal('train.tokens_per_sec' in m, false);
  });
});
