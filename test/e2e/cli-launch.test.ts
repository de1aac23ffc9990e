/**
 * End to end: the CLI runs however it is launched — `npx peftgrid`, `npm exec peftgrid`,
 * `node bin/peftgrid.js`, a symlinked bin and `npm link` — and never "prints nothing, exits 0"
 * (issue 12: main() only ran when argv[1] ended in peftgrid.js, which npx's `.bin/peftgrid` link
 * does not). Needs no server: help, usage and --version only.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO, scratchDir } from '../helpers/fixtures';
import { npxPeftgrid, type CliResult } from './npx';

const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const dir = scratchDir('e2e-cli-launch');

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): CliResult {
  const res = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 120_000 });
  return { code: res.status, out: res.stdout, err: res.stderr };
}

/** --version prints exactly the package version; --help and no arguments print the usage. */
function assertRuns(name: string, launch: (args: string[]) => CliResult): void {
  for (const flag of ['--version', '-V']) {
    const v = launch([flag]);
    assert.equal(v.code, 0, `${name} ${flag}: ${v.err}`);
    assert.equal(v.out, `${VERSION}\n`, `${name} ${flag}`);
  }
  const help = launch(['--help']);
  assert.equal(help.code, 0, `${name} --help: ${help.err}`);
  assert.match(help.out, /^peftgrid — durable PEFT/, `${name} --help`);
  assert.match(help.out, /Usage: peftgrid <command> \[options\]/);
  const bare = launch([]);
  assert.equal(bare.code, 2, `${name} with no arguments exits 2 (usage), not 0`);
  assert.match(bare.out, /Usage: peftgrid <command>/, `${name} with no arguments prints the usage`);
  const bad = launch(['no-such-command']);
  assert.equal(bad.code, 2, `${name} no-such-command`);
  assert.match(bad.err, /^error: unknown command "no-such-command"/);
  assert.doesNotMatch(bad.err, /\n\s+at /, 'no stack trace');
}

describe('the CLI however it is launched', { timeout: 10 * 60_000 }, () => {
  it('npx peftgrid (as README.md writes it)', () => {
    assertRuns('npx peftgrid', (args) => npxPeftgrid(args));
  });

  it('npx peftgrid with the registry unreachable (works offline)', () => {
    const env = { ...process.env, npm_config_registry: 'http://127.0.0.1:9', npm_config_cache: join(dir, 'npm-cache') };
    assertRuns('offline npx', (args) => npxPeftgrid(args, { env }));
  });

  it('npm exec peftgrid', () => {
    assertRuns('npm exec', (args) => run('npm', ['exec', '--', 'peftgrid', ...args], REPO));
  });

  it('node bin/peftgrid.js', () => {
    assertRuns('node bin', (args) => run(process.execPath, [join(REPO, 'bin', 'peftgrid.js'), ...args], REPO));
  });

  it('a symlinked bin, from another directory', () => {
    mkdirSync(join(dir, 'bin'), { recursive: true });
    const link = join(dir, 'bin', 'peftgrid');
    symlinkSync(join(REPO, 'bin', 'peftgrid.js'), link);
    assertRuns('symlink', (args) => run(link, args, dir));
  });

  it('npm link, into a scratch prefix (nothing global changes)', () => {
    const prefix = join(dir, 'npm-global');
    const env = { ...process.env, npm_config_prefix: prefix };
    const link = run('npm', ['link', '--no-audit', '--no-fund'], REPO, env);
    assert.equal(link.code, 0, link.err);
    assertRuns('npm link', (args) => run(join(prefix, 'bin', 'peftgrid'), args, dir));
  });
});
