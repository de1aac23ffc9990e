/**
 * Every environment variable peftgrid itself reads, parsed in one place with one schema each.
 *
 * Accessors are functions, not values frozen at import: tests (and bench scripts) set variables
 * per case, and a worker reads its settings when it starts. Each takes the environment as an
 * argument (default `process.env`) so a test can pass a plain object.
 *
 * An unset or empty variable means "use the default". A set variable that does not parse is a
 * configuration error that names the variable, the value and what was expected (`EnvError`):
 * `PEFTGRID_GPU_SLOTS=abc` fails the worker at start instead of becoming NaN slots.
 *
 * Workflow code must not import this module (no process.env in the workflow sandbox).
 */
import { z } from 'zod';

export type Env = Record<string, string | undefined>;

/** Thrown when a set environment variable does not parse; the message names variable, value, expectation. */
export class EnvError extends TypeError {
  constructor(
    readonly variable: string,
    readonly value: string,
    readonly expected: string,
    message = `${variable}: got ${JSON.stringify(value)}, expected ${expected}`,
  ) {
    super(message);
    this.name = 'EnvError';
  }
}

// Variables are read as `env.NAME` literally (not env[name]): test/unit/infra-shared.ts collects
// the names the code reads that way, and checks every manifest sets only those.

/** The value, or undefined when unset or empty (both mean "default"). */
function raw(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

/** Parses variable `name`'s value `value` with `schema`; unset or empty → undefined. */
function parse<T>(name: string, value: string | undefined, schema: z.ZodType<T>, expected: string): T | undefined {
  const v = raw(value);
  if (v === undefined) return undefined;
  const r = schema.safeParse(v);
  if (!r.success) throw new EnvError(name, v, expected);
  return r.data;
}

// Strictly digits: Number('1e5'), Number('0x100') and Number(' ') would all pass a looser check.
const digits = z
  .string()
  .trim()
  .regex(/^\d+$/)
  .transform(Number)
  .pipe(z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER));
const intAtLeast = (min: number) => digits.pipe(z.number().min(min));

// ---------- workers ----------

/** PEFTGRID_QUEUES: the default of `--queues` (comma-separated cpu / gpu). */
export function queuesEnv(env: Env = process.env): string {
  return raw(env.PEFTGRID_QUEUES) ?? 'cpu,gpu';
}

/** PEFTGRID_GPU_SLOTS: training/export activities one gpu worker runs at once (one per GPU). @default 1 */
export function gpuSlots(env: Env = process.env): number {
  return (
    parse(
      'PEFTGRID_GPU_SLOTS',
      env.PEFTGRID_GPU_SLOTS,
      intAtLeast(1),
      'a positive integer (activities per GPU worker)',
    ) ?? 1
  );
}

/** PEFTGRID_CPU_SLOTS: data/eval/report activities one cpu worker runs at once. @default 4 */
export function cpuSlots(env: Env = process.env): number {
  return (
    parse(
      'PEFTGRID_CPU_SLOTS',
      env.PEFTGRID_CPU_SLOTS,
      intAtLeast(1),
      'a positive integer (activities per CPU worker)',
    ) ?? 4
  );
}

export const SDK_LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'] as const;
export type SdkLogLevel = (typeof SDK_LOG_LEVELS)[number];

/** PEFTGRID_SDK_LOG_LEVEL: the Temporal SDK's own log level (noisy at INFO). @default WARN */
export function sdkLogLevel(env: Env = process.env): SdkLogLevel {
  return (
    parse('PEFTGRID_SDK_LOG_LEVEL', env.PEFTGRID_SDK_LOG_LEVEL, z.enum(SDK_LOG_LEVELS), SDK_LOG_LEVELS.join(' | ')) ??
    'WARN'
  );
}

/**
 * PEFTGRID_WORKER_SHUTDOWN_MS: the worker's graceful-shutdown time, strictly an integer number of
 * ms of at least `min` (src/common/constants.ts owns the default and the minimum and why).
 */
export function workerShutdownMsEnv(min: number, env: Env = process.env): number | undefined {
  return parse(
    'PEFTGRID_WORKER_SHUTDOWN_MS',
    env.PEFTGRID_WORKER_SHUTDOWN_MS,
    intAtLeast(min),
    `an integer number of milliseconds >= ${min}`,
  );
}

