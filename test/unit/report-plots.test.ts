import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeXml, renderBarChart, studyPlots, wrapText, type PlotFile } from '../../src/report/plots';
import type { ConfidenceInterval } from '../../src/metrics';
import type { RunResult } from '../../src/contracts';

/** Clamped like a real bootstrap interval of scores in [0, 1]. */
const ci = (estimate: number, half = 0.05): ConfidenceInterval => ({
  estimate,
  lower: Math.max(0, estimate - half),
  upper: Math.min(1, estimate + half),
  n: 100,
});

function run(model: string, label: string, em: number, jaccard: number, tokensPerSec: number): RunResult {
  return {
    runKey: `${model}__${label}`,
    model,
    method: label.split(' ')[0]!,
    label,
    status: 'completed',
    metrics: { overall: { n: 100, metrics: { exactMatch: ci(em), jaccardStudy: ci(jaccard) } }, byDataset: {} },
    throughput: { tokensPerSec, ttftMsP50: 12, tokenLatencyMsP50: 4, tokenLatencyMsP95: 7, hitLimitFraction: 0.1 },
  };
}

const failed = (model: string, label: string): RunResult => ({
  runKey: `${model}__${label}`,
  model,
  method: label.split(' ')[0]!,
  label,
  status: 'failed',
  error: 'trainer exited 2',
});

const NASTY = 'lora <r=8> & "x"';
const results: RunResult[] = [
  run('m-a', 'icl shots=0', 0.2, 0.3, 1000),
  run('m-a', NASTY, 0.4, 0.6, 500),
  failed('m-a', 'ia3'),
  run('m-b', 'icl shots=0', 0.1, 0.25, 800),
  run('m-b', NASTY, 0.3, 0.45, 400),
  run('m-b', 'ia3', 0.25, 0.35, 700),
];

/**
 * A strict little XML well-formedness check: tags balance, attribute values are quoted, and text
 * and attributes use `&` only in entities and never a raw `<`. Returns the element names in order.
 */
function checkXml(svg: string): string[] {
  const names: string[] = [];
  const stack: string[] = [];
  const entity = /&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g;
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y;
  let i = 0;
  while (i < svg.length) {
    const lt = svg.indexOf('<', i);
    const text = svg.slice(i, lt === -1 ? svg.length : lt);
    assert.ok(!text.replace(entity, '').includes('&'), `raw & in text ${JSON.stringify(text)}`);
    assert.ok(!text.includes('>'), `raw > in text ${JSON.stringify(text)}`);
    if (lt === -1) break;
    tag.lastIndex = lt;
    const m = tag.exec(svg);
    assert.ok(m, `malformed tag at ${lt}: ${JSON.stringify(svg.slice(lt, lt + 60))}`);
    const [whole, close, name, attrs, selfClose] = m;
    assert.ok(!attrs!.replace(entity, '').includes('&'), `raw & in attributes of <${name}>`);
    if (close) assert.equal(stack.pop(), name, `</${name}> closes the wrong element`);
    else {
      names.push(name!);
      if (!selfClose) stack.push(name!);
    }
    i = lt + whole.length;
  }
  assert.deepEqual(stack, [], 'unclosed elements');
  assert.equal(names[0], 'svg');
  return names;
}

const count = (s: string, needle: string) => s.split(needle).length - 1;
const byFile = (plots: PlotFile[], file: string) => {
  const p = plots.find((x) => x.file === file);
  assert.ok(p, `no ${file} in ${plots.map((x) => x.file).join(', ')}`);
  return p;
};
const barHeights = (svg: string) =>
  [...svg.matchAll(/<rect class="bar"[^>]* height="([\d.]+)"/g)].map((m) => Number(m[1]));

test('studyPlots: per model jaccard / exact match / throughput, then the comparison across models', () => {
  const plots = studyPlots(results);
  assert.deepEqual(
    plots.map((p) => p.file),
    [
      'model-m-a.jaccard.svg',
      'model-m-a.exact-match.svg',
      'model-m-a.throughput.svg',
      'model-m-b.jaccard.svg',
      'model-m-b.exact-match.svg',
      'model-m-b.throughput.svg',
      'compare.jaccard.svg',
      'compare.exact-match.svg',
      'compare.throughput.svg',
    ],
  );
  assert.deepEqual(
    plots.map((p) => p.model),
    ['m-a', 'm-a', 'm-a', 'm-b', 'm-b', 'm-b', null, null, null],
  );
  for (const p of plots) checkXml(p.svg);
});

test('a failed run shows as "n/a" with no bar; completed runs get a bar, a value label and an interval', () => {
  const plots = studyPlots(results);
  const a = byFile(plots, 'model-m-a.jaccard.svg').svg;
  assert.equal(count(a, 'class="bar"'), 2);
  assert.equal(count(a, 'class="ci"'), 2);
  assert.equal(count(a, 'class="na"'), 1);
  assert.match(a, /<text class="na"[^>]*><title>m-a · ia3: failed<\/title>n\/a<\/text>/);
  assert.match(a, />30\.0<\/text>/);
  assert.match(a, />60\.0<\/text>/);
  assert.match(a, /n\/a: no value/);
  // Bars are proportional to the values: 30% and 60%.
  const [h30, h60] = barHeights(a);
  assert.ok(Math.abs(h60! / h30! - 2) < 0.01, `${h30} vs ${h60}`);

  const b = byFile(plots, 'model-m-b.exact-match.svg').svg;
  assert.equal(count(b, 'class="bar"'), 3);
  assert.equal(count(b, 'class="na"'), 0);
  assert.doesNotMatch(b, /n\/a: no value/);

  // Throughput has no interval, so no whiskers and no interval note.
  const t = byFile(plots, 'model-m-a.throughput.svg').svg;
  assert.equal(count(t, 'class="ci"'), 0);
  assert.doesNotMatch(t, /Error bars/);
  assert.match(t, />1000<\/text>/);
  assert.match(t, /generated tokens \/ s/);
});

