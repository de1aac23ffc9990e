import { test } from 'node:test';
import assert from 'node:assert/strict';
import { studyPlotSpecs, wrapWords, type TrainingCurve } from '../../src/report/charts';
import { renderSvg } from '../../src/report/vega-svg';
import { modelComparisons, isZeroShot } from '../../src/report/significance';
import { MAX_PAIRWISE_RUNS } from '../../src/metrics/compare';
import { renderMarkdown, significanceTable, toRows } from '../../src/report/render';
import type { RunResult } from '../../src/contracts';

const ci = (estimate: number) => ({ estimate, lower: estimate - 0.1, upper: estimate + 0.1, n: 4 });
const run = (model: string, method: string, label: string, em: number, tps: number): RunResult => ({
  runKey: `${model}__${method}`,
  model,
  method,
  label,
  status: 'completed',
  metrics: { overall: { n: 4, metrics: { exactMatch: ci(em), jaccardStudy: ci(em) } }, byDataset: {} },
  throughput: { tokensPerSec: tps, ttftMsP50: 1, tokenLatencyMsP50: 1, tokenLatencyMsP95: 1, hitLimitFraction: 0 },
});
const results = [
  run('a', 'lora', 'lora r=8', 0.5, 10),
  run('a', 'icl', 'icl shots=0', 0.25, 20),
  run('b', 'lora', 'lora r=8', 0.75, 30),
];
const curve: TrainingCurve = { losses: [4, 3, 2.5], lrs: [1e-4, 2e-4, 1.5e-4] };

test('studyPlotSpecs: figures 1–3 per model and across models, loss and lr curves for trained runs', () => {
  const specs = studyPlotSpecs(results, new Map([['a__lora', curve]]));
  assert.deepEqual(
    specs.map((s) => `${s.file} ${s.metric} ${s.model}`),
    [
      'model-a.jaccard.svg jaccard a',
      'model-a.exact-match.svg exactMatch a',
      'model-a.throughput.svg throughput a',
      'model-a.loss.svg loss a',
      'model-a.lr.svg lr a',
      'run-a.lora-r-8.curves.svg curves a',
      'model-b.jaccard.svg jaccard b',
      'model-b.exact-match.svg exactMatch b',
      'model-b.throughput.svg throughput b',
      'compare.jaccard.svg jaccard null',
      'compare.exact-match.svg exactMatch null',
      'compare.throughput.svg throughput null',
    ],
  );
  const loss = specs.find((s) => s.metric === 'loss')!.spec as unknown as { data: { values: unknown[] } };
  assert.deepEqual(loss.data.values, [
    { run: 'lora r=8', step: 1, loss: 4, lr: 1e-4 },
    { run: 'lora r=8', step: 2, loss: 3, lr: 2e-4 },
    { run: 'lora r=8', step: 3, loss: 2.5, lr: 1.5e-4 },
  ]);
  const em = specs.find((s) => s.file === 'model-a.exact-match.svg')!.spec as unknown as { data: { values: object[] } };
  assert.deepEqual(em.data.values[0], { value: 50, lower: 40, upper: 60, method: 'lora r=8', model: 'a', note: 'n=4' });
  // A log written before lrs were kept: a loss curve, no lr figure.
  const old = studyPlotSpecs(results.slice(0, 1), new Map([['a__lora', { losses: [2, 1] }]]));
  assert.deepEqual(
    old.filter((s) => ['loss', 'lr', 'curves'].includes(s.metric)).map((s) => s.file),
    ['model-a.loss.svg', 'run-a.lora-r-8.curves.svg'],
  );
});

test('renderSvg: vega-lite renders a figure headless, with its title, labels and one point per step', async () => {
  const specs = studyPlotSpecs(results, new Map([['a__lora', curve]]));
  const svg = await renderSvg(specs.find((s) => s.file === 'run-a.lora-r-8.curves.svg')!.spec);
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^]*<\/svg>\n$/);
  assert.match(svg, />a: loss and learning rate per step</);
  assert.match(svg, />lora r=8</);
  assert.match(svg, />training loss \(cross-entropy\)</);
  assert.match(svg, />learning rate</);
  const bars = await renderSvg(specs.find((s) => s.file === 'compare.exact-match.svg')!.spec);
  assert.match(bars, />All models: accuracy \(exact match\) by method</);
  assert.match(bars, />lora r=8</);
  assert.equal(await renderSvg(specs[0]!.spec), await renderSvg(specs[0]!.spec), 'deterministic');
});

