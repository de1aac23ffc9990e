/**
 * `peftgrid logs <grid> [--run RUN] [--follow]`: the persisted log lines of a grid's runs (the
 * train, export and evaluate activities' own records and the trainer's stderr,
 * src/contracts/run-logs.ts), oldest first.
 * `--follow` keeps polling the store while the runs are live and ends when they have closed.
 */
import type { Client } from '@temporalio/client';
import { runLogsPrefix } from '../common/run-logs';
import type { RunSpec } from '../config/plan';
import type { RunLogRecord } from '../contracts';
import { openStore, type ObjectStore } from '../store';
import { parse, UsageError } from './args';
import { connectClient } from './client';
import { contentKeysOf, findRun, gridInput, runState } from './grid-info';
import { OUTPUT_OPTIONS, outputMode, type OutputMode } from './output';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Fields of a pino record that the text line already shows, or that only add noise. */
const SHOWN = new Set(['time', 'level', 'msg', 'source', 'pid', 'hostname', 'name', 'runKey', 'activity']);
const CLOSED = new Set(['COMPLETED', 'FAILED', 'CANCELED', 'CANCELLED', 'TERMINATED', 'TIMED_OUT', 'CONTINUED_AS_NEW']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface LogLine {
  runKey: string;
  /** The content key (training or evaluation) whose logs/ the line is from. */
  contentKey: string;
  /** The log object in the store the line came from. */
  key: string;
  record: RunLogRecord;
}

/** Parses a log object's text; a line that is not JSON (cut, or foreign) is kept as its text. */
export function parseLogText(text: string): RunLogRecord[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      try {
        const r = JSON.parse(l) as RunLogRecord;
        if (typeof r === 'object' && r && typeof r.time === 'number') return r;
      } catch {
        // fall through
      }
      return { time: 0, level: 30, msg: l };
    });
}

/** `2026-12-02T06:01:02.123Z <run> trainer: msg` or `… <run> INFO msg key=value …`. */
export function logLineText(l: LogLine, showRun: boolean): string {
  const r = l.record;
  const when = r.time ? new Date(r.time).toISOString() : '-';
  const run = showRun ? ` ${l.runKey}` : '';
  if (r.source === 'trainer') return `${when}${run} trainer: ${r.msg}`;
  const extra = Object.entries(r)
    .filter(([k]) => !SHOWN.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${when}${run} ${LEVELS[r.level] ?? r.level} ${r.msg}${extra ? ` ${extra}` : ''}`;
}

/**
 * A record for json/jsonl: the stored record with `runKey` the run's (the activity's own binding
 * of that name is the training or evaluation key, which `contentKey` carries).
 */
export function logRecordOut(l: LogLine): RunLogRecord & { runKey: string; contentKey: string } {
  return { ...l.record, runKey: l.runKey, contentKey: l.contentKey };
}

/** Per log object: how many of its lines were printed already (a re-upload only appends). */
type Seen = Map<string, { bytes: number; lines: number }>;

/** New lines of `runKey`'s log objects since `seen`, sorted by time. */
async function newLines(store: ObjectStore, runKey: string, contentKey: string, seen: Seen): Promise<LogLine[]> {
  const out: LogLine[] = [];
  for (const obj of await store.list(runLogsPrefix(contentKey) + '/')) {
    const before = seen.get(obj.key);
    if (before && before.bytes === obj.bytes) continue;
    const records = parseLogText((await store.get(obj.key)).toString('utf8'));
    seen.set(obj.key, { bytes: obj.bytes, lines: records.length });
    for (const record of records.slice(before?.lines ?? 0)) out.push({ runKey, contentKey, key: obj.key, record });
  }
  return out;
}

interface Followed {
  run: RunSpec;
  /** Its training and evaluation keys, as they become known. */
  keys: string[];
  closed: boolean;
  /** Said once: why this run has no log lines (yet). */
  noted?: string;
}

export async function logsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    run: { type: 'string' },
    follow: { type: 'boolean', short: 'f' },
    ...OUTPUT_OPTIONS,
  });
  const mode = outputMode(values);
  const gridId = positionals[0];
  if (!gridId) throw new UsageError('logs needs a grid id: peftgrid logs <grid> [--run RUN] [--follow]');
  const { client, close } = await connectClient();
  try {
    const input = await gridInput(client, gridId);
    const runs = values.run ? [findRun(input, values.run)] : input.runs;
    return await printLogs(client, gridId, runs, Boolean(values.follow), mode);
  } finally {
    await close();
  }
}

async function printLogs(
  client: Client,
  gridId: string,
  runs: RunSpec[],
  follow: boolean,
  mode: OutputMode,
): Promise<number> {
  const store = openStore(runs[0]!.store);
  const followed: Followed[] = runs.map((run) => ({ run, keys: [], closed: false }));
  const seen: Seen = new Map();
  const all: LogLine[] = [];
  const emit = (lines: LogLine[]) => {
    lines.sort((a, b) => a.record.time - b.record.time);
    if (mode === 'json') return void all.push(...lines);
    for (const l of lines)
      process.stdout.write(
        (mode === 'jsonl' ? JSON.stringify(logRecordOut(l)) : logLineText(l, runs.length > 1)) + '\n',
      );
  };
  for (;;) {
    const batch: LogLine[] = [];
    for (const f of followed) {
      if (f.closed) continue;
      const state = await runState(client, f.run.runKey);
      // Read once more after the run closed: its attempts' last uploads came before the close.
      const closedNow =
        CLOSED.has(state.status) || (state.status === 'NOT_STARTED' && !(await gridRunning(client, gridId)));
      const { trainingKey, evalKey } = await contentKeysOf(client, f.run, state);
      for (const k of [trainingKey, evalKey]) if (k && !f.keys.includes(k)) f.keys.push(k);
      for (const k of f.keys) batch.push(...(await newLines(store, f.run.runKey, k, seen)));
      if (!f.keys.length) note(f, `no log lines yet (${state.status.toLowerCase()})`);
      f.closed = closedNow;
    }
    emit(batch);
    if (!follow || followed.every((f) => f.closed)) break;
    await sleep(2000);
  }
  if (mode === 'json') process.stdout.write(JSON.stringify(all.map(logRecordOut)) + '\n');
  if (mode === 'text' && seen.size === 0 && !follow) process.stderr.write(`no log lines stored for ${gridId} yet\n`);
  return 0;
}

function note(f: Followed, why: string): void {
  if (f.noted === why) return;
  f.noted = why;
  process.stderr.write(`${f.run.runKey}: ${why}\n`);
}

async function gridRunning(client: Client, gridId: string): Promise<boolean> {
  return (await client.workflow.getHandle(gridId).describe()).status.name === 'RUNNING';
}
