/**
 * A TCP proxy that slows every byte through it to `bytesPerSec` per direction (all connections
 * share the budget): an object store behind a slow link, for tests of long transfers. Plain
 * `net`, no dependency: reading pauses until the budget has caught up with what was forwarded.
 */
import { createServer, connect, type Socket } from 'node:net';

export interface ThrottledProxy {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Bytes forwarded so far, client → server and server → client. */
  forwarded: { up: number; down: number };
  close(): Promise<void>;
}

/** A shared virtual clock per direction: each chunk is due when the ones before it would have drained. */
function throttle(bytesPerSec: number) {
  let freeAt = Date.now();
  return (bytes: number): number => {
    const now = Date.now();
    freeAt = Math.max(freeAt, now) + (bytes / bytesPerSec) * 1000;
    return freeAt - now;
  };
}

function pipeSlow(from: Socket, to: Socket, take: (n: number) => number, count: (n: number) => void): void {
  from.on('data', (chunk: Buffer) => {
    to.write(chunk);
    count(chunk.length);
    const wait = take(chunk.length);
    if (wait > 5) {
      from.pause();
      setTimeout(() => from.resume(), wait);
    }
  });
  from.on('end', () => to.end());
}

export async function startThrottledProxy(targetPort: number, bytesPerSec: number): Promise<ThrottledProxy> {
  const up = throttle(bytesPerSec);
  const down = throttle(bytesPerSec);
  const forwarded = { up: 0, down: 0 };
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    pipeSlow(client, upstream, up, (n) => (forwarded.up += n));
    pipeSlow(upstream, client, down, (n) => (forwarded.down += n));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    forwarded,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
