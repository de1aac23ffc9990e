import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeReport } from '../../activities/report';
import type { RunResult } from '../../src/contracts';

const scratch = mkdtempSync(join(tmpdir(), 'report-activity-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const ci = (estimate: number) => ({ estimate, lower: estimate - 0.1, upper: estimate + 0.1, n: 10 });
const done = (model: string, label: string, em: number): RunResult => ({
  runKey: `${model}__${label}`,
  model,
  method: label,
  label,
  status: 'completed',
  metrics: {
    overall: { n: 10, metrics: { exactMatch: ci(em), jaccardStudy: ci(em + 0.1) } },
    byDataset: { squad: { n: 10, metrics: { exactMatch: ci(em), jaccardStudy: ci(em + 0.1) } } },
  },
  throughput: {
    tokensPerSec: 100 * (1 + em),
    ttftMsP50: 1,
    tokenLatencyMsP50: 1,
    tokenLatencyMsP95: 1,
    hitLimitFraction: 0,
  },
});
const results: RunResult[] = [
  done('m1', 'lora', 0.5),
  done('m1', 'ia3', 0.3),
  { runKey: 'm2__lora', model: 'm2', method: 'lora', label: 'lora', status: 'failed', error: 'oom' },
  done('m2', 'ia3', 0.2),
];

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p);
      else out[p] = readFileSync(join(dir, p), 'utf8');
    }
  };
  walk('');
  return out;
}

test('writeReport stores the report, both CSVs, the JSON and the figures the report links', async () => {
  const store = join(scratch, 'store');
  const res = await writeReport({ storeUrl: `file://${store}`, gridId: 'grid-1', gridName: 'demo', results });
  assert.equal(res.reportPrefix, 'grids/grid-1');
  const dir = join(store, 'grids', 'grid-1');
  const files = snapshot(dir);
  assert.deepEqual(
    Object.keys(files)
      .filter((f) => !f.startsWith('plots/'))
      .sort(),
    ['report.md', 'results-by-dataset.csv', 'results.csv', 'results.json', 'significance.json'],
  );
  assert.equal(files['report.md'], res.markdown);
  const plotFiles = Object.keys(files)
    .filter((f) => f.startsWith('plots/'))
    .sort();
  assert.equal(plotFiles.length, 9); // 2 models × 3 metrics + 3 comparisons
  assert.deepEqual(res.plotKeys.map((k) => k.slice('grids/grid-1/'.length)).sort(), plotFiles);
  const links = [...res.markdown.matchAll(/\]\((plots\/[^)]+)\)/g)].map((m) => m[1]!);
  assert.deepEqual([...links].sort(), plotFiles);
  for (const l of links) {
    assert.ok(existsSync(join(dir, l)), l);
    assert.match(files[l]!, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^]*<\/svg>\n$/);
  }
  assert.match(files['results-by-dataset.csv']!, /^model,method,label,runKey,dataset,/);
});

test('writeReport is idempotent: a retry rewrites the same bytes', async () => {
  const store = join(scratch, 'store-retry');
  const input = { storeUrl: `file://${store}`, gridId: 'g', gridName: 'demo', results };
  const first = await writeReport(input);
  const before = snapshot(join(store, 'grids', 'g'));
  const second = await writeReport(structuredClone(input));
  assert.deepEqual(second, first);
  assert.deepEqual(snapshot(join(store, 'grids', 'g')), before);
});

test("writeReport reads the runs' training logs and predictions: curves and the paired significance table", async () => {
  const store = join(scratch, 'store-curves');
  const put = (key: string, text: string) => {
    mkdirSync(join(store, key, '..'), { recursive: true });
    writeFileSync(join(store, key), text);
  };
  const n = 10;
  const predictions = (right: (i: number) => boolean) =>
    Array.from({ length: n }, (_, i) => {
      const v = right(i) ? 1 : 0;
      return JSON.stringify({ id: `q${i}`, scores: { exactMatch: v, jaccardStudy: v, tokenF1: v } });
    }).join('\n') + '\n';
  put(
    'runs/m1__lora__eval/eval/predictions.jsonl',
    predictions(() => true),
  );
  put(
    'runs/m1__icl__eval/eval/predictions.jsonl',
    predictions((i) => i < 2),
  );
  put('runs/m1__lora__train/final/training_log.json', JSON.stringify({ losses: [3, 2, 1.5], lrs: [1e-3, 1e-3, 5e-4] }));
  const lora: RunResult = {
    ...done('m1', 'lora', 1),
    evalPrefix: 'runs/m1__lora__eval/eval',
    provenance: {
      configHash: 'x',
      codeVersion: 'v',
      dataHash: 'd',
      modelHash: null,
      seed: 1,
      trainingKey: 'm1__lora__train',
    },
  };
  const icl: RunResult = { ...done('m1', 'icl', 0.2), label: 'icl shots=0', evalPrefix: 'runs/m1__icl__eval/eval' };
  const res = await writeReport({ storeUrl: `file://${store}`, gridId: 'g', gridName: 'demo', results: [lora, icl] });
  const plots = res.plotKeys.map((k) => k.slice('grids/g/plots/'.length));
  assert.deepEqual(
    plots.filter((f) => /loss|lr|curves/.test(f)),
    ['model-m1.loss.svg', 'model-m1.lr.svg', 'run-m1.lora.curves.svg'],
  );
  assert.match(
    res.markdown,
    /### m1: training curves\n\n!\[m1: training loss per step\]\(plots\/model-m1\.loss\.svg\)/,
  );
  // 8 items only lora got right, none the other way: McNemar p = 2·½⁸ = 0.0078, significant after Holm (m = 1).
  assert.match(
    res.markdown,
    /\| lora vs \*\*icl shots=0\*\* \(baseline\) \| 10 \| \+80\.0 \(8\/0\) \| \*\*0\.008 \(0\.008\)\*\* \* \|/,
  );
  const sig = JSON.parse(readFileSync(join(store, 'grids', 'g', 'significance.json'), 'utf8')) as { model: string }[];
  assert.equal(sig[0]!.model, 'm1');
  const svg = readFileSync(join(store, 'grids', 'g', 'plots', 'run-m1.lora.curves.svg'), 'utf8');
  assert.match(svg, />learning rate</);
});
