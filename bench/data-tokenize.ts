/**
 * Tokenization throughput: this repo's TypeScript tokenizer (@huggingface/tokenizers via
 * loadTokenizer) vs Python HF `tokenizers` (Rust) on the same machine and the same formatted
 * records, single-threaded and with one thread per core.
 *
 *   node --import tsx bench/data-tokenize.ts [--model HF_DIR] [--per-dataset 400] [--family template]
 *        [--threads N] [--repeats 2] [--quick]
 *
 * Records: the first --per-dataset train records of each of the 11 datasets of the full-size
 * synthetic UnifiedQA (bench/data-scale.ts; generated on first use), formatted for --family.
 * Per record both sides encode the same two strings, prompt and prompt + answer, which is what
 * training tokenization (tokenizeForTraining) does. Python: `Tokenizer.from_file` + `encode_batch`.
 *
 * Rows: TS 1 thread = tokenizeForTraining in a loop over pre-formatted examples; TS workers =
 * tokenizeTrainingParallel (formatting included, which the other rows do beforehand; its first
 * pass starts the worker pool, so thread start-up and tokenizer loading are inside it); Python with
 * TOKENIZERS_PARALLELISM=false, and with RAYON_NUM_THREADS=--threads. "first" is the first pass of
 * a process or pool (cold caches, cold JIT); "warm" the best of --repeats later passes. Ratios are
 * TS ÷ Python throughput from this run.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import {
  MODEL_FAMILIES,
  closeTokenizePools,
  formatExample,
  loadTokenizer,
  tokenizeForTraining,
  tokenizeTrainingParallel,
  type ModelFamily,
} from '../src/data';
import { ensureScaleData, REPO_ROOT, sampleTrainRecords } from './data-scale';

const PYTHON = join(REPO_ROOT, '.venv', 'bin', 'python');
/** No truncation: both sides then do exactly the same encodes. */
const NO_LIMIT = 1 << 24;

interface Row {
  name: string;
  threads: number;
  records: number;
  tokens: number;
  firstSec: number;
  warmSec: number;
  idsSha256: string;
}

async function python(tokJson: string, textsPath: string, repeats: number, threads: number): Promise<Row> {
  const env = {
    ...process.env,
    ...(threads === 1
      ? { TOKENIZERS_PARALLELISM: 'false' }
      : { TOKENIZERS_PARALLELISM: 'true', RAYON_NUM_THREADS: String(threads) }),
  };
  const { stdout } = await promisify(execFile)(
    PYTHON,
    [join(REPO_ROOT, 'bench', 'data_tokenize.py'), tokJson, textsPath, String(repeats)],
    { env, maxBuffer: 1 << 20 },
  );
  const r = JSON.parse(stdout.trim().split('\n').pop()!) as Omit<Row, 'name' | 'threads'> & { version: string };
  return {
    name: `Python tokenizers ${r.version}`,
    threads,
    records: r.records,
    tokens: r.tokens,
    firstSec: r.firstSec,
    warmSec: r.warmSec,
    idsSha256: r.idsSha256,
  };
}

