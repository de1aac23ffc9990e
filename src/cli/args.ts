import { parseArgs } from 'node:util';

/** Bad command-line usage: exit code 2 with the help text. */
export class UsageError extends Error {}

/** Parses options and turns parse errors into UsageErrors. */
export function parse<T extends NonNullable<Parameters<typeof parseArgs>[0]>['options']>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
