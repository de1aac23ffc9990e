/**
 * trackRunEnded against a stand-in MLflow server: a failed run's MLflow run gets its params, the
 * failure as tags and the FAILED status (KILLED for a cancelled run, without failure tags); a
 * tracker that is down or refuses the status costs a warning and a `skipped` entry, never a throw.
 * The real server and the workflow's failed path are in test/tracking/mlflow-tracking.test.ts.
 */
import { strict as assert } from 'node:assert';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import pino from 'pino';
import { trackRunEnded } from '../../activities/track';
import type { TrackingTarget, TrackRunEndedInput } from '../../src/contracts';
import { StepMetricsLogger } from '../../src/tracking/step-metrics';

const end = (input: TrackRunEndedInput) => new MockActivityEnvironment().run(trackRunEnded, input);

// Nothing listens here: in the tracking suites' port range (27500-27509), never started by a test.
const CLOSED = 'http://127.0.0.1:27509';

const target = (uri: string): TrackingTarget => ({
  uri,
  experiment: 'unit',
  key: 'tk-1',
  runName: 'run-1',
  tags: {},
  params: { 'training.lr': '0.001', 'method.method': 'lora' },
});

interface Request {
  url: string;
  body: Record<string, unknown>;
}

/**
 * The endpoints trackRunEnded and the step logger use; `refuseUpdate` answers runs/update with
 * MLflow's 400; `status` is the found run's.
 */
async function fakeMlflow(refuseUpdate = false, status = 'RUNNING') {
  const requests: Request[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests.push({ url: req.url ?? '', body: body ? (JSON.parse(body) as Record<string, unknown>) : {} });
      const send = (code: number, json: unknown) => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json));
      };
      if (req.url?.startsWith('/api/2.0/mlflow/experiments/get-by-name'))
        return send(200, { experiment: { experiment_id: '7' } });
      if (req.url === '/api/2.0/mlflow/runs/search')
        return send(200, {
          runs: [{ info: { run_id: 'run-a', artifact_uri: 'mlflow-artifacts:/7/run-a/artifacts', status } }],
        });
      if (req.url === '/api/2.0/mlflow/runs/log-batch') return send(200, {});
      if (req.url === '/api/2.0/mlflow/runs/update') {
        if (refuseUpdate) return send(400, { error_code: 'INVALID_PARAMETER_VALUE', message: 'run is deleted' });
        return send(200, {});
      }
      send(404, { error_code: 'ENDPOINT_NOT_FOUND', message: req.url });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { uri, requests, close: () => new Promise((r) => server.close(r)) };
}

const batches = (requests: Request[], field: 'params' | 'tags') =>
  requests
    .filter((r) => r.url === '/api/2.0/mlflow/runs/log-batch' && r.body[field])
    .flatMap((r) => r.body[field] as { key: string; value: string }[]);

describe('trackRunEnded', () => {
  it('a failed run: params, the failure as tags (the message cut to MLflow’s limit), then FAILED with an end time', async () => {
    const fake = await fakeMlflow();
    const long = `method.targetModules: got ['no_such_proj'] ${'x'.repeat(6000)}`;
    const out = await end({
      tracking: target(fake.uri),
      status: 'FAILED',
      error: long,
      errorType: 'InvalidSpec',
    });
    await fake.close();
    assert.deepEqual(out, { mlflowRunId: 'run-a', skipped: [] });
    assert.deepEqual(batches(fake.requests, 'params'), [
      { key: 'training.lr', value: '0.001' },
      { key: 'method.method', value: 'lora' },
    ]);
    const tags = Object.fromEntries(batches(fake.requests, 'tags').map((t) => [t.key, t.value]));
    assert.equal(tags['peftgrid.errorType'], 'InvalidSpec');
    assert.equal(tags['peftgrid.error'], long.slice(0, 5000));
    const update = fake.requests.filter((r) => r.url === '/api/2.0/mlflow/runs/update');
    assert.equal(update.length, 1);
    assert.equal(update[0]!.body.run_id, 'run-a');
    assert.equal(update[0]!.body.status, 'FAILED');
    assert.equal(typeof update[0]!.body.end_time, 'number');
    // The status is the last request: a run is never closed before its failure is on it.
    assert.equal(fake.requests.at(-1)!.url, '/api/2.0/mlflow/runs/update');
  });

  it('a cancelled run: KILLED, and no failure tags', async () => {
    const fake = await fakeMlflow();
    const out = await end({
      tracking: target(fake.uri),
      status: 'KILLED',
    });
    await fake.close();
    assert.deepEqual(out, { mlflowRunId: 'run-a', skipped: [] });
    assert.deepEqual(batches(fake.requests, 'tags'), []);
    assert.equal(fake.requests.find((r) => r.url === '/api/2.0/mlflow/runs/update')?.body.status, 'KILLED');
  });

  it('a tracker that refuses the status: returns, naming the run status as skipped', async () => {
    const fake = await fakeMlflow(true);
    const out = await end({
      tracking: target(fake.uri),
      status: 'FAILED',
      error: 'boom',
    });
    await fake.close();
    assert.deepEqual(out, { mlflowRunId: 'run-a', skipped: ['run status'] });
  });

  it('a tracker that is down: returns in bounded time, skipping the whole run', async () => {
    const t0 = Date.now();
    const out = await end({
      tracking: target(CLOSED),
      status: 'FAILED',
      error: 'boom',
    });
    assert.deepEqual(out, { mlflowRunId: null, skipped: ['the whole run'] });
    assert.ok(Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
  });
});

describe('a run trained again after its MLflow run was closed', () => {
  const step = (s: number) => ({ step: s, loss: 1, lr: 1e-3, tokensPerSec: 100, gradNorm: null });
  for (const [status, reopens] of [
    ['FAILED', true],
    ['KILLED', true],
    ['RUNNING', false],
  ] as const) {
    it(`found ${status}: the step logger ${reopens ? 'sets it RUNNING again' : 'leaves its status'}, and logs the steps`, async () => {
      const fake = await fakeMlflow(false, status);
      const tracker = new StepMetricsLogger(target(fake.uri), pino({ level: 'silent' }), { flushMs: 10_000 });
      tracker.start();
      for (let s = 1; s <= 3; s++) tracker.observe(step(s));
      await tracker.close();
      await fake.close();
      const updates = fake.requests.filter((r) => r.url === '/api/2.0/mlflow/runs/update').map((r) => r.body.status);
      assert.deepEqual(updates, reopens ? ['RUNNING'] : []);
      const logged = fake.requests.filter((r) => r.url === '/api/2.0/mlflow/runs/log-batch' && r.body.metrics);
      assert.equal(logged.length, 1);
    });
  }
});
