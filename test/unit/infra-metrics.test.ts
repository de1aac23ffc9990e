/**
 * The worker's /metrics endpoint: well-formed Prometheus text (every sample preceded by its HELP
 * and TYPE, names and labels in the allowed alphabet, escaped label values), the run-progress
 * gauges, stale runs dropped, and the SDK's own exporter (Core, really started here) merged in.
 */
import { strict as assert } from 'node:assert';
import { createServer } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { Runtime } from '@temporalio/worker';
import {
  metricsSettings,
  renderMetrics,
  reportTrainingProgress,
  resetTrainingProgress,
  sdkTelemetryOptions,
  startMetricsServer,
} from '../../workers/metrics';

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*",?)*\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)( -?\d+)?$/;

/** Checks the exposition format; returns samples as `name{labels}` → value. */
function parseExposition(text: string): Map<string, number> {
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  const typed = new Map<string, string>();
  const helped = new Set<string>();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      assert.match(meta[2]!, NAME, line);
      if (meta[1] === 'TYPE') {
        assert.ok(['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(meta[3]!), line);
        assert.ok(!typed.has(meta[2]!), `TYPE of ${meta[2]} given twice`);
        typed.set(meta[2]!, meta[3]!);
      } else helped.add(meta[2]!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    assert.ok(m, `malformed sample line: ${JSON.stringify(line)}`);
    const family = m[1]!.replace(/_(bucket|sum|count|total)$/, '');
    assert.ok(typed.has(m[1]!) || typed.has(family), `sample before its TYPE: ${line}`);
    samples.set(`${m[1]}${m[2] ?? ''}`, Number(m[3] === '+Inf' ? Infinity : m[3]));
  }
  for (const name of typed.keys()) if (name.startsWith('peftgrid_')) assert.ok(helped.has(name), `no HELP for ${name}`);
  return samples;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('worker metrics', () => {
  afterEach(() => resetTrainingProgress());

  it('is off by default and reads its port from PEFTGRID_METRICS_PORT', () => {
    assert.equal(metricsSettings({}), null);
    assert.deepEqual(metricsSettings({ PEFTGRID_METRICS_PORT: '9464' }), {
      port: 9464,
      host: '0.0.0.0',
      sdkBindAddress: '127.0.0.1:9465',
    });
    assert.throws(() => metricsSettings({ PEFTGRID_METRICS_PORT: 'abc' }), /PEFTGRID_METRICS_PORT: got "abc"/);
    assert.deepEqual(
      sdkTelemetryOptions(
        metricsSettings({ PEFTGRID_METRICS_PORT: '9000', PEFTGRID_SDK_METRICS_ADDRESS: '127.0.0.1:7000' })!,
      ),
      { metrics: { prometheus: { bindAddress: '127.0.0.1:7000' } } },
    );
  });

  it('renders run-progress gauges per run key, escapes labels, drops stale runs', () => {
    const now = 1_000_000_000;
    reportTrainingProgress(
      { runKey: 'tiny__lora-r4__abc', step: 12, loss: 2.5, tokensPerSec: 812.25, maxSteps: 40 },
      now,
    );
    reportTrainingProgress({ runKey: 'odd"key\\x', step: 3, loss: NaN }, now - 11 * 60_000);
    let s = parseExposition(renderMetrics(now - 60_000));
    assert.equal(s.get('peftgrid_training_runs'), 2);
    assert.equal(s.get('peftgrid_train_step{run_key="tiny__lora-r4__abc"}'), 12);
    assert.equal(s.get('peftgrid_train_loss{run_key="tiny__lora-r4__abc"}'), 2.5);
    assert.equal(s.get('peftgrid_train_tokens_per_second{run_key="tiny__lora-r4__abc"}'), 812.25);
    assert.equal(s.get('peftgrid_train_max_steps{run_key="tiny__lora-r4__abc"}'), 40);
    assert.ok(Number.isNaN(s.get('peftgrid_train_loss{run_key="odd\\"key\\\\x"}')));
    s = parseExposition(renderMetrics(now));
    assert.equal(s.get('peftgrid_training_runs'), 1, 'a run silent for 10 minutes is dropped');
    assert.equal(s.get('peftgrid_train_step{run_key="odd\\"key\\\\x"}'), undefined);
  });

  it("serves /metrics over HTTP with the SDK's own metrics merged in", { timeout: 60_000 }, async () => {
    const sdkPort = await freePort();
    const settings = metricsSettings({
      PEFTGRID_METRICS_PORT: String(await freePort()),
      PEFTGRID_METRICS_HOST: '127.0.0.1',
      PEFTGRID_SDK_METRICS_ADDRESS: `127.0.0.1:${sdkPort}`,
    })!;
    Runtime.install({ telemetryOptions: sdkTelemetryOptions(settings) });
    Runtime.instance(); // starts Core and with it its exporter
    const server = await startMetricsServer({
      port: settings.port,
      host: settings.host,
      sdkAddress: settings.sdkBindAddress,
    });
    try {
      reportTrainingProgress({ runKey: 'r1', step: 7, loss: 1.25, tokensPerSec: 100 });
      const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const s = parseExposition(await res.text());
      assert.equal(s.get('peftgrid_train_step{run_key="r1"}'), 7);
      assert.equal(s.get('peftgrid_sdk_metrics_up'), 1, 'the SDK exporter answered');
      assert.equal((await fetch(`http://127.0.0.1:${server.port}/other`)).status, 404);
    } finally {
      await server.close();
    }
    // With the SDK exporter gone, /metrics still answers and says so.
    const alone = await startMetricsServer({ port: 0, host: '127.0.0.1', sdkAddress: `127.0.0.1:${await freePort()}` });
    try {
      const s = parseExposition(await (await fetch(`http://127.0.0.1:${alone.port}/metrics`)).text());
      assert.equal(s.get('peftgrid_sdk_metrics_up'), 0);
    } finally {
      await alone.close();
    }
  });
});
