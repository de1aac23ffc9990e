import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderCsv, renderMarkdown, toDatasetRows, toRows } from '../../src/report/render';
import { studyPlotSpecs as studyPlots } from '../../src/report/charts';
import type { ConfidenceInterval, GroupSummary } from '../../src/metrics';
import type { RunResult } from '../../src/contracts';

const ci = (estimate: number, lower: number, upper: number, n: number): ConfidenceInterval => ({
  estimate,
  lower,
  upper,
  n,
});
const group = (
  n: number,
  em: [number, number, number],
  jac: [number, number, number],
  ppl?: [number, number, number],
): GroupSummary => ({
  n,
  metrics: {
    // Marked Wilson, as evaluations write them now, so the table shows these bounds as they are.
    exactMatch: { ...ci(...em, n), method: 'wilson' },
    jaccardStudy: ci(...jac, n),
    jaccardSet: ci(jac[0] - 0.1, 0, 1, n),
    tokenF1: ci(0.5, 0.4, 0.6, n),
  },
  ...(ppl ? { perplexity: ci(...ppl, n) } : {}),
});

/** Two models; on `tiny`: an ICL run without perplexity, a LoRA run with it, and a failed run. */
const results: RunResult[] = [
  {
    runKey: 'tiny__icl__1',
    model: 'tiny',
    method: 'icl',
    label: 'icl shots=3',
    status: 'completed',
    metrics: {
      overall: group(30, [0.2, 0.1, 0.3], [0.3, 0.2, 0.4]),
      byDataset: {
        squad: group(20, [0.25, 0.1, 0.4], [0.35, 0.2, 0.5]),
        boolq: group(10, [0.1, 0, 0.3], [0.2, 0.05, 0.35]),
      },
    },
    throughput: {
      tokensPerSec: 812.5,
      ttftMsP50: 10,
      tokenLatencyMsP50: 2,
      tokenLatencyMsP95: 3,
      hitLimitFraction: 0.05,
    },
  },
  {
    runKey: 'tiny__lora__2',
    model: 'tiny',
    method: 'lora',
    label: 'lora r=8 | a=16',
    status: 'completed',
    metrics: {
      overall: group(30, [0.5, 0.4, 0.6], [0.6, 0.5, 0.7], [3.21, 2.9, 3.6]),
      byDataset: {
        boolq: group(10, [0.7, 0.4, 0.9], [0.75, 0.5, 0.95], [2.5, 2.1, 3]),
        squad: group(20, [0.4, 0.2, 0.6], [0.525, 0.4, 0.65], [3.75, 3.2, 4.4]),
      },
    },
    throughput: { tokensPerSec: 790, ttftMsP50: 11, tokenLatencyMsP50: 2, tokenLatencyMsP95: 3, hitLimitFraction: 0 },
    training: { steps: 200, trainLoss: 1.234, trainPerplexity: 3.43, tokensPerSec: 5000 },
  },
  {
    runKey: 'tiny__ia3__3',
    model: 'tiny',
    method: 'ia3',
    label: 'ia3',
    status: 'failed',
    error: 'trainer exited 2: unsupported',
  },
  {
    runKey: 'other__icl__4',
    model: 'other',
    method: 'icl',
    label: 'icl shots=3',
    status: 'completed',
    metrics: {
      overall: group(5, [0.4, 0.2, 0.6], [0.5, 0.3, 0.7]),
      byDataset: { squad: group(5, [0.4, 0.2, 0.6], [0.5, 0.3, 0.7]) },
    },
  },
];

test('toDatasetRows: one row per run and dataset with the intervals; failed runs add none', () => {
  const rows = toDatasetRows(results);
  assert.deepEqual(
    rows.map((r) => `${r.runKey}/${r.dataset}`),
    ['tiny__icl__1/squad', 'tiny__icl__1/boolq', 'tiny__lora__2/boolq', 'tiny__lora__2/squad', 'other__icl__4/squad'],
  );
  assert.deepEqual(rows[3], {
    model: 'tiny',
    method: 'lora',
    label: 'lora r=8 | a=16',
    runKey: 'tiny__lora__2',
    dataset: 'squad',
    n: 20,
    exactMatch: 0.4,
    exactMatchLow: 0.2,
    exactMatchHigh: 0.6,
    jaccard: 0.525,
    jaccardLow: 0.4,
    jaccardHigh: 0.65,
    perplexity: 3.75,
    perplexityLow: 3.2,
    perplexityHigh: 4.4,
  });
  assert.equal(rows[0]!.perplexity, null);
});