function idsHash(all: ArrayLike<number>[]): string {
  const h = createHash('sha256');
  for (const ids of all) h.update(Buffer.from(Int32Array.from(ids).buffer));
  return h.digest('hex');
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      'per-dataset': { type: 'string' },
      family: { type: 'string' },
      threads: { type: 'string' },
      repeats: { type: 'string' },
      quick: { type: 'boolean' },
    },
    strict: true,
  });
  const model = values.model ?? join(REPO_ROOT, '.data', 'models', 'smollm2-135m-instruct');
  const family = (values.family ?? 'template') as ModelFamily;
  if (!MODEL_FAMILIES.includes(family)) throw new TypeError(`--family must be one of ${MODEL_FAMILIES.join(', ')}`);
  const perDataset = Number(values['per-dataset'] ?? (values.quick ? 40 : 400));
  const threads = Number(values.threads ?? availableParallelism());
  const repeats = Number(values.repeats ?? (values.quick ? 1 : 2));

  const records = await sampleTrainRecords(await ensureScaleData(1), perDataset);
  const tok = await loadTokenizer(model);
  const examples = records.map((r) => formatExample(r, family, { tokenizerInfo: tok }));
  const scratch = mkdtempSync(join(tmpdir(), 'bench-tokenize-'));
  const textsPath = join(scratch, 'texts.json');
  writeFileSync(
    textsPath,
    JSON.stringify({ prompts: examples.map((e) => e.prompt), fulls: examples.map((e) => e.prompt + e.answer) }),
  );
  const chars = examples.reduce((s, e) => s + e.prompt.length + e.answer.length, 0);
  console.log(
    `${records.length} records (${perDataset} per dataset), ${(chars / 1e6).toFixed(1)} M chars of prompt + answer, family ${family}, ${availableParallelism()} cores, ${threads} threads for the parallel rows`,
  );

  const rows: Row[] = [];
  try {
    // Python first, each in its own process, so the TS process's memory does not matter to it.
    rows.push(await python(join(model, 'tokenizer.json'), textsPath, repeats, 1));
    rows.push(await python(join(model, 'tokenizer.json'), textsPath, repeats, threads));

    // TS, one thread: the sequential loop of the tokenize activity, on pre-formatted examples.
    const tsPass = () => {
      const t0 = performance.now();
      const out = examples.map((e) => tokenizeForTraining(tok, e, NO_LIMIT).ids);
      return { sec: (performance.now() - t0) / 1000, out };
    };
    const first = tsPass();
    let warm = Infinity;
    for (let i = 0; i < repeats; i++) warm = Math.min(warm, tsPass().sec);
    // Training ids are encode(prompt + answer) + EOS when the prompt is a prefix (always, here).
    const fullIds = first.out.map((ids) => ids.slice(0, -1));
    rows.push({
      name: 'TS tokenizeForTraining',
      threads: 1,
      records: records.length,
      tokens: fullIds.reduce((s, a) => s + a.length, 0),
      firstSec: first.sec,
      warmSec: warm,
      idsSha256: idsHash(fullIds),
    });

    // TS, worker threads: the helper the tokenize activity can call (formatting included).
    const parPass = async () => {
      const t0 = performance.now();
      const res = await tokenizeTrainingParallel(records, { modelPath: model, family, maxLength: NO_LIMIT, threads });
      return { sec: (performance.now() - t0) / 1000, res };
    };
    const pfirst = await parPass();
    let pwarm = Infinity;
    for (let i = 0; i < repeats; i++) pwarm = Math.min(pwarm, (await parPass()).sec);
    const pIds = pfirst.res.examples.map((e) => e.ids.subarray(0, e.ids.length - 1));
    rows.push({
      name: 'TS tokenizeTrainingParallel',
      threads,
      records: records.length,
      tokens: pIds.reduce((s, a) => s + a.length, 0),
      firstSec: pfirst.sec,
      warmSec: pwarm,
      idsSha256: idsHash(pIds),
    });
  } finally {
    closeTokenizePools();
    rmSync(scratch, { recursive: true, force: true });
  }

  const ref = rows[0]!.idsSha256;
  console.log('\n| tokenizer | threads | records/s first | records/s warm | tokens/s warm | same ids as Python |');
  console.log('| --- | ---: | ---: | ---: | ---: | --- |');
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${r.threads} | ${fmt(r.records / r.firstSec)} | ${fmt(r.records / r.warmSec)} | ${fmt(r.tokens / r.warmSec)} | ${r.idsSha256 === ref ? 'yes' : 'NO'} (${fmt(r.tokens)} tokens) |`,
    );
  }
  const [py1, pyN, ts1, tsN] = rows as [Row, Row, Row, Row];
  const ratio = (a: Row, b: Row, k: 'firstSec' | 'warmSec') => (b[k] / a[k]).toFixed(2);
  console.log('\n| comparison | first pass | warm |');
  console.log('| --- | ---: | ---: |');
  console.log(`| TS 1 thread ÷ Python 1 thread | ${ratio(ts1, py1, 'firstSec')}x | ${ratio(ts1, py1, 'warmSec')}x |`);
  console.log(
    `| TS ${threads} workers ÷ Python ${threads} threads | ${ratio(tsN, pyN, 'firstSec')}x | ${ratio(tsN, pyN, 'warmSec')}x |`,
  );
  console.log(
    `| TS ${threads} workers ÷ TS 1 thread | ${ratio(tsN, ts1, 'firstSec')}x | ${ratio(tsN, ts1, 'warmSec')}x |`,
  );
  if (rows.some((r) => r.idsSha256 !== ref)) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
