/**
 * Prometheus metrics of a worker process, off unless PEFTGRID_METRICS_PORT is set. One scrape
 * target per process serves, on `/metrics`:
 * - run-progress gauges (step, loss, tokens/s per run key) fed by the train activity's
 *   `reportTrainingProgress` calls — the same numbers it heartbeats;
 * - the Temporal SDK's own metrics (task latencies, slots, poll counts …): Core's Prometheus
 *   exporter listens on a loopback address only and its text is appended to ours, so one port is
 *   scraped and nothing else is exposed.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TelemetryOptions } from '@temporalio/worker';
import { currentTrainingProgress, type TrainingProgress } from '../src/common/progress';
import { metricsEnv, type Env } from '../src/common/env';

// The progress registry lives in src/common/progress.ts (activities report into it); re-exported
// so the worker's metrics surface reads as one module.
export { reportTrainingProgress, resetTrainingProgress, type TrainingProgress } from '../src/common/progress';

export interface MetricsSettings {
  /** Port of the `/metrics` endpoint (PEFTGRID_METRICS_PORT). */
  port: number;
  /** Interface it binds (PEFTGRID_METRICS_HOST). @default '0.0.0.0' */
  host: string;
  /** Where Core's Prometheus exporter binds (PEFTGRID_SDK_METRICS_ADDRESS). @default `127.0.0.1:<port + 1>` */
  sdkBindAddress: string;
}

/** Core's exporter is on loopback: if it does not answer in this time, it is not coming. */
const SDK_SCRAPE_TIMEOUT_MS = 2_000;

/** Metrics settings from the environment, or null when metrics are off (the default). */
export function metricsSettings(env: Env = process.env): MetricsSettings | null {
  return metricsEnv(env);
}

/** The Runtime telemetry options that turn on Core's Prometheus exporter for these settings. */
export function sdkTelemetryOptions(settings: MetricsSettings): TelemetryOptions {
  return { metrics: { prometheus: { bindAddress: settings.sdkBindAddress } } };
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

const GAUGES: Array<{
  name: string;
  help: string;
  value: (p: TrainingProgress & { updatedMs: number }) => number | undefined;
}> = [
  { name: 'peftgrid_train_step', help: 'Last optimizer step the trainer reported for the run.', value: (p) => p.step },
  { name: 'peftgrid_train_max_steps', help: 'Planned optimizer steps of the run.', value: (p) => p.maxSteps },
  { name: 'peftgrid_train_loss', help: 'Training loss at the last reported step.', value: (p) => p.loss },
  {
    name: 'peftgrid_train_tokens_per_second',
    help: 'Training throughput at the last reported step, in tokens per second.',
    value: (p) => p.tokensPerSec,
  },
  {
    name: 'peftgrid_train_last_report_timestamp_seconds',
    help: "Unix time of the run's last progress report.",
    value: (p) => p.updatedMs / 1000,
  },
];

/** peftgrid's own metrics in the Prometheus text exposition format (version 0.0.4). */
export function renderMetrics(nowMs = Date.now()): string {
  const runs = currentTrainingProgress(nowMs);
  const lines: string[] = [
    '# HELP peftgrid_training_runs Runs this worker reported training progress for in the last 10 minutes.',
    '# TYPE peftgrid_training_runs gauge',
    `peftgrid_training_runs ${runs.length}`,
  ];
  for (const g of GAUGES) {
    lines.push(`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} gauge`);
    for (const p of runs) {
      const v = g.value(p);
      if (v !== undefined) lines.push(`${g.name}{run_key="${escapeLabel(p.runKey)}"} ${formatValue(v)}`);
    }
  }
  return lines.join('\n') + '\n';
}

async function scrapeSdk(address: string): Promise<string> {
  try {
    const res = await fetch(`http://${address}/metrics`, { signal: AbortSignal.timeout(SDK_SCRAPE_TIMEOUT_MS) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const text = await res.text();
    return [
      '# HELP peftgrid_sdk_metrics_up Whether the Temporal SDK metrics could be read.',
      '# TYPE peftgrid_sdk_metrics_up gauge',
      'peftgrid_sdk_metrics_up 1',
      text,
    ].join('\n');
  } catch {
    return [
      '# HELP peftgrid_sdk_metrics_up Whether the Temporal SDK metrics could be read.',
      '# TYPE peftgrid_sdk_metrics_up gauge',
      'peftgrid_sdk_metrics_up 0',
      '',
    ].join('\n');
  }
}

export interface MetricsServer {
  /** The bound port (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics`. With `sdkAddress`, Core's exporter is scraped on each request and its
 * text appended (the SDK's names carry the `temporal_` prefix, ours `peftgrid_`: no collisions).
 */
export async function startMetricsServer(opts: {
  port: number;
  host?: string;
  sdkAddress?: string;
}): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    void (async () => {
      const body = renderMetrics() + (opts.sdkAddress ? await scrapeSdk(opts.sdkAddress) : '');
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body);
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve());
  });
  // The endpoint must never keep a worker process alive on its own.
  server.unref();
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