test('renderMarkdown: the per-dataset table, dataset-major, with 95% intervals and held-out perplexity', () => {
  const md = renderMarkdown('grid <1>', toRows(results), { datasets: toDatasetRows(results) });
  const section = md.slice(md.indexOf('### tiny: per dataset'), md.indexOf('## other'));
  assert.equal(
    section,
    [
      '### tiny: per dataset',
      '',
      '| dataset | method | n | exact match % (95% CI) | Jaccard % (95% CI) | held-out ppl (95% CI) |',
      '| --- | --- | --: | --: | --: | --: |',
      '| boolq | icl shots=3 | 10 | 10.0 (0.0–30.0) | 20.0 (5.0–35.0) | – |',
      '| boolq | lora r=8 \\| a=16 | 10 | 70.0 (40.0–90.0) | 75.0 (50.0–95.0) | 2.50 (2.10–3.00) |',
      '| squad | icl shots=3 | 20 | 25.0 (10.0–40.0) | 35.0 (20.0–50.0) | – |',
      '| squad | lora r=8 \\| a=16 | 20 | 40.0 (20.0–60.0) | 52.5 (40.0–65.0) | 3.75 (3.20–4.40) |',
      '',
      '',
    ].join('\n'),
  );
  // No run of `other` has perplexity: no perplexity column there.
  const other = md.slice(md.indexOf('### other: per dataset'));
  assert.match(other, /\| dataset \| method \| n \| exact match % \(95% CI\) \| Jaccard % \(95% CI\) \|\n/);
  assert.match(other, /\| squad \| icl shots=3 \| 5 \| 40\.0 \(20\.0–60\.0\) \| 50\.0 \(30\.0–70\.0\) \|\n/);
});

