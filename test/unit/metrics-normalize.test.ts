import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeAnswer, normalizedTokens } from '../../src/metrics';

test('normalizeAnswer lowercases, strips punctuation and articles, collapses whitespace', () => {
  assert.equal(normalizeAnswer('The  Eiffel Tower!'), 'eiffel tower');
  assert.equal(normalizeAnswer('  An apple, a day.  '), 'apple day');
  assert.equal(normalizeAnswer('Theatre is an art'), 'theatre is art'); // "the" inside a word stays
  assert.equal(normalizeAnswer("Rock'n'roll"), 'rocknroll'); // punctuation is deleted, not spaced
  assert.equal(normalizeAnswer('the\tcat\nsat'), 'cat sat');
});

test('normalizeAnswer removes punctuation before articles, like SQuAD', () => {
  // "a." → "a" → removed; "(the)" → "the" → removed.
  assert.equal(normalizeAnswer('a. (the) end'), 'end');
});

test('normalizeAnswer uses Unicode word boundaries like Python re', () => {
  // In Python "éa" has no boundary before "a", so the "a" survives.
  assert.equal(normalizeAnswer('éa a b'), 'éa b');
  assert.equal(normalizeAnswer('Ça va'), 'ça va');
});

test('edge cases: empty, punctuation-only and article-only strings normalize to nothing', () => {
  assert.equal(normalizeAnswer(''), '');
  assert.equal(normalizeAnswer('?!...'), '');
  assert.equal(normalizeAnswer('The a an'), '');
  assert.deepEqual(normalizedTokens('  '), []);
  assert.deepEqual(normalizedTokens('New  York, the city'), ['new', 'york', 'city']);
});
