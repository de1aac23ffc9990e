/**
 * A per-worker cache lock: a file created with O_EXCL holding the owner's pid, host and a token.
 * Two activity slots (same pid) or two worker processes sharing a data dir take turns; a lock whose
 * owner died (same host, pid gone: a SIGKILLed worker) is broken so its partial files are recovered
 * instead of waited on forever. Breaking goes through a second O_EXCL file, so two waiters cannot
 * both judge the lock stale and one delete the lock the other has just taken.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';

export interface CacheLockOptions {
  /** Called every poll while another holder has the lock (activities heartbeat here). */
  onWait?: () => void;
  /** @default 250 */
  pollMs?: number;
  /** A lock or break file that cannot be read as ours after this long was left half-written. @default 30000 */
  staleUnreadableMs?: number;
}

interface Owner {
  pid: number;
  host: string;
  token: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, another user's
  }
}

async function readOwner(path: string): Promise<{ text: string; owner: Owner | null } | null> {
  try {
    const text = await readFile(path, 'utf8');
    try {
      return { text, owner: JSON.parse(text) as Owner };
    } catch {
      return { text, owner: null };
    }
  } catch {
    return null; // released meanwhile
  }
}

async function olderThan(path: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > ms;
  } catch {
    return false;
  }
}

async function tryCreate(path: string, text: string): Promise<boolean> {
  try {
    await writeFile(path, text, { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** Runs `fn` holding the lock at `path` (created with its parent directory). */
export async function withCacheLock<T>(path: string, fn: () => Promise<T>, opts: CacheLockOptions = {}): Promise<T> {
  const pollMs = opts.pollMs ?? 250;
  const unreadableMs = opts.staleUnreadableMs ?? 30_000;
  await mkdir(dirname(path), { recursive: true });
  const me: Owner = { pid: process.pid, host: hostname(), token: randomUUID() };
  const text = JSON.stringify(me);
  for (;;) {
    if (await tryCreate(path, text)) break;
    const held = await readOwner(path);
    if (!held) continue;
    const stale = held.owner
      ? held.owner.host === me.host && !alive(held.owner.pid)
      : await olderThan(path, unreadableMs);
    if (stale) {
      await breakStale(path, held.text, unreadableMs);
      continue;
    }
    opts.onWait?.();
    await new Promise((r) => setTimeout(r, pollMs));
  }
  try {
    return await fn();
  } finally {
    const now = await readOwner(path);
    if (now?.owner?.token === me.token) await unlink(path).catch(() => undefined);
  }
}

async function breakStale(path: string, staleText: string, unreadableMs: number): Promise<void> {
  const breaker = `${path}.break`;
  if (!(await tryCreate(breaker, String(process.pid)))) {
    // Someone else is breaking it; a breaker that died mid-break leaves an old file behind.
    if (await olderThan(breaker, unreadableMs)) await unlink(breaker).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    return;
  }
  try {
    const now = await readOwner(path);
    if (now?.text === staleText) await unlink(path).catch(() => undefined);
  } finally {
    await unlink(breaker).catch(() => undefined);
  }
}
