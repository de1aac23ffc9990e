import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binomialHalfCdf, holmAdjust, mcnemarExact, pairedBootstrap } from '../../src/metrics/paired';
import { normalQuantile, wilsonInterval } from '../../src/metrics/wilson';
import { summarize } from '../../src/metrics';

const close = (actual: number, expected: number, eps = 1e-9) =>
  assert.ok(Math.abs(actual - expected) < eps, `${actual} ≠ ${expected}`);

test('normalQuantile matches the standard normal table (Acklam: relative error < 1.2e-9)', () => {
  close(normalQuantile(0.975), 1.959963984540054, 3e-9);
  close(normalQuantile(0.995), 2.5758293035489, 3e-9);
  close(normalQuantile(0.5), 0);
  close(normalQuantile(0.001), -3.090232306167813, 1e-8); // the lower tail branch
  assert.throws(() => normalQuantile(1), RangeError);
});

test('Wilson intervals at n = 48 and 12 equal the closed form (p̂ + z²/2n ± z√(p̂q̂/n + z²/4n²)) / (1 + z²/n)', () => {
  // 0/48: the upper end is z²/(n + z²) = 3.8415/51.8415; a percentile bootstrap gave 0.0–0.0.
  const none = wilsonInterval(0, 48);
  assert.equal(none.lower, 0);
  close(none.upper, 0.07410012966611748);
  const all = wilsonInterval(48, 48);
  close(all.lower, 0.9258998703338824);
  assert.equal(all.upper, 1);
  const half = wilsonInterval(24, 48);
  close(half.lower, 0.36389330502679385);
  close(half.upper, 0.6361066949732062);
  const some = wilsonInterval(7, 12);
  close(some.lower, 0.31951131254954973);
  close(some.upper, 0.8067396863412435);
  assert.deepEqual(
    { estimate: some.estimate, n: some.n, method: some.method },
    { estimate: 7 / 12, n: 12, method: 'wilson' },
  );
  assert.ok(wilsonInterval(24, 48, 0.01).lower < half.lower, 'a 99% interval is wider');
  assert.throws(() => wilsonInterval(49, 48), /successes must be an integer in \[0, 48\], got 49/);
  assert.throws(() => wilsonInterval(0, 0), /n must be a positive integer/);
});

test('summarize gives exactMatch a Wilson interval and graded scores a bootstrap one', () => {
  const items = Array.from({ length: 48 }, (_, i) => ({
    dataset: i < 24 ? 'a' : 'b',
    scores: { exactMatch: 0, jaccardStudy: i % 2 ? 0.5 : 0 },
  }));
  const s = summarize(items, { seed: 1 });
  assert.deepEqual(s.overall.metrics.exactMatch, { ...wilsonInterval(0, 48) });
  assert.ok(s.overall.metrics.exactMatch!.upper > 0.07, 'no more "0.0 (0.0–0.0)" at n = 48');
  assert.equal(s.overall.metrics.jaccardStudy!.method, undefined);
  assert.deepEqual(s.byDataset.a!.metrics.exactMatch, wilsonInterval(0, 24));
  // A score that is not 0/1 under a proportion's name falls back to the bootstrap.
  const graded = summarize([{ dataset: 'x', scores: { exactMatch: 0.5 } }]);
  assert.equal(graded.overall.metrics.exactMatch!.method, undefined);
});

test('binomialHalfCdf: exact small cases and no underflow at m = 2000', () => {
  close(binomialHalfCdf(1, 6), 7 / 64);
  close(binomialHalfCdf(3, 10), 176 / 1024);
  assert.equal(binomialHalfCdf(-1, 4), 0);
  assert.equal(binomialHalfCdf(4, 4), 1);
  close(binomialHalfCdf(1000, 2000), 0.5 + 0.5 * 0.017839, 1e-4); // ½ + ½·P(X = m/2)
});

test('McNemar exact p equals the hand computation on the discordant pairs', () => {
  // a right and b wrong on 5 items, the reverse on 1, 4 concordant: p = 2·(C(6,0)+C(6,1))/2⁶ = 14/64.
  const a = [1, 1, 1, 1, 1, 0, 1, 0, 1, 0];
  const b = [0, 0, 0, 0, 0, 1, 1, 0, 1, 0];
  const r = mcnemarExact(a, b);
  assert.deepEqual({ n: r.n, aOnly: r.aOnly, bOnly: r.bOnly }, { n: 10, aOnly: 5, bOnly: 1 });
  close(r.p, 14 / 64);
  close(r.diff, 0.4);
  close(mcnemarExact([1, 1, 1, 1, 1], [0, 0, 0, 0, 0]).p, 2 / 32); // 0 vs 5: 2·½⁵
  // 3 vs 7 discordant: 2·(1 + 10 + 45 + 120)/1024.
  close(
    mcnemarExact([...Array(3).fill(1), ...Array(7).fill(0)], [...Array(3).fill(0), ...Array(7).fill(1)]).p,
    352 / 1024,
  );
  assert.equal(mcnemarExact([1, 0], [1, 0]).p, 1, 'no discordant pair: no evidence');
  assert.equal(mcnemarExact([1, 0, 1], [0, 1, 0]).p, 1, 'capped at 1');
  assert.throws(() => mcnemarExact([1, 0.5], [1, 0]), /scores must be 0 or 1, got 0.5 and 0 at item 1/);
  assert.throws(() => mcnemarExact([1], [1, 0]), /differ in length/);
});

test('paired bootstrap: a clear difference is significant, no difference is not, and it is seeded', () => {
  const b = Array.from({ length: 48 }, (_, i) => (i % 4) / 4);
  const a = b.map((x) => Math.min(1, x + 0.3));
  const r = pairedBootstrap(a, b, { seed: 5 });
  assert.ok(r.diff > 0.2 && r.lower > 0 && r.lower <= r.diff && r.diff <= r.upper, JSON.stringify(r));
  // Every resample has a positive mean: p is the smallest value (count 0 + 1)/(1000 + 1), doubled.
  close(r.p, 2 / 1001);
  assert.deepEqual(pairedBootstrap(a, b, { seed: 5 }), r);
  const same = pairedBootstrap(b, b);
  assert.deepEqual(same, { n: 48, diff: 0, lower: 0, upper: 0, p: 1 });
  // Symmetric noise around 0: far from significant.
  const noise = Array.from({ length: 48 }, (_, i) => (i % 2 ? 0.1 : -0.1));
  const n = pairedBootstrap(
    noise.map((x) => 0.5 + x),
    noise.map(() => 0.5),
    { seed: 9 },
  );
  assert.ok(n.p > 0.5 && n.lower < 0 && n.upper > 0, JSON.stringify(n));
  assert.throws(() => pairedBootstrap([], []), /no paired items/);
});

test('Holm: step-down adjusted p-values in input order, monotone and capped at 1', () => {
  // sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → kept monotone: 0.06.
  const adj = holmAdjust([0.01, 0.04, 0.03, 0.005]);
  [0.03, 0.06, 0.06, 0.02].forEach((e, i) => close(adj[i]!, e));
  assert.deepEqual(holmAdjust([0.5, 0.9]), [1, 1]);
  assert.deepEqual(holmAdjust([]), []);
  assert.deepEqual(holmAdjust([0.2]), [0.2]);
});
