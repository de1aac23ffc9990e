/**
 * Temporal connection settings from the environment, shared by the CLI and the workers:
 * TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, and for TLS / Temporal Cloud TEMPORAL_TLS_CERT and
 * TEMPORAL_TLS_KEY (paths to PEM files), TEMPORAL_TLS_CA, TEMPORAL_API_KEY.
 */
import { readFileSync } from 'node:fs';
import { DEFAULT_NAMESPACE, DEFAULT_TEMPORAL_ADDRESS, DEFAULT_UI_URL } from './constants';

export interface TemporalSettings {
  address: string;
  namespace: string;
  tls?: { clientCertPair?: { crt: Buffer; key: Buffer }; serverRootCACertificate?: Buffer };
  apiKey?: string;
  uiUrl: string;
}

export function temporalSettings(env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  const cert = env.TEMPORAL_TLS_CERT;
  const key = env.TEMPORAL_TLS_KEY;
  const ca = env.TEMPORAL_TLS_CA;
  const tls = cert || key || ca || env.TEMPORAL_API_KEY
    ? {
        ...(cert && key ? { clientCertPair: { crt: readFileSync(cert), key: readFileSync(key) } } : {}),
        ...(ca ? { serverRootCACertificate: readFileSync(ca) } : {}),
      }
    : undefined;
  return {
    address: env.TEMPORAL_ADDRESS ?? DEFAULT_TEMPORAL_ADDRESS,
    namespace: env.TEMPORAL_NAMESPACE ?? DEFAULT_NAMESPACE,
    tls,
    apiKey: env.TEMPORAL_API_KEY,
    uiUrl: env.PEFTGRID_UI_URL ?? DEFAULT_UI_URL,
  };
}

/** Link to a workflow in the Temporal Web UI. */
export function workflowUrl(settings: TemporalSettings, workflowId: string): string {
  return `${settings.uiUrl}/namespaces/${encodeURIComponent(settings.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}
