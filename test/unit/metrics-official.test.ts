import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { matchOption, officialScore, optionMatchedAccuracy } from '../../src/metrics';

describe('UnifiedQA official metric per format', () => {
  const choices = ['elbow', 'yellow', 'april', 'saw'];
  it('maps generated text to the most-overlapping option', () => {
    assert.equal(matchOption('the answer is april', choices), 2);
    assert.equal(matchOption('(c) april', choices), 2);
    assert.equal(matchOption('banana', choices), -1);
  });
  it('credits an option match only when that option is a reference', () => {
    assert.equal(optionMatchedAccuracy('april, of course', choices, ['april']), 1);
    assert.equal(optionMatchedAccuracy('yellow', choices, ['april']), 0);
    assert.equal(optionMatchedAccuracy('', choices, ['april']), 0);
    assert.equal(optionMatchedAccuracy('banana', choices, ['april']), 0);
  });
  it('picks the metric by format', () => {
    assert.equal(officialScore('yes_no', 'Yes.', ['yes']), 1);
    assert.equal(officialScore('multiple_choice', 'it is april', ['april'], choices), 1);
    // extractive: token F1 of "in lyon" vs "lyon" = 2·(1/1·1/2)/(1/1+1/2) = 2/3 ("in" is not an article)
    assert.ok(Math.abs(officialScore('extractive', 'in lyon', ['lyon']) - 2 / 3) < 1e-12);
    // abstractive: ROUGE-L of "from stone" vs "stone" = LCS 1, P 1/2, R 1 → F 2/3
    assert.ok(Math.abs(officialScore('abstractive', 'from stone', ['stone']) - 2 / 3) < 0.01);
  });
});
