/**
 * The soak's worker fleet, three OS processes connected as production connects them (TEMPORAL_*
 * variables, mTLS on the cluster): two gpu-queue workers and one cpu-queue worker (workflows,
 * data, evaluation, report), each with its own data directory; and the chaos loop that SIGKILLs a
 * random one every `minMs`–`maxMs` (seeded: the same seed kills the same workers at the same
 * offsets) and starts it again at once on the same data directory, as a supervisor would restart
 * a crashed process on the same machine.
 */
import { join } from 'node:path';
import { createRng } from '../src/common/rng';
import { clusterWorker, type ClusterHandle } from '../test/helpers/cluster';
import type { WorkerProcess } from '../test/helpers/worker-process';

/** One worker slot of the fleet. */
export interface FleetMember {
  name: string;
  queues: 'cpu' | 'gpu';
  proc: WorkerProcess;
  starts: number;
  /** Exits the fleet did not cause (a worker that failed at start-up, say): restarted after 1 s. */
  crashes: number;
}

export interface Fleet {
  members: FleetMember[];
  /** SIGKILLs `m`, waits for its exit, starts it again; returns the killed pid. */
  killAndRestart(m: FleetMember): Promise<number>;
  /** SIGTERMs every worker and waits for them (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<void>;
}

/** The fleet's shape: names and queues (issue #16: 2 gpu-queue, 1 cpu-queue). */
export const FLEET: readonly { name: string; queues: 'cpu' | 'gpu' }[] = [
  { name: 'gpu-a', queues: 'gpu' },
  { name: 'gpu-b', queues: 'gpu' },
  { name: 'cpu', queues: 'cpu' },
];

/**
 * Starts the fleet on `target` (its TEMPORAL_* variables) in namespace `namespace`, logs under
 * `dir`. Like a process supervisor, it restarts a worker that exits on its own (`log` says so).
 */
export function startFleet(target: ClusterHandle, namespace: string, dir: string, log: (l: string) => void): Fleet {
  let stopping = false;
  const killedByUs = new Set<WorkerProcess>();
  const launch = (m: FleetMember) => {
    const proc = clusterWorker(target, join(dir, m.name), m.name, {
      queues: m.queues,
      logLevel: 'info',
      env: { TEMPORAL_NAMESPACE: namespace },
    });
    m.proc = proc;
    m.starts++;
    void proc.exited.then((code) => {
      if (stopping || m.proc !== proc || killedByUs.has(proc)) return;
      m.crashes++;
      log(`[fleet] ${m.name} exited by itself (code ${code}); restarting in 1 s`);
      setTimeout(() => {
        if (!stopping && m.proc === proc) launch(m);
      }, 1000);
    });
  };
  const members = FLEET.map((f) => {
    const m = { ...f, starts: 0, crashes: 0 } as FleetMember;
    launch(m);
    return m;
  });
  return {
    members,
    async killAndRestart(m) {
      const pid = m.proc.child.pid ?? -1;
      killedByUs.add(m.proc);
      m.proc.child.kill('SIGKILL');
      await m.proc.exited;
      launch(m);
      return pid;
    },
    async stop(graceMs = 30_000) {
      stopping = true;
      await Promise.all(
        members.map(async (m) => {
          if (m.proc.child.exitCode !== null || m.proc.child.signalCode !== null) return;
          m.proc.child.kill('SIGTERM');
          const t = setTimeout(() => m.proc.child.kill('SIGKILL'), graceMs);
          await m.proc.exited;
          clearTimeout(t);
        }),
      );
    },
  };
}

/** One kill of the chaos loop. */
export interface Kill {
  /** ms since the chaos loop started. */
  atMs: number;
  worker: string;
  pid: number;
}

export interface ChaosOptions {
  seed: number;
  /** Pause between kills: uniform in [minMs, maxMs). */
  minMs: number;
  maxMs: number;
}

export interface Chaos {
  kills: Kill[];
  /** Stops the loop (no kill after this resolves). */
  stop(): Promise<void>;
}

/** Starts the chaos loop on `fleet`; `log` gets one line per kill. */
export function startChaos(fleet: Fleet, o: ChaosOptions, log: (line: string) => void): Chaos {
  if (!(o.minMs > 0 && o.maxMs > o.minMs))
    throw new TypeError(`chaos: got minMs ${o.minMs}, maxMs ${o.maxMs}, expected 0 < minMs < maxMs`);
  const rng = createRng(o.seed);
  const kills: Kill[] = [];
  const t0 = Date.now();
  let stopped = false;
  let wake: () => void = () => undefined;
  const loop = (async () => {
    while (!stopped) {
      const pauseMs = o.minMs + Math.floor(rng.next() * (o.maxMs - o.minMs));
      const victim = rng.pick(fleet.members);
      await new Promise<void>((r) => {
        const t = setTimeout(r, pauseMs);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
      if (stopped) break;
      const pid = await fleet.killAndRestart(victim);
      const k = { atMs: Date.now() - t0, worker: victim.name, pid };
      kills.push(k);
      log(
        `[chaos] kill #${kills.length} at +${(k.atMs / 1000).toFixed(0)} s: SIGKILL ${victim.name} (pid ${pid}), restarted`,
      );
    }
  })();
  return {
    kills,
    async stop() {
      stopped = true;
      wake();
      await loop;
    },
  };
}
