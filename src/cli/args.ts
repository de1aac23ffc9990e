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

/**
 * Takes `--profile NAME` (or `--profile=NAME`) out of `argv`, wherever it is, into
 * `env.TEMPORAL_PROFILE`: the temporal.toml profile every command connects with, as the Temporal
 * CLI's flag does (src/common/temporal-env.ts reads it; workers `dev up` starts inherit it).
 */
export function takeProfile(argv: string[], env: Record<string, string | undefined> = process.env): string[] {
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value =
      arg === '--profile' ? argv[++i] : arg.startsWith('--profile=') ? arg.slice('--profile='.length) : null;
    if (value === null) rest.push(arg);
    else if (!value || value.startsWith('-'))
      throw new UsageError('--profile needs a profile name (from temporal.toml)');
    else env.TEMPORAL_PROFILE = value;
  }
  return rest;
}
