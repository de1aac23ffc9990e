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
