/**
 * `peftgrid` — start, watch and cancel experiment grids; validate configs; run the embedded stack.
 * Exit codes: 0 success, 1 failure (a run or the grid failed, a server is unreachable),
 * 2 invalid usage or config.
 * bin/peftgrid.js calls runCli(); importing this module runs nothing.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../config/validate';
import { clusterCommand } from './cluster';
import { devCommand } from './dev';
import { gridCommand, runCommand } from './grid';
import { demoCommand } from './demo';
import { validateCommand, schemaCommand } from './validate';
import { UsageError } from './args';

const HELP = `peftgrid — durable PEFT fine-tuning experiment grids on Temporal

Usage: peftgrid <command> [options]
       peftgrid --version | --help

Commands:
  run <grid.yaml> [--wait] [--json]     start a grid (one model × one method is one run); prints its id,
                                        the Temporal UI link and where results go
  validate <grid.yaml> [--json] [--offline]  check a config (and its hub ids) without starting anything
  grid start <grid.yaml> [--wait]       same as run
  grid status <gridId> [--watch]        phases and training progress of every run
  grid results <gridId> [--format md|csv|json]
  grid cancel <gridId> [--run KEY]      cancel one run or the whole grid (frees the GPU)
  grid list                             recent grids
  dev up | down | status                the embedded stack: Temporal dev server + a worker
  cluster up | down | status | env      a local production-shaped Temporal (PostgreSQL, mTLS)
  demo                                  fine-tune SmolLM2-135M with LoRA on the shipped samples and
                                        compare it with the zero-shot base model
  schema                                print the grid config's JSON Schema

Environment: TEMPORAL_ADDRESS (default localhost:7233), TEMPORAL_NAMESPACE, TEMPORAL_TLS_CERT/KEY/CA,
TEMPORAL_API_KEY, PEFTGRID_UI_URL, AWS_* for s3:// stores. Run \`peftgrid <command> --help\` for details.
`;

export const COMMAND_HELP: Record<string, string> = {
  run: `Usage: peftgrid run <grid.yaml> [--wait] [--json]

Validates the config, starts the grid workflow on the Temporal server (TEMPORAL_ADDRESS) and prints
the grid id, the Temporal UI link and the store prefix of the results. Starting the same config
again attaches to the same grid; finished runs are never redone.
  --wait   follow progress until the grid finishes, then print the results table
  --json   machine-readable output
`,
  validate: `Usage: peftgrid validate <grid.yaml> [--json] [--offline]

Checks a grid config without starting any work. Every problem is listed as
"<field path>: got <value>, expected <what>". Exit code 2 when invalid. Also prints how many runs the
grid expands to. Models given by hub id are looked up on HF_ENDPOINT (default huggingface.co) with
HF_TOKEN: a gated, missing or unknown-revision model is an error; an unreachable hub only a note.
  --offline   skip the hub lookup
`,
  dev: `Usage: peftgrid dev up|down|status

  up       start the Temporal dev server (SQLite under .data/temporal, Web UI on :8233) and one
           worker polling both task queues (cpu and gpu); idempotent
  down     stop exactly the processes \`up\` started
  status   show what is running and which queues have pollers
Ports: PEFTGRID_TEMPORAL_PORT (7233), PEFTGRID_UI_PORT (8233).
`,
  cluster: `Usage: peftgrid cluster up|down|status|env

  up       build temporal-server once (Go, cached in ~/.cache/peftgrid/bin), start PostgreSQL and the
           server with mTLS under .data/cluster, create namespace peftgrid and its search
           attributes, and print the TEMPORAL_* variables to export; idempotent
  down     stop the server and PostgreSQL (data and certificates are kept)
  status   what is running, and whether the namespace and search attributes are there
  env      print the TEMPORAL_* variables only
Ports: PEFTGRID_CLUSTER_PORT (frontend 27233, services the next 8), PEFTGRID_CLUSTER_PG_PORT (27432),
PEFTGRID_CLUSTER_METRICS_PORT (27290); state dir PEFTGRID_CLUSTER_DIR (.data/cluster).
`,
  demo: `Usage: peftgrid demo [--config FILE]

Starts the embedded stack, runs examples/demo.yaml (SmolLM2-135M-Instruct: zero-shot vs LoRA on
the shipped UnifiedQA-format samples) and prints exact match and Jaccard of both on the same test
items. The stack keeps running afterwards so you can browse the run in the Temporal UI.
`,
  grid: `Usage: peftgrid grid <start|status|results|cancel|list> ...

  start <grid.yaml> [--wait] [--json]
  status <gridId> [--watch] [--json]
  results <gridId> [--format md|csv|json]
  cancel <gridId> [--run RUN_KEY]
  list [--json]
`,
  schema: 'Usage: peftgrid schema\n\nPrints the JSON Schema of grid configs (for editor completion and validation).\n',
};

/** The version in package.json: what `peftgrid --version` prints. */
export function packageVersion(): string {
  // Read at run time from the package root (src/cli → ../..), so a linked or npx-cached bin still
  // reports the checkout it runs from.
  const pkg = JSON.parse(readFileSync(resolve(__dirname, '..', '..', 'package.json'), 'utf8')) as { version?: unknown };
  return String(pkg.version);
}

/** Runs one command; returns its exit code, throws UsageError / ConfigError / others (see runCli). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP);
    return command ? 0 : 2;
  }
  if (command === '--version' || command === '-V' || command === 'version') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    const help = COMMAND_HELP[command];
    if (!help) throw new UsageError(`unknown command "${command}"`);
    process.stdout.write(help);
    return 0;
  }
  switch (command) {
    case 'run':
      return runCommand(rest);
    case 'validate':
      return validateCommand(rest);
    case 'grid':
      return gridCommand(rest);
    case 'dev':
      return devCommand(rest);
    case 'cluster':
      return clusterCommand(rest);
    case 'demo':
      return demoCommand(rest);
    case 'schema':
      return schemaCommand();
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/** Maps what main() threw to the documented exit code, printing a message (never a stack trace). */
export function exitCodeOf(err: unknown): number {
  if (err instanceof ConfigError) {
    process.stderr.write(`error: ${err.message}\n`);
    return 2;
  }
  if (err instanceof UsageError) {
    process.stderr.write(`error: ${err.message}\n\n${HELP}`);
    return 2;
  }
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
}

/**
 * The bin's entry: runs main() and exits with its code. Called unconditionally by bin/peftgrid.js;
 * there is deliberately no `require.main`/`process.argv[1]` check, because under `npx`, `npm exec`,
 * `npm link` or a symlinked bin argv[1] is some `.bin/peftgrid` link and such a check silently
 * skipped the whole CLI (exit 0, no output).
 */
export async function runCli(argv: string[]): Promise<never> {
  let code: number;
  try {
    code = await main(argv);
  } catch (err) {
    code = exitCodeOf(err);
  }
  process.exit(code);
}
