/**
 * The large-model code paths that need no GPU, on a random-init ~1B Llama on this CPU (issue #14
 * item 5). Each phase runs as its own process, as the worker runs it, under `/usr/bin/time` for
 * wall time and peak RSS (the largest process of the phase):
 *   build      `python -m trainer tiny --preset 1b` (meta device, written shard by shard)
 *   stage s3   `localModelDir('s3://…')` (activities/model-source.ts) from SeaweedFS on loopback
 *   stage hub  `python -m trainer stage` against test/helpers/hub-server.ts (where merged)
 *   export     `python -m trainer export`: ONNX with external data (> 2 GB in fp32) + parity
 *   train      `python -m trainer train`, LoRA, a few steps, gradient checkpointing off / on
 *   guard      `full` with PEFTGRID_DEVICE_MEMORY_BYTES below what it needs: ModelTooLarge
 *   generate   `python -m trainer generate` (the torch engine) on a few prompts
 * Hub staging is the one phase detected (its branch may not be in this checkout): absent, it prints
 * "skipped: <feature> not available"; nothing is estimated in its place. Gradient checkpointing, the
 * memory guard and the torch engine are called as merged (trainer/spec.py, trainer/resources.py,
 * trainer/generate.py): a failure there is a failure, not a skip. --quick runs the same phases on the
 * 1B shape narrowed and cut to 2 layers (0.12B). --only picks phases (build is always checked).
 *
 *   node --import tsx bench/large-model-cpu.ts [--quick] [--rebuild] [--steps 3] [--length 128] [--keep]
 *        [--only stage,export,train,guard,generate]
 */
import './quiet-logs';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PYTHON, REPO, scratchDir } from '../test/helpers/fixtures';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rebuild: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    steps: { type: 'string' },
    length: { type: 'string' },
    only: { type: 'string' },
    phase: { type: 'string' }, // internal: `stage` runs localModelDir in this child process
    url: { type: 'string' },
  },
});

interface Phase {
  name: string;
  wallS?: number;
  peakRssMB?: number;
  note: string;
}
interface Run {
  code: number;
  wallS: number;
  peakRssMB: number;
  stdout: string;
  stderr: string;
}

/** Runs `cmd` under /usr/bin/time (wall seconds, max RSS in KiB of the largest process). */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const timeFile = join(dir, `time-${Date.now()}.txt`);
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-o', timeFile, '-f', '%e %M', cmd, ...args], {
      cwd: REPO,
      env: { ...process.env, PEFTGRID_LOG_LEVEL: 'warn', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const [wall, kb] = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
      resolve({ code: code ?? 1, wallS: wall!, peakRssMB: kb! / 1024, stdout, stderr });
    });
  });
}