test('renderMarkdown: the run table gains Jaccard intervals and the held-out perplexity column where present', () => {
  const md = renderMarkdown('g', toRows(results));
  const lines = md.split('\n');
  const tinyHeader = lines[lines.indexOf('## tiny') + 2]!;
  assert.match(tinyHeader, /\| Jaccard % \(95% CI\) \|.*\| train ppl \| held-out ppl \(95% CI\) \|$/);
  assert.ok(
    lines.includes(
      '| lora r=8 \\| a=16 | completed | onnx · fp32 | 30 | 50.0 (40.0–60.0) | 60.0 (50.0–70.0) | 50.0 | 50.0 | – | 790.0 | 0.0 | 1.234 | 3.43 | 3.21 (2.90–3.60) |',
    ),
  );
  assert.ok(
    lines.includes(
      '| icl shots=3 | completed | onnx · fp32 | 30 | 20.0 (10.0–30.0) | 30.0 (20.0–40.0) | 20.0 | 50.0 | – | 812.5 | 5.0 | – | – | – |',
    ),
  );
  assert.ok(lines.includes('| ia3 | failed | – | – | – | – | – | – | – | – | – | – | – | – |'));
  const otherHeader = lines[lines.indexOf('## other') + 2]!;
  assert.match(otherHeader, /\| train ppl \|$/);
  assert.ok(lines.includes('- `tiny__ia3__3` (failed): trainer exited 2: unsupported'));
  // Without extras: neither per-dataset tables nor figures (what the CLI prints stays as it was).
  assert.doesNotMatch(md, /per dataset|figures|!\[/);
});

test('renderMarkdown: each row says which engine and precision produced it; QLoRA on its 4-bit base is explained', () => {
  // Results saved before the torch engine carry neither field: they were onnx, fp32 (the rows above).
  const torchRun = {
    ...results.find((r) => r.status === 'completed')!,
    engine: 'torch' as const,
    precision: 'nf4-base',
  };
  const md = renderMarkdown('g', toRows([torchRun]));
  assert.match(md, /\| completed \| torch · nf4-base \| 30 \|/);
  assert.match(md, /nf4-base: QLoRA evaluated with its adapter unmerged on the 4-bit NF4 base it trained on/);
  assert.doesNotMatch(renderMarkdown('g', toRows(results)), /nf4-base/);
  const [row] = toRows([{ ...torchRun, precision: 'bf16' }]);
  assert.deepEqual([row!.engine, row!.precision], ['torch', 'bf16']);
});

test('renderMarkdown links every figure under plots/, per model and across models', () => {
  const plots = studyPlots(results);
  const md = renderMarkdown('g', toRows(results), { plots });
  for (const p of plots) assert.ok(md.includes(`![${p.title}](plots/${p.file})`), p.file);
  const tinyFigures = md.slice(md.indexOf('### tiny: figures'), md.indexOf('## other'));
  assert.equal((tinyFigures.match(/!\[/g) ?? []).length, 3);
  assert.ok(md.indexOf('## All models') > md.indexOf('### other: figures'));
  assert.match(md, /!\[All models: average Jaccard by method\]\(plots\/compare\.jaccard\.svg\)/);
  const odd = renderMarkdown('g', toRows(results), { plots: [{ file: 'a b(1).svg', title: 'x [y]', model: null }] });
  assert.match(odd, /!\[x \\\[y\\\]\]\(plots\/a%20b%281%29\.svg\)/);
});

test('exact match saved with a bootstrap interval (before Wilson) is shown with its Wilson interval', () => {
  const old: RunResult = {
    runKey: 'old__icl',
    model: 'old',
    method: 'icl',
    label: 'icl shots=0',
    status: 'completed',
    metrics: { overall: { n: 48, metrics: { exactMatch: ci(0, 0, 0, 48) } }, byDataset: {} },
  };
  const [row] = toRows([old]);
  assert.deepEqual([row!.exactMatch, row!.exactMatchLow], [0, 0]);
  assert.ok(Math.abs(row!.exactMatchHigh! - 0.0741001296661) < 1e-9, String(row!.exactMatchHigh));
  assert.match(renderMarkdown('g', [row!]), /\| 48 \| 0\.0 \(0\.0–7\.4\) \|/);
  assert.match(renderMarkdown('g', [row!]), /Exact-match intervals are 95% Wilson score intervals/);
});

test('renderCsv: the run columns start as before; per-dataset rows render with their own header', () => {
  const csv = renderCsv(toRows(results)).split('\n');
  assert.match(
    csv[0]!,
    /^model,method,label,runKey,status,n,exactMatch,exactMatchLow,exactMatchHigh,jaccard,jaccardLow,jaccardHigh,/,
  );
  // engine and precision are appended, so columns read by position before them keep their place.
  assert.match(
    csv[0]!,
    /,perplexity,perplexityLow,perplexityHigh,error,engine,precision,precisionAgreement,precisionBelowThreshold$/,
  );
  const ds = renderCsv(toDatasetRows(results)).split('\n');
  assert.equal(
    ds[0],
    'model,method,label,runKey,dataset,n,exactMatch,exactMatchLow,exactMatchHigh,jaccard,jaccardLow,jaccardHigh,perplexity,perplexityLow,perplexityHigh',
  );
  assert.equal(ds[3], 'tiny,lora,lora r=8 | a=16,tiny__lora__2,boolq,10,0.7,0.4,0.9,0.75,0.5,0.95,2.5,2.1,3');
  assert.equal(ds.length, 7); // header, 5 rows, trailing newline
  assert.equal(renderCsv([]), '');
});

test('rendering is deterministic', () => {
  const render = (rs: RunResult[]) =>
    renderMarkdown('g', toRows(rs), { datasets: toDatasetRows(rs), plots: studyPlots(rs) });
  assert.equal(render(results), render(structuredClone(results)));
});

test('renderMarkdown: speculative runs get their own table with acceptance, both throughputs and the speedup', () => {
  const spec: RunResult = {
    runKey: 'tiny__spec__5',
    model: 'tiny',
    method: 'speculative',
    label: 'speculative draft=small gamma=3',
    status: 'completed',
    metrics: results[0]!.metrics!,
    throughput: {
      tokensPerSec: 30,
      ttftMsP50: 0,
      tokenLatencyMsP50: 0,
      tokenLatencyMsP95: 0,
      hitLimitFraction: 0,
      acceptanceRate: 0.625,
      targetOnlyTokensPerSec: 20,
      speedup: 1.5,
      tokensPerTargetPass: 2.25,
    },
  };
  const md = renderMarkdown('g', toRows([...results, spec]));
  const section = md.slice(md.indexOf('### tiny: speculative decoding'), md.indexOf('## other'));
  assert.match(section, /\| speculative draft=small gamma=3 \| 62\.5 \| 2\.25 \| 30\.0 \| 20\.0 \| 1\.50× \|/);
  assert.equal(
    renderMarkdown('g', toRows(results)).includes('speculative decoding'),
    false,
    'no table without speculative runs',
  );
  assert.match(renderCsv(toRows([spec])).split('\n')[1]!, /,0\.625,20,1\.5,2\.25,/);
});

test('renderMarkdown: an int8 run next to its fp32 twin shows the exact-match delta; low parity is marked', () => {
  const fp32 = results.find((r) => r.status === 'completed')!;
  const em = fp32.metrics!.overall.metrics.exactMatch!;
  const int8: RunResult = {
    ...fp32,
    runKey: `${fp32.runKey}-int8`,
    label: `${fp32.label} · int8`,
    precision: 'int8',
    precisionParity: { agreement: 0.75, threshold: 0.9, belowThreshold: true, tokens: 64 },
    metrics: {
      ...fp32.metrics!,
      overall: {
        ...fp32.metrics!.overall,
        metrics: { ...fp32.metrics!.overall.metrics, exactMatch: { ...em, estimate: em.estimate - 0.05 } },
      },
    },
  };
  const md = renderMarkdown('g', toRows([fp32, int8]));
  assert.match(md, /\| onnx · int8 \(below parity\) \|/);
  assert.match(md, /### tiny: int8 vs fp32/);
  const row = md.split('\n').find((l) => l.startsWith(`| ${fp32.label} | 30 |`))!;
  assert.match(row, /\| −5\.0 \|/, row);
  assert.match(row, /\| 75\.0% \*\*below threshold\*\* \|$/, row);
  // Without its fp32 twin there is no delta to show; without parity trouble, no mark.
  assert.doesNotMatch(renderMarkdown('g', toRows([int8])), /int8 vs fp32/);
  const fine = { ...int8, precisionParity: { ...int8.precisionParity!, agreement: 0.95, belowThreshold: false } };
  assert.doesNotMatch(renderMarkdown('g', toRows([fp32, fine])), /below parity|below threshold\*\*/);
});
