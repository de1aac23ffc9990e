/**
 * What went wrong when connecting to Temporal, said so a user can act on it: the server cannot be
 * reached, the TLS handshake failed (wrong certificate or CA), the namespace does not exist, or
 * peftgrid's search attributes are not registered. Shared by the CLI and the workers, so both
 * name the same address and namespace and neither hangs (every check has a bounded timeout).
 */
import { isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { SEARCH_ATTRIBUTES } from './constants';
import { probeTlsOf, type TemporalSettings } from './temporal-env';

/** How long a connect (and the namespace check after it) may take before it is an error. */
export const CONNECT_TIMEOUT_MS = 10_000;

export type TemporalProblem = 'unreachable' | 'tls' | 'auth' | 'namespace' | 'search-attribute';

/** Thrown by the checks below; `problem` says which, the message says what to do. */
export class TemporalConnectError extends Error {
  constructor(
    readonly problem: TemporalProblem,
    message: string,
  ) {
    super(message);
    this.name = 'TemporalConnectError';
  }
}

export interface Target {
  address: string;
  namespace: string;
  /** true when TLS settings were given (TEMPORAL_TLS_* or an API key). */
  tls: boolean;
}

const TLS_HINTS = /tls|ssl|certificate|handshake|alert|x509|unknown ca|bad ?cert|invalid peer|decrypt/i;
const AUTH_HINTS = /unauthenticated|permission denied|unauthorized|\b16 \b|\b7 \b/i;

/** grpc status code of an SDK error, when it has one. */
function grpcCode(err: unknown): number | undefined {
  const c = (err as { code?: unknown })?.code;
  return typeof c === 'number' ? c : undefined;
}

/**
 * Classifies a connect failure. A server that rejects our certificate and one that does not speak
 * TLS at all both surface as UNAVAILABLE with handshake text, so the text decides, not the code.
 */
export function connectProblem(err: unknown, t: Target): TemporalConnectError {
  const raw = err instanceof Error ? err.message : String(err);
  const at = `Temporal at ${t.address} (namespace ${t.namespace})`;
  const code = grpcCode(err);
  if (code === 16 || code === 7 || AUTH_HINTS.test(raw))
    return new TemporalConnectError(
      'auth',
      `${at} refused the credentials: ${raw}. Check TEMPORAL_API_KEY or the client certificate (TEMPORAL_TLS_CERT/KEY).`,
    );
  if (TLS_HINTS.test(raw))
    return new TemporalConnectError(
      'tls',
      `TLS handshake with ${at} failed: ${raw}. Check TEMPORAL_TLS_CERT/TEMPORAL_TLS_KEY (a client certificate ` +
        `the server's CA signed) and TEMPORAL_TLS_CA (the CA that signed the server's certificate)` +
        (t.tls ? '' : '; no TLS settings are set: does this server require TLS?'),
    );
  return new TemporalConnectError(
    'unreachable',
    `cannot reach ${at}: ${raw}. Is the server running and TEMPORAL_ADDRESS right? ` +
      `(\`npx peftgrid dev up\` starts the embedded one, \`npx peftgrid cluster up\` the local cluster)`,
  );
}

/** Namespace lookups failed with NOT_FOUND (code 5) or its text. */
export function namespaceProblem(err: unknown, t: Target): TemporalConnectError {
  const raw = err instanceof Error ? err.message : String(err);
  if (grpcCode(err) === 5 || /not found/i.test(raw))
    return new TemporalConnectError(
      'namespace',
      `namespace "${t.namespace}" does not exist on Temporal at ${t.address}: set TEMPORAL_NAMESPACE to an ` +
        `existing one, or create it: temporal operator namespace create --namespace ${t.namespace} --address ${t.address}`,
    );
  return connectProblem(err, t);
}

/** The command that registers a search attribute (printed where one is missing). */
export function registerAttributeCommand(name: string, t: Target): string {
  return `temporal operator search-attribute create --namespace ${t.namespace} --address ${t.address} --name ${name} --type Keyword`;
}

/** Names of peftgrid's search attributes that `registered` (name → type) lacks, in order. */
export function missingSearchAttributes(registered: Record<string, unknown>): string[] {
  return Object.values(SEARCH_ATTRIBUTES).filter((n) => !(n in registered));
}

export function searchAttributeProblem(missing: string[], t: Target): TemporalConnectError {
  const lines = missing.map((n) => `  ${registerAttributeCommand(n, t)}`).join('\n');
  return new TemporalConnectError(
    'search-attribute',
    `search attribute${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not ` +
      `registered in namespace "${t.namespace}" on Temporal at ${t.address}; register ${missing.length > 1 ? 'them' : 'it'} with:\n${lines}`,
  );
}

/** Rejects with `onTimeout()` when `p` has not settled within `ms` (the SDK's connect can retry for long). */
export async function within<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(onTimeout()), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The two service stubs the checks need; both the client's Connection and NativeConnection have them. */
export interface TemporalServices {
  workflowService: { describeNamespace(req: { namespace: string }): Promise<unknown> };
  operatorService: {
    listSearchAttributes(req: { namespace: string }): Promise<{ customAttributes?: Record<string, unknown> | null }>;
  };
}

/**
 * Checks, on an open connection, that the namespace exists and has peftgrid's search attributes,
 * throwing a {@link TemporalConnectError} that says which is wrong. A server whose operator API is
 * not ours to call (Temporal Cloud with a namespace API key) skips the attribute check.
 */
export async function checkTarget(s: TemporalServices, t: Target, timeoutMs = CONNECT_TIMEOUT_MS): Promise<void> {
  const timeout = () =>
    new TemporalConnectError(
      'unreachable',
      `Temporal at ${t.address} (namespace ${t.namespace}) did not answer within ${timeoutMs / 1000} s`,
    );
  await within(
    s.workflowService.describeNamespace({ namespace: t.namespace }).catch((err: unknown) => {
      throw namespaceProblem(err, t);
    }),
    timeoutMs,
    timeout,
  );
  let registered: Record<string, unknown>;
  try {
    const res = await within(s.operatorService.listSearchAttributes({ namespace: t.namespace }), timeoutMs, timeout);
    registered = res.customAttributes ?? {};
  } catch (err) {
    if ([7, 12, 16].includes(grpcCode(err) ?? -1)) return; // PERMISSION_DENIED, UNIMPLEMENTED, UNAUTHENTICATED
    throw err instanceof TemporalConnectError ? err : connectProblem(err, t);
  }
  const missing = missingSearchAttributes(registered);
  if (missing.length) throw searchAttributeProblem(missing, t);
}

export interface ProbeTls {
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
}

/**
 * Why a connect failed, found out directly: the SDKs retry until their deadline and then say only
 * "Failed to connect before the deadline", hiding a refused TLS handshake. One TCP connect and one
 * TLS handshake (with the same certificate, key and CA) tell the three cases apart. Resolves null
 * when the probe finds nothing wrong (the original error then stands).
 */
export function probeTarget(
  address: string,
  tlsSettings: ProbeTls | undefined,
  timeoutMs = 3000,
): Promise<string | null> {
  const [host, portText] = splitHostPort(address);
  const port = Number(portText);
  return new Promise((resolve) => {
    let done = false;
    const finish = (v: string | null, sock?: { destroy(): void }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock?.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => finish(null, sock), timeoutMs);
    // The server asks for a client certificate after the handshake's first flight (TLS 1.3): a
    // rejection arrives as an alert shortly after `secureConnect`, so wait a moment for it.
    const sock = tlsConnect({
      host,
      port,
      servername: isIP(host) ? undefined : host,
      ca: tlsSettings?.ca,
      cert: tlsSettings?.cert,
      key: tlsSettings?.key,
      ALPNProtocols: ['h2'],
      // Without TLS settings the question is only whether the server speaks TLS at all.
      rejectUnauthorized: tlsSettings !== undefined,
    });
    sock.once('secureConnect', () => {
      if (!tlsSettings) return finish('the server speaks TLS, but no TLS settings were given', sock);
      sock.once('close', () =>
        finish('the server closed the connection after the TLS handshake (client certificate rejected?)'),
      );
      setTimeout(() => finish(null, sock), 1000);
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      if (['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'].includes(err.code ?? ''))
        return finish(null, sock);
      // A plaintext client that reached a TLS server is not this probe's case; a TLS client that
      // reached a plaintext server gets "wrong version number".
      finish(`TLS ${err.code ? `${err.code}: ` : ''}${err.message.trim()}`, sock);
    });
  });
}

function splitHostPort(address: string): [string, string] {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
  return m ? [m[1]!, m[2]!] : [address, '7233'];
}

/**
 * connectProblem, refined by a probe when the SDK's message is only about a deadline or an
 * unavailable server: a TLS failure is then reported as one, with what the handshake said.
 */
export async function diagnoseConnect(
  err: unknown,
  t: Target,
  tlsSettings: ProbeTls | undefined,
): Promise<TemporalConnectError> {
  const first = err instanceof TemporalConnectError ? err : connectProblem(err, t);
  if (first.problem !== 'unreachable') return first;
  const why = await probeTarget(t.address, tlsSettings).catch(() => null);
  return why ? connectProblem(new Error(why), { ...t, tls: tlsSettings !== undefined }) : first;
}

/** What {@link connectChecked} needs of a connection: the checks' services and a close. */
export interface CheckableConnection extends TemporalServices {
  close(): Promise<void>;
}

/** The connection options both SDK connections take from the settings. */
export type ConnectOptions = Pick<TemporalSettings, 'address' | 'tls' | 'apiKey' | 'metadata'>;

/**
 * Opens a connection with `open` and checks namespace + search attributes on it, all within
 * bounded time: the CLI (client Connection) and the workers (NativeConnection) both fail fast,
 * saying what is wrong, instead of retrying silently for ever. A connect that finishes after the
 * timeout, or a connection whose checks fail, is closed so it cannot keep the process alive.
 */
export async function connectChecked<C extends CheckableConnection>(
  settings: TemporalSettings,
  open: (options: ConnectOptions) => Promise<C>,
): Promise<C> {
  const t: Target = { address: settings.address, namespace: settings.namespace, tls: settings.tls !== undefined };
  const { address, tls, apiKey, metadata } = settings;
  const connecting = open({ address, tls, apiKey, metadata });
  let connection: C;
  try {
    connection = await within(connecting, CONNECT_TIMEOUT_MS, () =>
      connectProblem(new Error(`no connection within ${CONNECT_TIMEOUT_MS / 1000} s`), t),
    );
  } catch (err) {
    connecting.then((c) => c.close()).catch(() => undefined);
    throw await diagnoseConnect(err, t, probeTlsOf(settings));
  }
  try {
    await checkTarget(connection, t);
  } catch (err) {
    await connection.close();
    throw err;
  }
  return connection;
}
