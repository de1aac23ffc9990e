import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exactMatch, jaccardSet, jaccardStudy, rougeL, tokenF1, lcsLength } from '../../src/metrics';

const close = (actual: number, expected: number) =>
  assert.ok(Math.abs(actual - expected) < 1e-12, `${actual} ≠ ${expected}`);

test('exactMatch compares normalized strings and takes the max over references', () => {
  assert.equal(exactMatch('The Beatles.', ['beatles']), 1);
  assert.equal(exactMatch('Beatles', ['rolling stones', 'the beatles']), 1);
  assert.equal(exactMatch('Beatle', ['beatles']), 0);
});

test('tokenF1: hand-computed', () => {
  // pred [blue, whale, big] vs ref [big, blue, whale, is]: common 3, P = 3/3, R = 3/4, F1 = 6/7.
  close(tokenF1('the blue whale, big', ['big blue whale is']), 6 / 7);
  // multiset: pred [a1 a1 b] — use non-articles: [x x y] vs [x y y]: common 2, P = R = 2/3.
  close(tokenF1('x x y', ['x y y']), 2 / 3);
  assert.equal(tokenF1('cat', ['dog']), 0);
  // max over references: 0 vs 1/(… ) — ref2 [cat, sat]: P = 1, R = 1/2, F1 = 2/3.
  close(tokenF1('cat', ['dog', 'cat sat']), 2 / 3);
});

test('jaccardStudy = common tokens (multiset) / tokens of the longer side', () => {
  // pred [blue, whale, big] vs ref [big, blue, whale, is]: 3 common / 4.
  close(jaccardStudy('The blue whale, big', ['big blue whale is']), 3 / 4);
  // multiset: [x x y] vs [x y y] → common {x:1, y:1} = 2, longer side 3.
  close(jaccardStudy('x x y', ['x y y']), 2 / 3);
  // repetition does not help: [x x x x] vs [x] → 1 / 4.
  close(jaccardStudy('x x x x', ['x']), 1 / 4);
  close(jaccardStudy('paris', ['london', 'paris france']), 1 / 2);
});

test('jaccardSet = |A∩B| / |A∪B| on token sets', () => {
  // {blue, whale, big} vs {big, blue, whale, is}: 3 / 4.
  close(jaccardSet('blue whale big', ['big blue whale is']), 3 / 4);
  // sets ignore duplicates: {x, y} vs {x, y} → 1, whereas the study's variant gives 2/3.
  close(jaccardSet('x x y', ['x y y']), 1);
  // {a1, b} ∪ {b, c}: use words: {red, car} vs {car, blue} → 1 / 3.
  close(jaccardSet('red car', ['car blue']), 1 / 3);
});

test('rougeL: LCS F1, order-sensitive', () => {
  assert.equal(lcsLength(['a', 'b', 'c', 'd'], ['b', 'd', 'c']), 2);
  // pred [police, killed, gunman] vs ref [police, kill, gunman]: LCS 2, P = R = 2/3.
  close(rougeL('police killed the gunman', ['the police kill the gunman']), 2 / 3);
  // [x y z] vs [z y x]: LCS 1 → P = R = 1/3 (token F1 would be 1).
  close(rougeL('x y z', ['z y x']), 1 / 3);
  close(tokenF1('x y z', ['z y x']), 1);
  // pred [w1..w4] vs ref [w1, w4]: LCS 2, P = 1/2, R = 1 → F1 = 2/3.
  close(rougeL('one two three four', ['one four']), 2 / 3);
});

test('rougeL cuts both texts to their first 100 words', () => {
  const long = Array.from({ length: 150 }, (_, i) => `w${i}`).join(' ');
  const first100 = Array.from({ length: 100 }, (_, i) => `w${i}`).join(' ');
  assert.equal(rougeL(long, [first100]), 1);
});

const all = { exactMatch, tokenF1, jaccardStudy, jaccardSet, rougeL };

test('edge case: empty prediction scores 0 against a non-empty reference', () => {
  for (const [name, metric] of Object.entries(all)) assert.equal(metric('', ['paris']), 0, name);
});

test('edge case: empty reference list scores 0', () => {
  for (const [name, metric] of Object.entries(all)) assert.equal(metric('paris', []), 0, name);
});

test('edge case: punctuation-only prediction and reference both normalize to nothing → 1', () => {
  for (const [name, metric] of Object.entries(all)) {
    assert.equal(metric('...', ['?!']), 1, name);
    assert.equal(metric('', ['the']), 1, name);
    assert.equal(metric('!!!', ['paris']), 0, name);
    assert.equal(metric('paris', ['.']), 0, name);
  }
});

test('every metric is 1 on a perfect match and lies in [0, 1]', () => {
  for (const [name, metric] of Object.entries(all)) {
    assert.equal(metric('The Cat sat.', ['cat sat']), 1, name);
    const v = metric('a big red dog barked', ['the red dog', 'barking dog']);
    assert.ok(v >= 0 && v <= 1, `${name}: ${v}`);
  }
});
