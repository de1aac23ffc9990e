/**
 * The embedded dev stack: a Temporal dev server (SQLite under .data/temporal/, Web UI on :8233)
 * and one worker process polling both task queues. Each process is started detached with a pid
 * file, so `down` stops exactly what `up` started and nothing else.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES, TASK_QUEUES } from '../src/common/constants';
import { dataDirEnv, devStackEnv } from '../src/common/env';

export const REPO_ROOT = resolve(__dirname, '..');

export interface DevStackOptions {
  /** State directory. @default `<repo>/.data` (PEFTGRID_DATA_DIR) */
  dataDir?: string;
  /** gRPC port of the dev server. @default 7233 (PEFTGRID_TEMPORAL_PORT) */
  port?: number;
  /** Web UI port. @default 8233 (PEFTGRID_UI_PORT) */
  uiPort?: number;
  /** Print progress lines. */
  say?: (line: string) => void;
}

interface Resolved {
  dataDir: string;
  devDir: string;
  port: number;
  uiPort: number;
  address: string;
  say: (line: string) => void;
}

function resolveOptions(o: DevStackOptions = {}): Resolved {
  const dataDir = resolve(REPO_ROOT, o.dataDir ?? dataDirEnv());
  const devEnv = devStackEnv();
  const port = o.port ?? devEnv.temporalPort ?? 7233;
  const uiPort = o.uiPort ?? devEnv.uiPort ?? 8233;
  return {
    dataDir,
    devDir: join(dataDir, 'dev'),
    port,
    uiPort,
    address: `127.0.0.1:${port}`,
    say: o.say ?? (() => undefined),
  };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function readPid(file: string): number | null {
  if (!existsSync(file)) return null;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 && pidAlive(pid) ? pid : null;
}

function startDetached(cmd: string, args: string[], logFile: string, pidFile: string, env: NodeJS.ProcessEnv): number {
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { cwd: REPO_ROOT, detached: true, stdio: ['ignore', fd, fd], env });
  closeSync(fd);
  child.unref();
  if (!child.pid) throw new Error(`could not start ${cmd}`);
  writeFileSync(pidFile, String(child.pid));
  return child.pid;
}

async function serverReachable(address: string): Promise<boolean> {
  try {
    const conn = await Connection.connect({ address, connectTimeout: 1000 });
    try {
      await conn.workflowService.getSystemInfo({});
      return true;
    } finally {
      await conn.close();
    }
  } catch {
    return false;
  }
}

async function pollers(address: string): Promise<Record<string, number>> {
  const conn = await Connection.connect({ address, connectTimeout: 2000 });
  try {
    const out: Record<string, number> = {};
    for (const [kind, name] of Object.entries(TASK_QUEUES)) {
      const types = kind === 'cpu' ? [1, 2] : [2]; // 1 = workflow tasks, 2 = activity tasks
      let count = 0;
      for (const taskQueueType of types) {
        const res = await conn.workflowService.describeTaskQueue({
          namespace: 'default',
          taskQueue: { name },
          taskQueueType,
        });
        count = Math.max(count, res.pollers?.length ?? 0);
      }
      out[kind] = count;
    }
    return out;
  } finally {
    await conn.close();
  }
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, logFile: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n') : '';
  throw new Error(`${what} did not come up within ${timeoutMs / 1000}s; last lines of ${logFile}:\n${tail}`);
}

export interface DevStatus {
  address: string;
  uiUrl: string;
  server: { reachable: boolean; pid: number | null };
  worker: { pid: number | null; pollers: Record<string, number> };
}

export async function devStatus(o?: DevStackOptions): Promise<DevStatus> {
  const r = resolveOptions(o);
  const reachable = await serverReachable(r.address);
  return {
    address: r.address,
    uiUrl: `http://localhost:${r.uiPort}`,
    server: { reachable, pid: readPid(join(r.devDir, 'temporal.pid')) },
    worker: { pid: readPid(join(r.devDir, 'worker.pid')), pollers: reachable ? await pollers(r.address) : {} },
  };
}

export async function devUp(o?: DevStackOptions): Promise<DevStatus> {
  const r = resolveOptions(o);
  mkdirSync(r.devDir, { recursive: true });
  mkdirSync(join(r.dataDir, 'temporal'), { recursive: true });
  const temporalBin = devStackEnv().temporalBin ?? join(REPO_ROOT, '.venv', 'bin', 'temporal');
  const serverLog = join(r.devDir, 'temporal.log');
  if (await serverReachable(r.address)) {
    r.say(`Temporal server already reachable at ${r.address}`);
  } else {
    if (!existsSync(temporalBin))
      throw new Error(`Temporal CLI not found at ${temporalBin}: run \`npm run setup\` first`);
    const args = [
      'server',
      'start-dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(r.port),
      '--ui-port',
      String(r.uiPort),
      '--db-filename',
      join(r.dataDir, 'temporal', 'dev.sqlite'),
      '--log-level',
      'warn',
      ...Object.values(SEARCH_ATTRIBUTES).flatMap((name) => ['--search-attribute', `${name}=Keyword`]),
    ];
    const pid = startDetached(temporalBin, args, serverLog, join(r.devDir, 'temporal.pid'), process.env);
    r.say(`starting Temporal dev server (pid ${pid}), log ${serverLog}`);
    await waitFor('Temporal dev server', () => serverReachable(r.address), 60_000, serverLog);
  }
  const workerLog = join(r.devDir, 'worker.log');
  if (readPid(join(r.devDir, 'worker.pid'))) {
    r.say('worker already running');
  } else {
    const pid = startDetached(
      process.execPath,
      ['--import', 'tsx', join(REPO_ROOT, 'workers', 'main.ts')],
      workerLog,
      join(r.devDir, 'worker.pid'),
      { ...process.env, TEMPORAL_ADDRESS: r.address, PEFTGRID_DATA_DIR: r.dataDir },
    );
    r.say(`starting worker (pid ${pid}), log ${workerLog}`);
    await waitFor(
      'worker',
      async () => {
        if (!readPid(join(r.devDir, 'worker.pid')))
          throw new Error(
            `worker exited; see ${workerLog}:\n${readFileSync(workerLog, 'utf8').split('\n').slice(-15).join('\n')}`,
          );
        const p = await pollers(r.address);
        return (p.cpu ?? 0) > 0 && (p.gpu ?? 0) > 0;
      },
      120_000,
      workerLog,
    );
  }
  return devStatus(o);
}

async function stopPid(pidFile: string, name: string, say: (l: string) => void, graceMs: number): Promise<void> {
  const pid = readPid(pidFile);
  if (!pid) {
    rmSync(pidFile, { force: true });
    return;
  }
  say(`stopping ${name} (pid ${pid})`);
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        /* gone */
      }
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (pidAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  if (pidAlive(pid)) signal('SIGKILL');
  rmSync(pidFile, { force: true });
}

export async function devDown(o?: DevStackOptions): Promise<void> {
  const r = resolveOptions(o);
  // Worker first: its graceful shutdown lets a running trainer checkpoint while the server is up.
  await stopPid(join(r.devDir, 'worker.pid'), 'worker', r.say, 90_000);
  await stopPid(join(r.devDir, 'temporal.pid'), 'Temporal dev server', r.say, 15_000);
}