test('modelComparisons: against the zero-shot run and pairwise, speculative left out; the table marks Holm-significant cells', () => {
  const items = (em: number[]) =>
    new Map(em.map((v, i) => [`q${i}`, { exactMatch: v, jaccardStudy: v, tokenF1: v }] as const));
  const n = 12;
  const spec = { ...run('a', 'speculative', 'speculative draft=x gamma=3', 0.25, 5), runKey: 'a__spec' };
  const rs = [...results.slice(0, 2), spec];
  const scores = new Map([
    ['a__lora', items(Array.from({ length: n }, () => 1))],
    ['a__icl', items(Array.from({ length: n }, () => 0))],
    ['a__spec', items(Array.from({ length: n }, () => 0))],
  ]);
  assert.ok(isZeroShot(results[1]!) && !isZeroShot({ method: 'icl', label: 'icl shots=3' }));
  const [mc] = modelComparisons(rs, scores);
  assert.equal(mc!.baseline, 'icl shots=0');
  assert.deepEqual(mc!.excluded, ["speculative draft=x gamma=3 (the target's own greedy outputs)"]);
  assert.equal(mc!.comparisons.length, 1);
  const em = mc!.comparisons[0]!.metrics.exactMatch!;
  // 12 discordant pairs all one way: p = 2·½¹² = 0.000488.
  assert.ok(Math.abs(em.p - 2 / 4096) < 1e-12 && em.significant);
  const table = significanceTable(mc!).join('\n');
  assert.match(table, /### a: paired significance/);
  assert.match(
    table,
    /\| lora r=8 vs \*\*icl shots=0\*\* \(baseline\) \| 12 \| \+100\.0 \(12\/0\) \| \*\*<0\.001 \(<0\.001\)\*\* \* \|/,
  );
  assert.match(table, /Not compared: speculative draft=x gamma=3/);
  const md = renderMarkdown('g', toRows(rs), { comparisons: [mc!] });
  assert.ok(md.indexOf('### a: paired significance') > md.indexOf('## a'));
  assert.deepEqual(modelComparisons(results.slice(2), new Map()), [], 'one run: nothing to compare');
});

test('modelComparisons: over MAX_PAIRWISE_RUNS runs, each run against one reference (baseline, else the best), not every pair', () => {
  const items = (v: number) =>
    new Map(
      Array.from(
        { length: 6 },
        (_, i) => [`q${i}`, { exactMatch: i < v ? 1 : 0, jaccardStudy: 0, tokenF1: 0 }] as const,
      ),
    );
  const many = (n: number, zeroShot: boolean) => {
    const rs = Array.from({ length: n }, (_, i) => ({ ...run('m', 'lora', `lora lr=${i}`, 0, 1), runKey: `m__${i}` }));
    if (zeroShot) rs[0] = { ...run('m', 'icl', 'icl shots=0', 0, 1), runKey: 'm__0' };
    const scores = new Map(rs.map((r, i) => [r.runKey, items(i === 5 ? 6 : i % 5)] as const));
    return modelComparisons(rs, scores)[0]!;
  };
  const small = many(MAX_PAIRWISE_RUNS, true);
  assert.equal(
    small.comparisons.length,
    ((MAX_PAIRWISE_RUNS - 1) * MAX_PAIRWISE_RUNS) / 2,
    'every pair up to the limit',
  );
  assert.equal(small.reference, undefined);
  const n = 100;
  const withBase = many(n, true);
  assert.equal(withBase.comparisons.length, n - 1, 'one test per run, not n(n−1)/2 = 4950');
  assert.ok(withBase.comparisons.every((c) => c.vsBaseline && c.b === 'icl shots=0'));
  assert.match(
    significanceTable(withBase).join('\n'),
    /Over 12 runs of this model: each run is compared with the zero-shot baseline only/,
  );
  const noBase = many(n, false);
  assert.equal(noBase.reference, 'lora lr=5', 'the run with the highest exact match');
  assert.ok(noBase.comparisons.every((c) => c.b === 'lora lr=5'));
  assert.equal(noBase.comparisons.length, n - 1);
  const table = significanceTable(noBase).join('\n');
  assert.match(table, /\| lora lr=0 vs \*\*lora lr=5\*\* \(best exact match\) \|/);
  assert.ok(table.length < 40_000, `table of ${table.length} chars`);
});

test('wrapWords: lines of at most the width, a long word on a line of its own', () => {
  assert.deepEqual(wrapWords('adalora initR=12 targetR=8 tinit=5', 16), ['adalora initR=12', 'targetR=8', 'tinit=5']);
  assert.deepEqual(wrapWords('averyveryverylongword x', 5), ['averyveryverylongword', 'x']);
  assert.deepEqual(wrapWords('', 5), []);
});
