/**
 * The table bench/gpu-check.sh prints: one row per run of the grid results it is given, and the
 * torch-vs-onnx agreement of two evaluations of the same model (predictions.jsonl from the store).
 * Training figures are the trainer's `resources` event as RunResult.training carries it (h13): MFU
 * is absent on CPU and prints "n/a", as does any figure a run does not carry; nothing is estimated.
 *
 *   node --import tsx bench/gpu-check-summary.ts --env env.json --store DIR [--resumed N]
 *        [--agree TORCH_RESULT.json --agree ONNX_RESULT.json] RESULT.json...
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { GridResult, RunResult } from '../src/contracts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    env: { type: 'string' },
    store: { type: 'string', default: '.' },
    resumed: { type: 'string' },
    agree: { type: 'string', multiple: true },
  },
});

type Row = RunResult;
type Line = { id: string; prediction: string; sumLogProb: number; tokens: number };

const na = (v: unknown, f: (x: number) => string) => (typeof v === 'number' && Number.isFinite(v) ? f(v) : 'n/a');
const grid = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as GridResult;

function predictions(storeDirs: string[], run: Row): Map<string, Line> | null {
  for (const d of storeDirs) {
    const p = join(d, run.evalPrefix ?? '', 'predictions.jsonl');
    if (!run.evalPrefix || !existsSync(p)) continue;
    const rows = readFileSync(p, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Line);
    return new Map(rows.map((r) => [r.id, r]));
  }
  return null;
}

function main(): void {
  // parseArgs takes one value per --agree: `--agree A B` would leave B a positional and compare nothing.
  if (values.agree && values.agree.length !== 2)
    throw new Error(
      `--agree: got ${values.agree.length} file(s) (${values.agree.join(', ')}); expected two: --agree TORCH_RESULT.json --agree ONNX_RESULT.json`,
    );
  if (values.env) console.log(`environment: ${readFileSync(values.env, 'utf8').trim()}`);
  console.log(
    '\n| grid | run | status | train tok/s | MFU | peak memory GB (source) | checkpointing | eval tok/s | engine | precision | speedup |',
  );
  console.log('| --- | --- | --- | ---: | ---: | ---: | --- | ---: | --- | --- | ---: |');
  let failed = 0;
  for (const file of positionals) {
    const g = grid(file);
    for (const r of g.runs as Row[]) {
      if (r.status !== 'completed') failed++;
      console.log(
        `| ${g.gridId} | ${r.label} (${r.model}) | ${r.status}${r.error ? `: ${r.error.slice(0, 80)}` : ''} | ` +
          `${na(r.training?.tokensPerSec, (x) => x.toFixed(0))} | ${na(r.training?.mfu, (x) => `${(100 * x).toFixed(1)}%`)} | ` +
          `${na(r.training?.peakMemoryBytes, (x) => `${(x / 1e9).toFixed(2)} (${r.training?.peakMemorySource ?? '?'})`)} | ` +
          `${r.training?.gradientCheckpointing === undefined ? 'n/a' : r.training.gradientCheckpointing ? 'on' : 'off'} | ` +
          `${na(r.throughput?.tokensPerSec, (x) => x.toFixed(1))} | ` +
          `${r.engine ?? 'n/a'} | ${r.precision ?? 'n/a'} | ${na(r.throughput?.speedup, (x) => `${x.toFixed(2)}x`)} |`,
      );
    }
  }
  if (values.resumed !== undefined)
    console.log(
      `\nkill test: worker SIGKILLed after the first checkpoint; "resuming from checkpoint" logged ${values.resumed} time(s) by the new worker`,
    );
  const [torchFile, onnxFile] = values.agree ?? [];
  if (torchFile && onnxFile) {
    const pick = (f: string) => (grid(f).runs as Row[]).find((r) => r.method === 'icl' && r.model === 'small');
    const t = pick(torchFile);
    const o = pick(onnxFile);
    const tp = t && predictions([values.store!], t);
    const op = o && predictions([values.store!], o);
    if (!tp || !op) console.log('\ntorch vs onnx: predictions not found in the store');
    else {
      const same = [...tp].filter(([id, p]) => op.get(id)?.prediction === p.prediction).length;
      // Perplexity comes from each engine's own scoring pass: the largest per-item gap in Σ ln p.
      const dLogProb = Math.max(
        0,
        ...[...tp].map(([id, p]) => Math.abs(p.sumLogProb - (op.get(id)?.sumLogProb ?? NaN))),
      );
      console.log(
        `\ntorch (${t!.engine ?? '?'}, ${t!.precision ?? '?'}) vs onnx (${o!.engine ?? '?'}, ${o!.precision ?? '?'}) greedy outputs: ` +
          `${same}/${tp.size} items identical (${((100 * same) / Math.max(1, tp.size)).toFixed(1)}%); ` +
          `max |Δ Σ ln p(answer)| per item ${Number.isFinite(dLogProb) ? dLogProb.toExponential(2) : 'n/a'}`,
      );
    }
  } else console.log('\ntorch vs onnx: not asked (--agree TORCH_RESULT ONNX_RESULT)');
  if (failed) {
    console.log(`\n${failed} run(s) did not complete`);
    process.exitCode = 1;
  }
}

main();
