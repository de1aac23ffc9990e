/**
 * Structured logs (pino). Every log line of a run carries its ids through child loggers; anything
 * that looks like a credential is redacted wherever it appears in the first levels of an object.
 */
import pino, { type Logger } from 'pino';
import { logLevel } from './env';

const SECRET_KEYS = ['accessKeyId', 'secretAccessKey', 'sessionToken', 'password', 'token', 'apiKey', 'authorization'];

export const logger: Logger = pino({
  name: 'peftgrid',
  level: logLevel(),
  redact: {
    paths: [...SECRET_KEYS, ...SECRET_KEYS.map((k) => `*.${k}`), ...SECRET_KEYS.map((k) => `*.*.${k}`)],
    censor: '[redacted]',
  },
  base: { pid: process.pid },
});

/** A child logger for one run / grid / activity. */
export function runLogger(bindings: Record<string, unknown>): Logger {
  return logger.child(bindings);
}

/** Strips `user:password@` from URLs before they are logged or shown. */
export function safeUrl(url: string): string {
  return url.replace(/\/\/[^/@]*@/, '//[redacted]@');
}

/**
 * `runLogger(bindings)` whose records (at info and above, whatever the console's level) also go
 * to `sink`, one JSON line per call, redacted like the console's: how an activity persists its log
 * lines for `peftgrid logs` (activities/run-log.ts).
 */
export function teeRunLogger(bindings: Record<string, unknown>, sink: (line: string) => void): Logger {
  const console = logLevel();
  const streams: pino.StreamEntry[] = [{ level: 'info', stream: { write: sink } }];
  // Synchronous: several of these and the shared logger write to fd 1 at once; whole lines only.
  if (console !== 'silent') streams.push({ level: console, stream: pino.destination({ fd: 1, sync: true }) });
  const levels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];
  const level = console === 'silent' || levels.indexOf(console) > levels.indexOf('info') ? 'info' : console;
  return pino(
    {
      name: 'peftgrid',
      level,
      redact: {
        paths: [...SECRET_KEYS, ...SECRET_KEYS.map((k) => `*.${k}`), ...SECRET_KEYS.map((k) => `*.*.${k}`)],
        censor: '[redacted]',
      },
      base: { pid: process.pid },
    },
    pino.multistream(streams),
  ).child(bindings);
}
