/**
 * `peftgrid fetch <grid> <run> --adapter DIR | --merged DIR | --onnx DIR`: a finished run's results
 * out of the store. The adapter is the committed `runs/<trainingKey>/final/` (PEFT's
 * `save_pretrained` layout plus training_log.json: `PeftModel.from_pretrained(base, DIR)` loads
 * it); `--merged` merges it into its base with the trainer (`python -m trainer merge`) into a
 * standalone safetensors model; `--onnx` is the run's ONNX export (`runs/<trainingKey>/onnx/`).
 *
 * Nothing is ever overwritten: an existing DIR is refused before anything is read, and files land
 * in `DIR.partial-<pid>` first, renamed to DIR only when complete.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pythonEnv } from '../common/env';
import { looksLikeHubId } from '../common/hub-id';
import type { RunSpec } from '../config/plan';
import { getDirectory, joinKey, openStore, readManifest, type ObjectStore } from '../store';
import { parse, UsageError } from './args';
import { connectClient } from './client';
import { findRun, gridInput, runState } from './grid-info';
import { OUTPUT_OPTIONS, outputMode } from './output';

const REPO_ROOT = resolve(__dirname, '..', '..');
const KINDS = ['adapter', 'merged', 'onnx'] as const;

/** A fetch that cannot be done (run unfinished, nothing to fetch, DIR exists): exit 1, nothing written. */
export class FetchError extends Error {}

export async function fetchCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    adapter: { type: 'string' },
    merged: { type: 'string' },
    onnx: { type: 'string' },
    dtype: { type: 'string', default: 'float32' },
    ...OUTPUT_OPTIONS,
  });
  const mode = outputMode(values);
  const [gridId, runQuery] = positionals;
  if (!gridId || !runQuery)
    throw new UsageError('fetch needs a grid id and a run: peftgrid fetch <grid> <run> --adapter DIR');
  const asked = KINDS.filter((k) => values[k] !== undefined);
  if (asked.length !== 1)
    throw new UsageError(`fetch needs exactly one of --adapter DIR, --merged DIR, --onnx DIR (got ${asked.length})`);
  const kind = asked[0]!;
  const dest = resolve(String(values[kind]));
  if (existsSync(dest))
    throw new FetchError(`--${kind}: ${dest} already exists; nothing was overwritten (choose a new directory)`);

  const { client, close } = await connectClient();
  let run: RunSpec;
  let trainingKey: string;
  let revision: string | undefined;
  try {
    run = findRun(await gridInput(client, gridId), runQuery);
    if (!run.trains)
      throw new FetchError(
        `run ${run.runKey} (${run.label}) trains nothing: it has no adapter, merged model or export of its own`,
      );
    const state = await runState(client, run.runKey);
    if (!state.result || state.result.status !== 'completed')
      throw new FetchError(
        `run ${run.runKey} has not finished (${state.result?.status ?? state.status}); fetch it once it has completed (peftgrid grid status ${gridId})`,
      );
    const key = state.result.provenance?.trainingKey;
    if (!key)
      throw new FetchError(`run ${run.runKey}: its result records no training key (a result from before content keys)`);
    trainingKey = key;
    revision = state.result.provenance?.modelRevision;
  } finally {
    await close();
  }

  const store = openStore(run.store);
  const prefix = joinKey('runs', trainingKey, kind === 'onnx' ? 'onnx' : 'final');
  if (!(await readManifest(store, prefix)))
    throw new FetchError(
      kind === 'onnx'
        ? `run ${run.runKey} has no ONNX export (evaluated with the torch engine?): nothing at ${store.url}/${prefix}`
        : `run ${run.runKey}: no committed adapter at ${store.url}/${prefix}`,
    );
  await mkdir(dirname(dest), { recursive: true });
  const partial = `${dest}.partial-${process.pid}`;
  try {
    if (kind === 'merged') await fetchMerged(store, prefix, run, partial, String(values.dtype), revision);
    else await getDirectory(store, prefix, partial);
    if (existsSync(dest)) throw new FetchError(`--${kind}: ${dest} appeared while fetching; nothing was overwritten`);
    await rename(partial, dest);
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
  const done = { gridId, runKey: run.runKey, kind, dir: dest, from: `${store.url}/${prefix}` };
  if (mode === 'text')
    process.stdout.write(`fetched the ${kind === 'merged' ? 'merged model' : kind} of ${run.runKey} into ${dest}\n`);
  else process.stdout.write(JSON.stringify(done) + '\n');
  return 0;
}

/** Downloads the adapter (and an s3:// base) to a temp dir and merges them into `out`. */
async function fetchMerged(
  store: ObjectStore,
  prefix: string,
  run: RunSpec,
  out: string,
  dtype: string,
  revision: string | undefined,
): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), 'peftgrid-merge-'));
  try {
    const adapter = join(tmp, 'adapter');
    await getDirectory(store, prefix, adapter);
    const base = await baseModelDir(run.model.path, join(tmp, 'base'));
    // A hub base at the commit the run trained on, not whatever the branch points to today.
    const pin = revision && looksLikeHubId(base) ? ['--revision', revision] : [];
    await runMerge(['--base', base, '--adapter', adapter, '--out', out, '--dtype', dtype, ...pin]);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** A local directory or hub id the trainer can load the base from; s3:// and file:// prefixes are downloaded. */
async function baseModelDir(path: string, scratch: string): Promise<string> {
  if (!/^(s3|file):\/\//.test(path)) {
    if (existsSync(path) || looksLikeHubId(path)) return path; // hub ids: HF_TOKEN / HF_ENDPOINT / HF_HOME apply
    throw new FetchError(`the run's base model ${path} is not on this machine; merge needs it`);
  }
  const src = openStore(path);
  for (const o of (await src.list('')).filter((x) => !x.key.endsWith('/')))
    await src.getFile(o.key, join(scratch, ...o.key.split('/')), o.sha256);
  return scratch;
}

/** `python -m trainer merge …`; its `error` event (stdout) or stderr tail becomes a FetchError. */
function runMerge(args: string[]): Promise<void> {
  const python = pythonEnv() ?? join(REPO_ROOT, '.venv', 'bin', 'python');
  return new Promise((ok, fail) => {
    const child = spawn(python, ['-m', 'trainer', 'merge', ...args], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString('utf8')).slice(-4000);
    });
    child.on('error', fail);
    child.on('close', (code) => {
      if (code === 0) return ok();
      const event = stdout
        .split('\n')
        .map((l) => {
          try {
            return JSON.parse(l) as { event?: string; message?: string };
          } catch {
            return null;
          }
        })
        .find((e) => e?.event === 'error');
      fail(new FetchError(`merge failed: ${event?.message ?? stderr.trim().split('\n').slice(-5).join('\n')}`));
    });
  });
}
