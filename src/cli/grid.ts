/** `peftgrid run` and `peftgrid grid …`: start, watch, read and cancel grids. */
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { checkHubModels } from '../config/hub-check';
import { ConfigError, loadGridConfig } from '../config/validate';
import { joinKey } from '../store';
import { renderCsv, toRows } from '../report/render';
import type { GridResult } from '../contracts';
import { parse, UsageError } from './args';
import { connectClient, startGrid } from './client';
import { gridListText, listGrids } from './grid-list';
import { OUTPUT_OPTIONS, outputMode, writeRecords, type OutputMode } from './output';
import { ChangeTracker, changeText } from './progress-lines';
import { gridLines, ProgressMemory, renderLine } from './watch';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Follows a grid until it closes; returns its result. On a terminal the table of runs is redrawn
 * in place; elsewhere (a pipe, a log, CI) one line per change (progress-lines.ts), as text or,
 * with `jsonl`, one JSON object per change.
 */
export async function followGrid(
  client: Client,
  gridId: string,
  out: NodeJS.WriteStream = process.stderr,
  mode: OutputMode = 'text',
): Promise<GridResult> {
  const handle = client.workflow.getHandle(gridId);
  const resultPromise = handle.result() as Promise<GridResult>;
  let done = false;
  resultPromise.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  let drawn = 0;
  const memory = new ProgressMemory(); // phases shown never go back (watch.ts)
  const changes = new ChangeTracker(gridId);
  const redraw = out.isTTY && mode === 'text';
  while (!done) {
    try {
      const { progress, lines } = await gridLines(client, gridId, memory);
      if (redraw) {
        const text = [`grid ${gridId}: ${progress.phase}`, ...lines.map(renderLine)].join('\n');
        if (drawn) out.write(`\x1b[${drawn}A\x1b[J`);
        out.write(text + '\n');
        drawn = text.split('\n').length;
      } else if (mode !== 'json') {
        for (const c of changes.next(progress.phase, lines))
          out.write((mode === 'jsonl' ? JSON.stringify(c) : changeText(c)) + '\n');
      }
    } catch {
      // The query can fail while the workflow is between tasks; the next poll will succeed.
    }
    await Promise.race([resultPromise.catch(() => undefined), sleep(2000)]);
  }
  if (!redraw && mode !== 'json') {
    // The last poll came before the end: how each run ended is the last change worth a line.
    const result = await resultPromise.catch(() => undefined);
    const ends = result?.runs.map((r) => ({ runKey: r.runKey, model: r.model, label: r.label, phase: r.status }));
    for (const c of ends ? changes.next('completed', ends) : [])
      out.write((mode === 'jsonl' ? JSON.stringify(c) : changeText(c)) + '\n');
  }
  return resultPromise;
}

function printStarted(s: Awaited<ReturnType<typeof startGrid>>, storeUrl: string, mode: OutputMode): void {
  const results = `${storeUrl}/${joinKey('grids', s.gridId)}/`;
  if (mode !== 'text') {
    process.stdout.write(JSON.stringify({ ...s, results }) + '\n');
    return;
  }
  process.stdout.write(`${s.started ? 'started' : 'already running'}: grid ${s.gridId} (${s.runs} run(s))\n`);
  process.stdout.write(`  Temporal UI: ${s.uiUrl}\n`);
  process.stdout.write(`  results:     ${results} (report.md, results.csv, results.json)\n`);
}

/** One line for people: how many runs finished, how many of them were reused, what failed. */
export function summaryLine(result: GridResult): string {
  const count = (s: string) => result.runs.filter((r) => r.status === s).length;
  const reused = result.runs.filter((r) => r.reused).length;
  const parts = [`${count('completed')} completed${reused ? ` (${reused} reused from an earlier start)` : ''}`];
  if (count('failed')) parts.push(`${count('failed')} failed`);
  if (count('cancelled')) parts.push(`${count('cancelled')} cancelled`);
  const n = result.runs.length;
  return `grid ${result.gridId}: ${n} run${n === 1 ? '' : 's'}: ${parts.join(', ')}; report in ${result.reportPrefix}`;
}

function printResult(result: GridResult, mode: OutputMode): number {
  if (mode !== 'text') process.stdout.write(JSON.stringify(result) + '\n');
  else process.stdout.write('\n' + result.markdown + '\n' + summaryLine(result) + '\n');
  return result.runs.every((r) => r.status === 'completed') ? 0 : 1;
}

