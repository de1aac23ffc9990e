/**
 * Temporal connection settings from the environment, shared by the CLI and the workers:
 * TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, and for TLS / Temporal Cloud TEMPORAL_TLS_CERT and
 * TEMPORAL_TLS_KEY (paths to PEM files), TEMPORAL_TLS_CA, TEMPORAL_API_KEY.
 */
import { readFileSync } from 'node:fs';
import { temporalEnv, type Env } from './env';
import { DEFAULT_NAMESPACE, DEFAULT_TEMPORAL_ADDRESS, DEFAULT_UI_URL } from './constants';

export interface TemporalSettings {
  address: string;
  namespace: string;
  tls?: { clientCertPair?: { crt: Buffer; key: Buffer }; serverRootCACertificate?: Buffer };
  apiKey?: string;
  uiUrl: string;
}

export function temporalSettings(env: Env = process.env): TemporalSettings {
  const t = temporalEnv(env);
  const { tlsCert: cert, tlsKey: key, tlsCa: ca } = t;
  const tls =
    cert || key || ca || t.apiKey
      ? {
          ...(cert && key ? { clientCertPair: { crt: readFileSync(cert), key: readFileSync(key) } } : {}),
          ...(ca ? { serverRootCACertificate: readFileSync(ca) } : {}),
        }
      : undefined;
  return {
    address: t.address ?? DEFAULT_TEMPORAL_ADDRESS,
    namespace: t.namespace ?? DEFAULT_NAMESPACE,
    tls,
    apiKey: t.apiKey,
    uiUrl: t.uiUrl ?? DEFAULT_UI_URL,
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
  return { cert: t.clientCertPair?.crt, key: t.clientCertPair?.key, ca: t.serverRootCACertificate };
}