/** PEFTGRID_METRICS_PORT / _HOST, PEFTGRID_SDK_METRICS_ADDRESS; null when metrics are off (the default). */
export function metricsEnv(env: Env = process.env): { port: number; host: string; sdkBindAddress: string } | null {
  // 65534: the SDK's exporter takes port + 1 by default.
  const port = parse(
    'PEFTGRID_METRICS_PORT',
    env.PEFTGRID_METRICS_PORT,
    digits.pipe(z.number().min(1).max(65534)),
    'a port number 1-65534',
  );
  if (port === undefined) return null;
  return {
    port,
    host: raw(env.PEFTGRID_METRICS_HOST) ?? '0.0.0.0',
    sdkBindAddress: raw(env.PEFTGRID_SDK_METRICS_ADDRESS) ?? `127.0.0.1:${port + 1}`,
  };
}

/**
 * PEFTGRID_DEPLOYMENT / PEFTGRID_BUILD_ID: Worker Deployment Versioning (workers/versioning.ts).
 * Null, an unversioned worker (the default), unless the deployment name is set; the build id is
 * then optional (the default is derived from the workflow code). The server's own rules are
 * checked here, so a bad name fails start-up instead of every poll: a deployment name without
 * `.` or `:`, neither value starting with `__`, each at most {@link DEPLOYMENT_FIELD_MAX} chars.
 */
export function deploymentEnv(env: Env = process.env): { deploymentName: string; buildId?: string } | null {
  const field = z
    .string()
    .trim()
    .min(1)
    .max(DEPLOYMENT_FIELD_MAX)
    .refine((v) => !v.startsWith('__'));
  const deploymentName = parse(
    'PEFTGRID_DEPLOYMENT',
    env.PEFTGRID_DEPLOYMENT,
    field.refine((v) => !/[.:]/.test(v)),
    `a worker deployment name without '.' or ':', not starting with '__', at most ${DEPLOYMENT_FIELD_MAX} characters`,
  );
  const buildId = parse(
    'PEFTGRID_BUILD_ID',
    env.PEFTGRID_BUILD_ID,
    field,
    `a build id not starting with '__', at most ${DEPLOYMENT_FIELD_MAX} characters`,
  );
  if (deploymentName === undefined) {
    if (buildId !== undefined)
      throw new EnvError(
        'PEFTGRID_BUILD_ID',
        buildId,
        'PEFTGRID_DEPLOYMENT to be set too (a build id versions a worker only within a deployment)',
      );
    return null;
  }
  return buildId === undefined ? { deploymentName } : { deploymentName, buildId };
}

/** Longest deployment name or build id accepted: the server's id limit (1000) halved, with room for its prefix. */
export const DEPLOYMENT_FIELD_MAX = 255;

// ---------- activities ----------

/** PEFTGRID_DATA_DIR: local scratch and dev-stack state (relative to the repo root). @default .data */
export function dataDirEnv(env: Env = process.env): string {
  return raw(env.PEFTGRID_DATA_DIR) ?? '.data';
}

/** PEFTGRID_PYTHON: the trainer's interpreter; undefined → the repo's .venv. */
export function pythonEnv(env: Env = process.env): string | undefined {
  return raw(env.PEFTGRID_PYTHON);
}

/** PEFTGRID_CODE_VERSION: the code version recorded in provenance; undefined → git describe. */
export function codeVersionEnv(env: Env = process.env): string | undefined {
  return raw(env.PEFTGRID_CODE_VERSION);
}

/** PEFTGRID_CHECKPOINT_RETRY_MS: how long a checkpoint upload keeps retrying; undefined → the default. */
export function checkpointRetryMsEnv(env: Env = process.env): number | undefined {
  return parse(
    'PEFTGRID_CHECKPOINT_RETRY_MS',
    env.PEFTGRID_CHECKPOINT_RETRY_MS,
    digits,
    'a non-negative integer number of milliseconds',
  );
}

export type EngineRunIn = 'process' | 'main';
export const RUN_IN_ENV = 'PEFTGRID_ENGINE_RUN_IN';