export async function runCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    wait: { type: 'boolean' },
    set: { type: 'string', multiple: true },
    ...OUTPUT_OPTIONS,
  });
  const mode = outputMode(values);
  const file = positionals[0];
  if (!file) throw new UsageError('run needs a config file: peftgrid run <grid.yaml>');
  const grid = loadGridConfig(file, process.cwd(), values.set ?? []); // throws ConfigError before anything starts
  // Gated, missing or unknown-revision hub models fail here, before any worker stages anything.
  const hub = await checkHubModels(grid);
  for (const note of hub.notes) process.stderr.write(`note: ${note}\n`);
  if (hub.issues.length) throw new ConfigError(file, hub.issues);
  const { client, close } = await connectClient();
  try {
    const started = await startGrid(client, grid);
    printStarted(started, grid.store, mode);
    if (!values.wait) return 0;
    try {
      // jsonl: the changes and the result are one stream on stdout; otherwise progress is on stderr.
      const progressOut = mode === 'jsonl' ? process.stdout : process.stderr;
      return printResult(await followGrid(client, started.gridId, progressOut, mode), mode);
    } catch (err) {
      if (err instanceof WorkflowFailedError) {
        process.stderr.write(`grid failed: ${err.cause?.message ?? err.message}\n`);
        return 1;
      }
      throw err;
    }
  } finally {
    await close();
  }
}

export async function gridCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'start') return runCommand(rest);
  const { values, positionals } = parse(rest, {
    watch: { type: 'boolean' },
    format: { type: 'string' },
    run: { type: 'string' },
    limit: { type: 'string', default: '20' },
    ...OUTPUT_OPTIONS,
  });
  const mode = outputMode(values);
  const { client, close } = await connectClient();
  try {
    switch (sub) {
      case 'list': {
        const limit = Number(values.limit);
        if (!Number.isInteger(limit) || limit < 1)
          throw new UsageError(`--limit: got "${values.limit}", expected a positive integer`);
        const rows = await listGrids(client, limit);
        if (mode === 'text') process.stdout.write(gridListText(rows));
        else writeRecords(mode, rows);
        return 0;
      }
      case 'status': {
        const gridId = positionals[0];
        if (!gridId) throw new UsageError('grid status needs a grid id');
        if (values.watch) return printResult(await followGrid(client, gridId, process.stdout, mode), mode);
        const { progress, lines } = await gridLines(client, gridId);
        if (mode === 'json') process.stdout.write(JSON.stringify({ ...progress, runs: lines }) + '\n');
        else if (mode === 'jsonl') writeRecords('jsonl', lines);
        else process.stdout.write([`grid ${gridId}: ${progress.phase}`, ...lines.map(renderLine)].join('\n') + '\n');
        return 0;
      }
      case 'results': {
        const gridId = positionals[0];
        if (!gridId) throw new UsageError('grid results needs a grid id');
        const desc = await client.workflow.getHandle(gridId).describe();
        if (desc.status.name !== 'COMPLETED') {
          process.stderr.write(
            `grid ${gridId} is ${desc.status.name}; results appear when it completes (peftgrid grid status ${gridId} --watch)\n`,
          );
          return 1;
        }
        const result = (await client.workflow.getHandle(gridId).result()) as GridResult;
        const format = resultsFormat(values.format, mode);
        if (format === 'json') process.stdout.write(JSON.stringify(result, null, 1) + '\n');
        else if (format === 'jsonl') writeRecords('jsonl', result.runs);
        else if (format === 'md') process.stdout.write(result.markdown);
        else process.stdout.write(renderCsv(toRows(result.runs)));
        return 0;
      }
      case 'cancel': {
        const gridId = positionals[0];
        if (!gridId) throw new UsageError('grid cancel needs a grid id');
        await client.workflow.getHandle(gridId).signal('cancelRun', { runKey: values.run });
        process.stdout.write(
          values.run
            ? `cancel requested for run ${values.run}\n`
            : `cancel requested for every unfinished run of ${gridId}\n`,
        );
        return 0;
      }
      default:
        throw new UsageError(`unknown grid subcommand "${sub ?? ''}"; expected start, status, results, cancel or list`);
    }
  } finally {
    await close();
  }
}

/**
 * `grid results`' format: `--format md|csv` are the text forms (md the default); `--format json` is
 * the earlier spelling of `--output json`. Flags that disagree are a UsageError.
 */
export function resultsFormat(format: string | undefined, mode: OutputMode): 'md' | 'csv' | 'json' | 'jsonl' {
  if (format === undefined) return mode === 'text' ? 'md' : mode;
  if (format !== 'md' && format !== 'csv' && format !== 'json')
    throw new UsageError(`--format: got "${format}", expected md, csv or json`);
  if (mode !== 'text' && mode !== format)
    throw new UsageError(`--format ${format} cannot be combined with --output ${mode}`);
  return format;
}
