/**
 * `validate`'s hub check: for every model named by hub id (and every custom `hub` dataset, through
 * `/api/datasets/`), ask the hub whether the id and its
 * revision exist and are readable with this HF_TOKEN (`GET {endpoint}/api/models/{id}/revision/{rev}`,
 * the call huggingface_hub's `model_info` makes), so a gated, missing or mistyped model fails before
 * any work. A hub that cannot be reached within the timeout is a note, not an error: workers may be
 * online where validate is not, or read the model from a mirror.
 */
import { looksLikeHubId } from '../common/hub-id';
import type { ConfigIssue } from './validate';
import type { GridConfig } from './schema';

export interface HubCheckOptions {
  /** @default HF_ENDPOINT, else https://huggingface.co */
  endpoint?: string;
  /** @default HF_TOKEN */
  token?: string;
  /** Per request. @default 3000 */
  timeoutMs?: number;
}

export interface HubCheckResult {
  issues: ConfigIssue[];
  /** What could not be checked, and why. */
  notes: string[];
}

type Answer = { status: number; code: string | null } | { unreachable: string };

async function ask(url: string, token: string | undefined, timeoutMs: number): Promise<Answer> {
  try {
    const res = await fetch(url, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body?.cancel();
    return { status: res.status, code: res.headers.get('x-error-code') };
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return { unreachable: cause ?? (err as Error).name };
  }
}

export async function checkHubModels(grid: GridConfig, opts: HubCheckOptions = {}): Promise<HubCheckResult> {
  const endpoint = (opts.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
  const token = opts.token ?? (process.env.HF_TOKEN || undefined);
  const issues: ConfigIssue[] = [];
  const notes: string[] = [];
  // Hub models, then custom datasets from the hub (`GET /api/datasets/…`, dataset_info's call).
  const targets = [
    ...grid.models.flatMap((m, i) =>
      looksLikeHubId(m.path)
        ? [
            {
              kind: 'model',
              api: 'models',
              id: m.path,
              revision: m.revision,
              at: `models[${i}].path`,
              revAt: `models[${i}].revision`,
            },
          ]
        : [],
    ),
    ...(grid.data.datasets ?? []).flatMap((d, i) =>
      typeof d !== 'string' && d.hub
        ? [
            {
              kind: 'dataset',
              api: 'datasets',
              id: d.hub,
              revision: d.revision,
              at: `data.datasets[${i}].hub`,
              revAt: `data.datasets[${i}].revision`,
            },
          ]
        : [],
    ),
  ];
  for (const t of targets) {
    const rev = t.revision ?? 'main';
    const url = `${endpoint}/api/${t.api}/${t.id}/revision/${encodeURIComponent(rev)}`;
    const a = await ask(url, token, opts.timeoutMs ?? 3000);
    if ('unreachable' in a) {
      notes.push(`hub not reachable at ${endpoint} (${a.unreachable}): hub ids not checked for existence`);
      break; // one note, not one per model: the others would time out too
    }
    const at = { path: t.at, value: JSON.stringify(t.id) };
    if (a.status === 401 || a.status === 403 || a.code === 'GatedRepo')
      issues.push({
        ...at,
        expected: `a ${t.kind} this HF_TOKEN may read (the hub answered ${a.status}: gated or private; HF_TOKEN is ${token ? 'set but not granted access' : 'not set'})`,
      });
    else if (a.code === 'RevisionNotFound')
      issues.push({
        path: t.revAt,
        value: JSON.stringify(rev),
        expected: `a branch, tag or commit sha of ${t.id} on ${endpoint}`,
      });
    else if (a.status === 404) issues.push({ ...at, expected: `a ${t.kind} that exists on ${endpoint}` });
    else if (a.status >= 400) notes.push(`${t.id}: the hub answered ${a.status}; not checked`);
  }
  return { issues, notes };
}
