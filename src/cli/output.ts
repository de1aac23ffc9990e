/**
 * One output flag for every command, as the Temporal CLI has it: `--output text|json|jsonl`
 * (`-o`). `text` is for people; `json` is one JSON document; `jsonl` is one JSON object per line
 * (a record per run, grid or log line, and for followed progress one per change), for `jq` and
 * pipes. The earlier flags stay as aliases: `--json` is `--output json`, and `grid results
 * --format json` is `--output json` (its `md` and `csv` stay the text formats of results).
 */
import { UsageError } from './args';

export const OUTPUT_MODES = ['text', 'json', 'jsonl'] as const;
export type OutputMode = (typeof OUTPUT_MODES)[number];

/** The options every command accepts (spread into its parse() options). */
export const OUTPUT_OPTIONS = {
  output: { type: 'string', short: 'o' },
  json: { type: 'boolean' },
} as const;

/** The mode the flags ask for; a flag value outside the list, or flags that disagree, is a UsageError. */
export function outputMode(values: { output?: string | boolean; json?: string | boolean }): OutputMode {
  const asked = values.output;
  if (asked !== undefined && !OUTPUT_MODES.includes(asked as OutputMode))
    throw new UsageError(`--output: got "${String(asked)}", expected ${OUTPUT_MODES.join(', ')}`);
  if (values.json && asked !== undefined && asked !== 'json')
    throw new UsageError(`--json is --output json; it cannot be combined with --output ${String(asked)}`);
  return values.json ? 'json' : ((asked as OutputMode | undefined) ?? 'text');
}

/** Writes `records` as one document (json) or one line each (jsonl). */
export function writeRecords(
  mode: 'json' | 'jsonl',
  records: unknown[],
  out: NodeJS.WritableStream = process.stdout,
): void {
  if (mode === 'json') out.write(JSON.stringify(records) + '\n');
  else for (const r of records) out.write(JSON.stringify(r) + '\n');
}
