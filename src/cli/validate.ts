import { gridJsonSchema } from '../config/schema';
import { checkHubModels } from '../config/hub-check';
import { ConfigError, loadGridConfig } from '../config/validate';
import { planRuns } from '../config/plan';
import { parse, UsageError } from './args';

export async function validateCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    json: { type: 'boolean' },
    offline: { type: 'boolean' },
    set: { type: 'string', multiple: true },
  });
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
    if (values.json)
      process.stdout.write(
        JSON.stringify(
          { valid: true, runs: runs.map((r) => ({ runKey: r.runKey, model: r.model.name, method: r.label })) },
          null,
          1,
        ) + '\n',
      );
    else {
      process.stdout.write(`${file}: valid — ${runs.length} run(s)\n`);
      for (const r of runs) process.stdout.write(`  ${r.runKey}  (${r.model.name}: ${r.label})\n`);
    }
    return 0;
  } catch (err) {
    if (err instanceof ConfigError && values.json) {
      process.stdout.write(JSON.stringify({ valid: false, issues: err.issues }, null, 1) + '\n');
      return 2;
    }
    throw err;
  }
}

export async function schemaCommand(): Promise<number> {
  process.stdout.write(JSON.stringify(gridJsonSchema(), null, 2) + '\n');
  return 0;
}
