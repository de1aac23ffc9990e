import { createHash } from 'node:crypto';

/** JSON with sorted keys, so equal configs hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Short content address of a JSON-able value (16 hex chars = 64 bits: collisions are not a concern). */
export function contentHash(value: unknown): string {
  return sha256Hex(canonicalJson(value)).slice(0, 16);
}