test('the comparison has a bar per model in each method group and a legend entry per model', () => {
  const c = byFile(studyPlots(results), 'compare.exact-match.svg').svg;
  assert.equal(count(c, 'class="bar"'), 5); // 3 methods × 2 models, one failed
  assert.equal(count(c, 'class="na"'), 1);
  assert.equal(count(c, 'class="legend"'), 2);
  assert.match(c, /<g class="legend">.*>m-a<\/text><\/g>/);
  assert.match(c, /<g class="legend">.*>m-b<\/text><\/g>/);
  assert.equal(count(c, 'class="category"'), 3);
  assert.match(c, /All models: accuracy \(exact match\) by method/);
});

test('method names are escaped in labels and tooltips', () => {
  for (const p of studyPlots(results)) {
    checkXml(p.svg);
    assert.ok(!p.svg.includes(NASTY), p.file);
    assert.ok(!p.svg.includes('<r=8>'), p.file);
  }
  const a = byFile(studyPlots(results), 'model-m-a.jaccard.svg').svg;
  // The category label may wrap into several tspans; the tooltip holds it whole.
  assert.ok(a.includes('m-a · lora &lt;r=8&gt; &amp; &quot;x&quot;: 60.0'), 'escaped tooltip');
  assert.equal(escapeXml(`<a & "b" 'c'>\u0001`), '&lt;a &amp; &quot;b&quot; &#39;c&#39;&gt;');
  const chart = renderBarChart({
    title: 'T & <t>',
    xLabel: 'x"',
    yLabel: "y'",
    categories: ['a&b'],
    series: [{ name: '<s>', values: [{ value: 1 }] }],
  });
  checkXml(chart);
  assert.match(chart, /<title>T &amp; &lt;t&gt;<\/title>/);
});

test('output is deterministic: same input, same bytes, independent of object identity', () => {
  const a = studyPlots(results);
  const b = studyPlots(structuredClone(results));
  assert.deepEqual(a, b);
  // Coordinates carry at most two decimals: float noise never reaches the bytes.
  for (const p of a) assert.doesNotMatch(p.svg, /="-?\d+\.\d{3,}"/, p.file);
});

const ticks = (svg: string) =>
  [...svg.matchAll(/<text x="\d+" y="[\d.]+" font-size="12" text-anchor="end"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);

test('one model: no comparison figures; y ticks are round and cover the data', () => {
  const plots = studyPlots([run('solo', 'full', 0.97, 0.99, 10), run('solo', 'ia3', 0.5, 0.9, 1234)]);
  assert.deepEqual(
    plots.map((p) => p.file),
    ['model-solo.jaccard.svg', 'model-solo.exact-match.svg', 'model-solo.throughput.svg'],
  );
  assert.deepEqual(ticks(plots[0]!.svg), ['0', '20', '40', '60', '80', '100']);
  assert.deepEqual(ticks(plots[2]!.svg), ['0', '500', '1000', '1500']);
  const small = renderBarChart({
    title: 't',
    xLabel: 'x',
    yLabel: 'y',
    categories: ['a'],
    series: [{ name: 's', values: [{ value: 0.3 }] }],
  });
  assert.deepEqual(ticks(small), ['0.0', '0.1', '0.2', '0.3']);
});

test('edge cases: no runs, all runs failed, repeated labels, non-finite values', () => {
  assert.deepEqual(studyPlots([]), []);
  const empty = renderBarChart({ title: 't', xLabel: 'x', yLabel: 'y', categories: [], series: [] });
  checkXml(empty);
  assert.match(empty, /no runs/);

  const allFailed = studyPlots([failed('m', 'lora'), failed('m', 'ia3')]);
  for (const p of allFailed) {
    checkXml(p.svg);
    assert.equal(count(p.svg, 'class="bar"'), 0);
    assert.equal(count(p.svg, 'class="na"'), 2);
  }

  const twice = studyPlots([run('m', 'lora', 0.1, 0.2, 5), run('m', 'lora', 0.3, 0.4, 6)]);
  assert.match(twice[0]!.svg, />lora #2</);
  assert.equal(count(twice[0]!.svg, 'class="bar"'), 2);

  const chart = renderBarChart({
    title: 't',
    xLabel: 'x',
    yLabel: 'y',
    categories: ['a', 'b'],
    series: [{ name: 's', values: [{ value: Number.NaN }, { value: Number.POSITIVE_INFINITY }] }],
  });
  checkXml(chart);
  assert.equal(count(chart, 'class="bar"'), 0);
  assert.equal(count(chart, 'class="na"'), 2);
});

test('wrapText keeps words whole where it can and splits long ones after a separator', () => {
  assert.deepEqual(wrapText('lora r=8 alpha=16 dropout=0.05', 12), ['lora r=8', 'alpha=16', 'dropout=0.05']);
  assert.deepEqual(wrapText('numVirtualTokens=20', 18), ['numVirtualTokens=', '20']);
  assert.deepEqual(wrapText('numVirtualTokens=20', 10), ['numVirtual', 'Tokens=20']);
  assert.deepEqual(wrapText('prompt_tuning', 8), ['prompt_', 'tuning']);
  assert.deepEqual(wrapText('', 10), ['']);
});
