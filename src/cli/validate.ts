import { gridJsonSchema } from '../config/schema';
import { checkHubModels } from '../config/hub-check';
import { ConfigError, loadGridConfig } from '../config/validate';
import { planRuns } from '../config/plan';
import { parse, UsageError } from './args';
import { OUTPUT_OPTIONS, outputMode } from './output';

export async function validateCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    offline: { type: 'boolean' },
    set: { type: 'string', multiple: true },
    ...OUTPUT_OPTIONS,
  });
  const mode = outputMode(values);
  // jsonl: the same object on one line.
  const json = (v: unknown) => (mode === 'jsonl' ? JSON.stringify(v) : JSON.stringify(v, null, 1)) + '\n';
  const file = positionals[0];
  if (!file) throw new UsageError('validate needs a config file: peftgrid validate <grid.yaml>');
  try {
    const grid = loadGridConfig(file, process.cwd(), values.set ?? []);
    if (!values.offline) {
      const hub = await checkHubModels(grid);
      for (const note of hub.notes) process.stderr.write(`note: ${note}\n`);
      if (hub.issues.length) throw new ConfigError(file, hub.issues);
    }
    const runs = planRuns(grid);
    if (mode !== 'text')
      process.stdout.write(
        json({ valid: true, runs: runs.map((r) => ({ runKey: r.runKey, model: r.model.name, method: r.label })) }),
      );
    else {
      process.stdout.write(`${file}: valid — ${runs.length} run(s)\n`);
      for (const r of runs) process.stdout.write(`  ${r.runKey}  (${r.model.name}: ${r.label})\n`);
    }
    return 0;
  } catch (err) {
    if (err instanceof ConfigError && mode !== 'text') {
      process.stdout.write(json({ valid: false, issues: err.issues }));
      return 2;
    }
    throw err;
  }
}

export async function schemaCommand(): Promise<number> {
  process.stdout.write(JSON.stringify(gridJsonSchema(), null, 2) + '\n');
  return 0;
}