function events(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function dirBytes(d: string): number {
  return readdirSync(d, { withFileTypes: true }).reduce(
    (n, e) => n + (e.isDirectory() ? dirBytes(join(d, e.name)) : statSync(join(d, e.name)).size),
    0,
  );
}

const trainerHelp = () => spawnSync(PYTHON, ['-m', 'trainer', '--help'], { cwd: REPO, encoding: 'utf8' }).stdout;
const fail = (r: Run) =>
  `FAILED (exit ${r.code}): ${(events(r.stdout).find((e) => e.event === 'error')?.message as string) ?? r.stderr.trim().split('\n').at(-1)}`;
const QUICK_SHAPE = {
  hidden_size: 1024,
  intermediate_size: 2816,
  num_hidden_layers: 2,
  num_attention_heads: 16,
  num_key_value_heads: 4,
};
const GB = (b: number) => `${(b / 1e9).toFixed(2)} GB`;
const PHASES = ['stage', 'export', 'train', 'guard', 'generate'] as const;
const only = values.only ? values.only.split(',').map((p) => p.trim()) : [...PHASES];
for (const p of only)
  if (!(PHASES as readonly string[]).includes(p))
    throw new Error(`--only: got '${p}'; expected a comma-separated list of ${PHASES.join(', ')}`);
const wanted = (p: (typeof PHASES)[number]) => only.includes(p);

let dir = '';
const phases: Phase[] = [];
function row(p: Phase): void {
  phases.push(p);
  console.error(`[bench] ${p.name}: ${p.wallS?.toFixed(1) ?? '-'} s, ${p.peakRssMB?.toFixed(0) ?? '-'} MB — ${p.note}`);
}

async function stagePhase(url: string): Promise<void> {
  const { localModelDir } = await import('../activities/model-source');
  process.stdout.write(JSON.stringify({ dir: await localModelDir(url) }) + '\n');
}

async function main(): Promise<void> {
  const quick = values.quick!;
  const steps = Number(values.steps ?? (quick ? 2 : 3));
  const length = Number(values.length ?? (quick ? 64 : 128));
  dir = scratchDir('bench-large-model');
  const model = join(REPO, '.data', 'bench', quick ? 'llama-1b-quick' : 'llama-1b');
  const t0 = Date.now();

  // build
  if (values.rebuild || !existsSync(join(model, '.complete'))) {
    const args = ['-m', 'trainer', 'tiny', '--preset', '1b', '--out', model];
    // --quick: the 1B shape narrowed and cut to 2 layers (0.12B): same code paths, a sanity run in minutes.
    if (quick) args.push('--config', JSON.stringify(QUICK_SHAPE));
    const r = await timed(PYTHON, args);
    if (r.code !== 0) throw new Error(`build: ${fail(r)}`);
    row({
      name: 'build',
      wallS: r.wallS,
      peakRssMB: r.peakRssMB,
      note: r.stderr
        .trim()
        .split('\n')
        .at(-1)!
        .replace(/^\[trainer [\d:]+\] /, ''),
    });
  } else row({ name: 'build', note: `cached ${model} (--rebuild to measure)` });
  const params = events(
    spawnSync(
      PYTHON,
      [
        '-c',
        `import json,sys;from trainer import presets;from transformers import AutoConfig;print(json.dumps({"n":presets.param_count(AutoConfig.from_pretrained(sys.argv[1]))}))`,
        model,
      ],
      {
        cwd: REPO,
        encoding: 'utf8',
      },
    ).stdout,
  )[0]!.n as number;
  console.error(`[bench] model ${model}: ${params.toLocaleString('en')} params, ${GB(dirBytes(model))} on disk`);

  // stage s3
  let staged = model;
  const { startS3Server, weedAvailable } = await import('../test/helpers/s3-server');
  if (!wanted('stage')) row({ name: 'stage s3', note: 'not run (--only)' });
  else if (!weedAvailable()) row({ name: 'stage s3', note: 'skipped: SeaweedFS (weed) not available' });
  else {
    const s3 = await startS3Server(join(dir, 'weed'), 29900);
    try {
      const { openStore } = await import('../src/store');
      const url = `s3://${s3.bucket}/bench-large/model`;
      Object.assign(process.env, s3.env);
      const store = openStore(url);
      const up0 = Date.now();
      for (const f of readdirSync(model).filter((n) => !n.startsWith('.'))) await store.putFile(f, join(model, f));
      const upS = (Date.now() - up0) / 1000;
      const r = await timed(
        process.execPath,
        ['--import', 'tsx', 'bench/large-model-cpu.ts', '--phase', 'stage', '--url', url],
        { ...s3.env, PEFTGRID_DATA_DIR: join(dir, 'worker') },
      );
      if (r.code !== 0) row({ name: 'stage s3', note: fail(r) });
      else {
        staged = (events(r.stdout)[0]!.dir as string) ?? model;
        row({
          name: 'stage s3',
          wallS: r.wallS,
          peakRssMB: r.peakRssMB,
          note: `localModelDir of ${GB(dirBytes(staged))} (upload before it: ${upS.toFixed(1)} s)`,
        });
      }
    } finally {
      await s3.stop();
    }
  }

  // stage hub: python -m trainer stage against test/helpers/hub-server.ts serving the model directory.
  if (!wanted('stage')) row({ name: 'stage hub', note: 'not run (--only)' });
  else if (!/\bstage\b/.test(trainerHelp()) || !existsSync(join(REPO, 'test/helpers/hub-server.ts')))
    row({
      name: 'stage hub',
      note: 'skipped: hub staging (python -m trainer stage, test/helpers/hub-server.ts) not available',
    });
  else {
    const { startHubServer } = await import('../test/helpers/hub-server' as string);
    const hub = await startHubServer({ 'bench/llama-1b': { revisions: { main: model } } });
    try {
      const spec = join(dir, 'stage.json');
      writeFileSync(
        spec,
        JSON.stringify({
          repoId: 'bench/llama-1b',
          revision: null,
          cacheDir: join(dir, 'hub-cache'),
          allowPatterns: null,
        }),
      );
      const r = await timed(PYTHON, ['-m', 'trainer', 'stage', '--spec', spec], {
        HF_ENDPOINT: hub.endpoint,
        HF_TOKEN: hub.token,
        HF_HUB_OFFLINE: '0',
      });
      const done = events(r.stdout).find((e) => e.event === 'staged');
      row({
        name: 'stage hub',
        wallS: r.wallS,
        peakRssMB: r.peakRssMB,
        note:
          r.code === 0 && done
            ? `snapshot_download of ${GB(Number(done.bytes))} at ${String(done.revision).slice(0, 12)}`
            : fail(r),
      });
    } finally {
      await hub.stop();
    }
  }

  // export: the torch model, the exporter's buffers and the parity session each hold weights.
  // Measured here: 4.4x the model inline (a 1.17 GB model peaked at 5.2 GB), 2.1x with external
  // data (3.69 GB peaked at 7.8 GB). Check the host can take it before starting.
  const modelBytes = dirBytes(staged);
  const need = (modelBytes < 1.8e9 ? 4.5 : 2.5) * modelBytes;
  const avail = Number(/MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) * 1024;
  if (!wanted('export')) row({ name: 'export', note: 'not run (--only)' });
  else if (avail < need)
    row({ name: 'export', note: `skipped: needs about ${GB(need)} of free memory, ${GB(avail)} available` });
  else {
    const out = join(dir, 'onnx');
    const spec = join(dir, 'export.json');
    // No maxAbsDiff: the exporter's own relative parity bound for its dtype (trainer/export.py) is what a worker uses.
    writeFileSync(spec, JSON.stringify({ modelPath: staged, outputDir: out, family: 'llama' }));
    const r = await timed(PYTHON, ['-m', 'trainer', 'export', '--spec', spec]);
    const e = events(r.stdout).find((x) => x.event === 'export');
    if (r.code !== 0 || !e) row({ name: 'export', wallS: r.wallS, peakRssMB: r.peakRssMB, note: fail(r) });
    else {
      const files = readdirSync(out)
        .map((f) => `${f} ${GB(statSync(join(out, f)).size)}`)
        .join(', ');
      row({
        name: 'export',
        wallS: r.wallS,
        peakRssMB: r.peakRssMB,
        note: `${String(e.weightDtype)} weights: ${files}; parity max |Δ| ${Number(e.maxAbsDiff).toExponential(2)}, relative ${Number(e.maxRelDiff).toExponential(2)}; graph ${e.exportSeconds} s`,
      });
    }
    if (!values.keep) rmSync(out, { recursive: true, force: true });
  }

  // train: LoRA, gradient checkpointing off / on; the `resources` event (trainer/resources.py) carries
  // the trainer's own peak memory (ru_maxrss on CPU) and MFU (null on CPU: no datasheet peak to divide by).
  const shard = join(dir, 'train.pgtok');
  const train = async (
    name: string,
    method: Record<string, unknown>,
    gradientCheckpointing: boolean | 'auto',
    env: Record<string, string> = {},
  ) => {
    const spec = join(dir, `${name.replace(/\W+/g, '-')}.json`);
    writeFileSync(
      spec,
      JSON.stringify({
        runKey: `bench-${name}`,
        modelPath: staged,
        family: 'llama',
        method,
        trainData: shard,
        outputDir: join(dir, name.replace(/\W+/g, '-')),
        training: {
          maxSteps: steps,
          lr: 1e-4,
          warmupSteps: 0,
          scheduler: 'constant',
          optimizer: 'adamw',
          batchSize: 2,
          checkpointEverySteps: 1000,
          seed: 1,
          maxLength: length,
          device: 'cpu',
          gradientCheckpointing,
        },
        device: 'cpu',
      }),
    );
    return timed(PYTHON, ['-m', 'trainer', 'train', '--spec', spec], env);
  };
  if (wanted('train') || wanted('guard')) {
    const mk = spawnSync(
      PYTHON,
      ['bench/large_model_cpu.py', 'shard', '--model', staged, '--out', shard, '--n', '8', '--length', String(length)],
      { cwd: REPO, encoding: 'utf8' },
    );
    if (mk.status !== 0) throw new Error(`shard: ${mk.stderr}`);
  }
  const lora = { method: 'lora', r: 8, alpha: 16, dropout: 0 };
  for (const gc of [false, true]) {
    const name = `train lora, checkpointing ${gc ? 'on' : 'off'}`;
    if (!wanted('train')) {
      row({ name, note: 'not run (--only)' });
      continue;
    }
    const r = await train(name, lora, gc);
    const ev = events(r.stdout);
    const st = ev.filter((e) => e.event === 'step');
    const res = ev.find((e) => e.event === 'resources');
    const figures = res
      ? `; resources event: peak ${GB(Number(res.peakMemoryBytes))} (${String(res.peakMemorySource)}), ` +
        `MFU ${res.mfu == null ? 'null (CPU)' : `${(100 * Number(res.mfu)).toFixed(1)}%`}, ` +
        `gradientCheckpointing ${String(res.gradientCheckpointing)}`
      : '; no resources event';
    row({
      name,
      wallS: r.wallS,
      peakRssMB: r.peakRssMB,
      note:
        r.code !== 0
          ? fail(r)
          : `${st.length} steps of 2×${length} tokens, last step ${((st.at(-1)?.stepMs as number) / 1000).toFixed(1)} s, ${(st.at(-1)?.tokensPerSec as number).toFixed(1)} tok/s${figures}`,
    });
  }

  // memory guard for full: refused from config.json alone (trainer/resources.py check_fits), before
  // any weight is read, so its wall and RSS are the interpreter's, not the model's.
  if (!wanted('guard')) row({ name: 'guard full', note: 'not run (--only)' });
  else {
    const limit = String(2 * params); // 2 bytes per parameter: less than fp32 weights alone
    const r = await train('guard full', { method: 'full' }, 'auto', { PEFTGRID_DEVICE_MEMORY_BYTES: limit });
    const err = events(r.stdout).find((e) => e.event === 'error');
    row({
      name: 'guard full',
      wallS: r.wallS,
      peakRssMB: r.peakRssMB,
      note:
        err?.type === 'ModelTooLarge' && r.code === 2
          ? `refused (exit ${r.code}, PEFTGRID_DEVICE_MEMORY_BYTES=${limit}): ${String(err.message)}`
          : `NOT refused: exit ${r.code} ${String(err?.type ?? '')} ${String(err?.message ?? '')}`,
    });
  }

  // torch engine: greedy generation, then the reference answers scored (perplexity), as
  // activities/evaluate-torch.ts runs it.
  if (!wanted('generate')) row({ name: 'generate torch', note: 'not run (--only)' });
  else {
    const items = join(dir, 'items.jsonl');
    spawnSync(PYTHON, ['bench/large_model_cpu.py', 'items', '--model', staged, '--out', items, '--n', '4'], {
      cwd: REPO,
    });
    const spec = join(dir, 'generate.json');
    writeFileSync(
      spec,
      JSON.stringify({
        modelPath: staged,
        itemsPath: items,
        maxNewTokens: 8,
        batchSize: 4,
        device: 'cpu',
        score: true,
      }),
    );
    const r = await timed(PYTHON, ['-m', 'trainer', 'generate', '--spec', spec]);
    const ev = events(r.stdout);
    const start = ev.find((e) => e.event === 'generating');
    const g = ev.find((e) => e.event === 'generated');
    const scores = ev.filter((e) => e.event === 'score' && !e.error);
    row({
      name: 'generate torch',
      wallS: r.wallS,
      peakRssMB: r.peakRssMB,
      note:
        r.code === 0 && g
          ? `${String(start?.precision)} on ${String(start?.device)}, 4 prompts × 8 new tokens: ${g.generatedTokens} tokens in ${(Number(g.wallMs) / 1000).toFixed(1)} s (${((Number(g.generatedTokens) * 1000) / Number(g.wallMs)).toFixed(2)} tok/s); ${scores.length} answers scored`
          : fail(r),
    });
  }
  if (!values.keep) rmSync(dir, { recursive: true, force: true });

  console.log(
    `\nmodel: random-init Llama ${quick ? `1b narrowed to ${JSON.stringify(QUICK_SHAPE)} (--quick)` : '1b'}, ${params.toLocaleString('en')} params, float32; ${steps} train steps, batch 2 × ${length} tokens; total ${((Date.now() - t0) / 1000).toFixed(0)} s\n`,
  );
  console.log('| phase | wall s | peak RSS MB | notes |');
  console.log('| --- | ---: | ---: | --- |');
  for (const p of phases)
    console.log(
      `| ${p.name} | ${p.wallS?.toFixed(1) ?? '–'} | ${p.peakRssMB?.toFixed(0) ?? '–'} | ${p.note.replace(/\|/g, '\\|')} |`,
    );
}

(values.phase === 'stage' ? stagePhase(values.url!) : main()).catch((err) => {
  console.error(err);
  process.exit(1);
});
