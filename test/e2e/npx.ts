/**
 * Runs the CLI the way README.md writes it: `npx peftgrid …` with the repository (or a clone of it)
 * as the working directory. Not `node bin/peftgrid.js`: that path once worked while every `npx`
 * line printed nothing and exited 0 (issue 12), so the e2e tier must go through npx itself.
 */
import { spawnSync } from 'node:child_process';
import { REPO } from '../helpers/fixtures';

export interface CliResult {
  code: number | null;
  out: string;
  err: string;
}

export interface NpxOptions {
  env?: NodeJS.ProcessEnv;
  /** @default the repository root */
  cwd?: string;
  /** @default 120 s */
  timeoutMs?: number;
}

export function npxPeftgrid(args: string[], o: NpxOptions = {}): CliResult {
  const res = spawnSync('npx', ['peftgrid', ...args], {
    cwd: o.cwd ?? REPO,
    env: o.env ?? process.env,
    encoding: 'utf8',
    timeout: o.timeoutMs ?? 120_000,
  });
  return { code: res.status, out: res.stdout, err: res.stderr };
}