/** PEFTGRID_ENGINE_RUN_IN: where ONNX Runtime runs (`process`, the default, or `main`). */
export function engineRunIn(env: Env = process.env): EngineRunIn {
  const v = raw(env.PEFTGRID_ENGINE_RUN_IN);
  if (v === undefined || v === 'process' || v === 'main') return v ?? 'process';
  // Message format predates this module and is pinned by test/unit/engine-host.test.ts.
  throw new EnvError(
    RUN_IN_ENV,
    v,
    "'process' or 'main'",
    `${RUN_IN_ENV} = ${JSON.stringify(v)}: expected 'process' or 'main'`,
  );
}

// ---------- object store ----------

/** AWS_* the S3 backend reads itself (the SDK reads credentials on its own), and PEFTGRID_S3_MAX_ATTEMPTS. */
export function s3Env(env: Env = process.env): { endpoint?: string; region: string; maxAttempts: number } {
  const endpoint = raw(env.AWS_ENDPOINT_URL_S3) ?? raw(env.AWS_ENDPOINT_URL);
  return {
    ...(endpoint ? { endpoint } : {}),
    region: raw(env.AWS_REGION) ?? raw(env.AWS_DEFAULT_REGION) ?? 'us-east-1',
    // Up to 5 tries with the SDK's backoff: transient 5xx/throttling and dropped connections.
    maxAttempts:
      parse(
        'PEFTGRID_S3_MAX_ATTEMPTS',
        env.PEFTGRID_S3_MAX_ATTEMPTS,
        intAtLeast(1),
        'a positive integer (tries per S3 request)',
      ) ?? 5,
  };
}

// ---------- Temporal connection, logs ----------

/** TEMPORAL_* and PEFTGRID_UI_URL as set (undefined where unset); src/common/temporal-env.ts applies defaults. */
export function temporalEnv(env: Env = process.env): {
  address?: string;
  namespace?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  apiKey?: string;
  uiUrl?: string;
} {
  return {
    address: raw(env.TEMPORAL_ADDRESS),
    namespace: raw(env.TEMPORAL_NAMESPACE),
    tlsCert: raw(env.TEMPORAL_TLS_CERT),
    tlsKey: raw(env.TEMPORAL_TLS_KEY),
    tlsCa: raw(env.TEMPORAL_TLS_CA),
    apiKey: raw(env.TEMPORAL_API_KEY),
    uiUrl: raw(env.PEFTGRID_UI_URL),
  };
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** PEFTGRID_LOG_LEVEL (else LOG_LEVEL): pino's level. @default info */
export function logLevel(env: Env = process.env): (typeof LOG_LEVELS)[number] {
  const level = z.enum(LOG_LEVELS);
  const expected = LOG_LEVELS.join(' | ');
  return (
    parse('PEFTGRID_LOG_LEVEL', env.PEFTGRID_LOG_LEVEL, level, expected) ??
    parse('LOG_LEVEL', env.LOG_LEVEL, level, expected) ??
    'info'
  );
}

// ---------- dev stack ----------

/** PEFTGRID_TEMPORAL_PORT / PEFTGRID_UI_PORT / PEFTGRID_TEMPORAL_BIN for the embedded dev server. */
export function devStackEnv(env: Env = process.env): { temporalPort?: number; uiPort?: number; temporalBin?: string } {
  const port = digits.pipe(z.number().min(1).max(65535));
  return {
    temporalPort: parse('PEFTGRID_TEMPORAL_PORT', env.PEFTGRID_TEMPORAL_PORT, port, 'a port number 1-65535'),
    uiPort: parse('PEFTGRID_UI_PORT', env.PEFTGRID_UI_PORT, port, 'a port number 1-65535'),
    temporalBin: raw(env.PEFTGRID_TEMPORAL_BIN),
  };
}

// ---------- training resources ----------

/**
 * PEFTGRID_DEVICE_MEMORY_BYTES: the device memory a `full` fine-tune is checked against (validate;
 * the trainer reads the same variable in trainer/resources.py) instead of the real device's or,
 * at validate, an 80 GB GPU: a MIG slice or a shared GPU. @default unset
 */
export function deviceMemoryBytesEnv(env: Env = process.env): number | undefined {
  return parse(
    'PEFTGRID_DEVICE_MEMORY_BYTES',
    env.PEFTGRID_DEVICE_MEMORY_BYTES,
    intAtLeast(1),
    'a positive integer number of bytes',
  );
}
