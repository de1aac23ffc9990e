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
import { fetchCommand } from './fetch';
import { logsCommand } from './logs';
import { takeProfile, UsageError } from './args';

const HELP = `peftgrid — durable PEFT fine-tuning experiment grids on Temporal

Usage: peftgrid <command> [options]
       peftgrid --version | --help

Commands:
  run <grid.yaml> [--wait] [--set PATH=VALUE]...
                                        start a grid (one model × one method is one run); prints its id,
                                        the Temporal UI link and where results go
  validate <grid.yaml> [--offline] [--set PATH=VALUE]...
                                        check a config (and its hub ids) without starting anything
  grid start <grid.yaml> [--wait]       same as run
  grid status <gridId> [--watch]        phases and training progress of every run
  grid results <gridId> [--format md|csv]
  grid cancel <gridId> [--run KEY]      cancel one run or the whole grid (frees the GPU)
  grid list [--limit N]                 recent grids: name, start/close time, status, run counts
  fetch <gridId> <run> --adapter DIR | --merged DIR | --onnx DIR
                                        a finished run's PEFT adapter, merged model or ONNX export
  logs <gridId> [--run RUN] [--follow]  the trainer's and the activities' log lines of runs
  dev up | down | status                the embedded stack: Temporal dev server + a worker
  cluster up | down | status | env      a local production-shaped Temporal (PostgreSQL, mTLS)
  demo                                  fine-tune SmolLM2-135M with LoRA on the shipped samples and
                                        compare it with the zero-shot base model
  schema                                print the grid config's JSON Schema

Output: -o, --output text|json|jsonl on every command that prints records (text is the default;
jsonl is one JSON object per line: per run, grid, log line or progress change). --json is
--output json; grid results --format json is too. Progress (--wait, --watch) redraws a table on a
terminal and prints one line per change anywhere else.

Environment: TEMPORAL_ADDRESS (default localhost:7233), TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
TEMPORAL_TLS_CLIENT_CERT_PATH/_KEY_PATH/SERVER_CA_CERT_PATH (or the earlier TEMPORAL_TLS_CERT/KEY/CA),
TEMPORAL_PROFILE (or --profile NAME on any command) and TEMPORAL_CONFIG_FILE (a temporal.toml,
as the Temporal CLI reads it),
PEFTGRID_UI_URL, AWS_* for s3:// stores, HF_TOKEN/HF_HOME for hub models.
Run \`peftgrid <command> --help\` for details.
`;

export const COMMAND_HELP: Record<string, string> = {
  run: `Usage: peftgrid run <grid.yaml> [--wait] [--output text|json|jsonl] [--set PATH=VALUE]...

Validates the config, starts the grid workflow on the Temporal server (TEMPORAL_ADDRESS) and prints
the grid id, the Temporal UI link and the store prefix of the results. Starting the same config
again attaches to the same grid; finished runs are never redone.
  --wait        follow progress until the grid finishes, then print the results table; on a
                terminal a redrawn table, elsewhere one line per change (stderr)
  -o, --output  text (default), json (one object: started, then the result), jsonl (the same
                plus one object per progress change, all on stdout); --json = --output json
  --set PATH=VALUE
                override a config field before validation (repeatable): dotted path, list entries by
                index, the value parsed as YAML, e.g. --set training.maxSteps=4 --set models.0.revision=main
`,
  validate: `Usage: peftgrid validate <grid.yaml> [--offline] [--output text|json|jsonl] [--set PATH=VALUE]...

Checks a grid config without starting any work. Every problem is listed as
"<field path>: got <value>, expected <what>". Exit code 2 when invalid. Also prints how many runs the
grid expands to. Models given by hub id are looked up on HF_ENDPOINT (default huggingface.co) with
HF_TOKEN: a gated, missing or unknown-revision model is an error; an unreachable hub only a note.
  --offline     skip the hub lookup
  -o, --output  json / jsonl: {valid, runs} or {valid: false, issues}; --json = --output json
  --set PATH=VALUE
                override a config field (repeatable), validated like the file; see peftgrid run --help
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
  grid: `Usage: peftgrid grid <start|status|results|cancel|list> ... [--output text|json|jsonl]

  start <grid.yaml> [--wait] [--set PATH=VALUE]...   same as peftgrid run
  status <gridId> [--watch]      one line per run; --watch follows until the grid closes (a redrawn
                                 table on a terminal, one line per change otherwise)
  results <gridId> [--format md|csv]
                                 the report table (md, the default) or CSV; --output json is the whole
                                 result, jsonl one run per line (--format json = --output json)
  cancel <gridId> [--run RUN_KEY]
  list [--limit N]               the N (20) newest grids: start and close time (UTC), status, name,
                                 runs completed / failed / running, grid id
-o, --output text|json|jsonl; --json = --output json.
`,
  fetch: `Usage: peftgrid fetch <gridId> <run> (--adapter DIR | --merged DIR | --onnx DIR) [--dtype D]

Copies a finished run's results out of the store. <run> is the run key, or a part of it or of
"<model> · <label>" that only one run of the grid has.
  --adapter DIR  the PEFT adapter as trained (adapter_config.json, adapter_model.safetensors,
                 training_log.json): PeftModel.from_pretrained(base, DIR) loads it
  --merged DIR   the adapter merged into its base (python -m trainer merge): a standalone
                 safetensors model for AutoModelForCausalLM.from_pretrained(DIR), with the base's
                 tokenizer; prompt tuning cannot merge (use --adapter). --dtype float32 (default),
                 bfloat16 or float16. Hub bases are loaded at the commit the run trained on (HF_TOKEN)
  --onnx DIR     the ONNX export the onnx engine evaluated (model.onnx, engine.json, tokenizer)
A run that has not completed, a run that trains nothing, or an existing DIR is an error (exit 1) and
nothing is written; files land in DIR.partial-<pid> first and are renamed to DIR when complete.
`,
  logs: `Usage: peftgrid logs <gridId> [--run RUN] [--follow] [--output text|json|jsonl]

The log lines the train, export and evaluate activities stored for each run (runs/<trainingKey>/logs/
and runs/<evalKey>/logs/ in the grid's store): their own records and the trainer's stderr, every
attempt, oldest first.
  --run RUN      one run (its key, or a part of it or of "<model> · <label>"); default every run
  -f, --follow   keep printing new lines while the runs are live; ends when they have closed
  -o, --output   jsonl: one record per line with its runKey; json: one array
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
  const [command, ...rest] = takeProfile(argv);
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
    case 'fetch':
      return fetchCommand(rest);
    case 'logs':
      return logsCommand(rest);
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
