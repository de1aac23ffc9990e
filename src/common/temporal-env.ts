/**
 * Temporal connection settings, shared by the CLI and the workers, resolved by
 * `@temporalio/envconfig` as the Temporal CLI and SDKs resolve them, so one `temporal.toml` serves
 * `temporal`, peftgrid and any other client. Each setting, first match wins:
 *
 * 1. the standard environment variables: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
 *    TEMPORAL_TLS (true/false), TEMPORAL_TLS_CLIENT_CERT_PATH / _DATA, TEMPORAL_TLS_CLIENT_KEY_PATH
 *    / _DATA, TEMPORAL_TLS_SERVER_CA_CERT_PATH / _DATA, TEMPORAL_TLS_SERVER_NAME, TEMPORAL_GRPC_META_*;
 * 2. peftgrid's earlier names, kept working: TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY, TEMPORAL_TLS_CA
 *    (paths to PEM files; each only where its standard name is unset);
 * 3. the profile TEMPORAL_PROFILE names (else `default`) in the config file: TEMPORAL_CONFIG_FILE,
 *    else `$XDG_CONFIG_HOME/temporalio/temporal.toml` (`~/.config/temporalio/temporal.toml`);
 * 4. the defaults: localhost:7233, namespace `default`, no TLS (TLS on when an API key is set).
 *
 * An empty variable counts as unset, as everywhere in peftgrid (src/common/env.ts).
 */
import { existsSync } from 'node:fs';
import { loadClientConfigProfile, toClientOptions } from '@temporalio/envconfig';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';
import { EnvError, temporalEnv, type Env } from './env';
import { DEFAULT_NAMESPACE, DEFAULT_TEMPORAL_ADDRESS, DEFAULT_UI_URL } from './constants';

export interface TemporalSettings {
  address: string;
  namespace: string;
  /** A TLS config, `true` (TLS with the system's roots), `false` (TEMPORAL_TLS=false) or unset (off). */
  tls?: TLSConfig | boolean;
  apiKey?: string;
  /** gRPC metadata from the profile's `grpc_meta` table or TEMPORAL_GRPC_META_*. */
  metadata?: Record<string, string>;
  uiUrl: string;
  /** The profile the settings came from (`default` unless TEMPORAL_PROFILE says otherwise). */
  profile: string;
}

/** The environment as envconfig should see it: empty values dropped, the earlier TLS names mapped. */
export function envconfigEnv(env: Env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') out[k] = v;
  const legacy = temporalEnv(env);
  const fill = (standard: string, path: string | undefined) => {
    if (path !== undefined && out[standard] === undefined && out[standard.replace(/_PATH$/, '_DATA')] === undefined)
      out[standard] = path;
  };
  fill('TEMPORAL_TLS_CLIENT_CERT_PATH', legacy.tlsCert);
  fill('TEMPORAL_TLS_CLIENT_KEY_PATH', legacy.tlsKey);
  fill('TEMPORAL_TLS_SERVER_CA_CERT_PATH', legacy.tlsCa);
  return out;
}

export function temporalSettings(env: Env = process.env): TemporalSettings {
  const vars = envconfigEnv(env);
  // envconfig ignores a missing file silently, which is right for the default path and wrong
  // for one the user named.
  const file = vars.TEMPORAL_CONFIG_FILE;
  if (file !== undefined && !existsSync(file))
    throw new EnvError('TEMPORAL_CONFIG_FILE', file, 'the path of an existing temporal.toml');
  const profileName = vars.TEMPORAL_PROFILE ?? 'default';
  let connect: ReturnType<typeof toClientOptions>;
  try {
    connect = toClientOptions(loadClientConfigProfile({ overrideEnvVars: vars }));
  } catch (err) {
    const where = file ?? 'the default temporal.toml';
    throw new EnvError(
      'TEMPORAL_PROFILE',
      profileName,
      `a profile that loads from ${where}`,
      `Temporal connection settings (profile "${profileName}", ${where}): ${(err as Error).message}`,
    );
  }
  const { address, tls, apiKey, metadata } = connect.connectionOptions;
  return {
    address: address ?? DEFAULT_TEMPORAL_ADDRESS,
    namespace: connect.namespace ?? DEFAULT_NAMESPACE,
    ...(tls !== undefined && tls !== null ? { tls } : {}),
    ...(typeof apiKey === 'string' ? { apiKey } : {}),
    ...(metadata && Object.keys(metadata).length ? { metadata: metadata as Record<string, string> } : {}),
    uiUrl: temporalEnv(env).uiUrl ?? DEFAULT_UI_URL,
    profile: profileName,
  };
}

/** Link to a workflow in the Temporal Web UI. */
export function workflowUrl(settings: TemporalSettings, workflowId: string): string {
  return `${settings.uiUrl}/namespaces/${encodeURIComponent(settings.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/** The TLS material of `settings` in node:tls terms (for the connect probe), or undefined without TLS. */
export function probeTlsOf(settings: TemporalSettings): { cert?: Buffer; key?: Buffer; ca?: Buffer } | undefined {
  const t = settings.tls;
  if (!t) return undefined;
  if (t === true) return {}; // TLS with the system's roots and no client certificate
  const buf = (u: Uint8Array | undefined) => (u ? Buffer.from(u) : undefined);
  return { cert: buf(t.clientCertPair?.crt), key: buf(t.clientCertPair?.key), ca: buf(t.serverRootCACertificate) };
}
