import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration } from '../../src/common/duration.js';

// duration.ts require()s ms (a cheaper load at PID 1's start than an ESM import): its spellings still parse.
test('ms-style durations: units, long names, spaces, fractions; bare numbers in the unit asked for', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('7s'), 7000);
  assert.equal(parseDuration('1.5h'), 5_400_000);
  assert.equal(parseDuration('2 days'), 172_800_000);
  assert.equal(parseDuration('1w'), 604_800_000);
  assert.equal(parseDuration(' 5m '), 300_000);
  assert.equal(parseDuration('3'), 3);
  assert.equal(parseDuration('3', 's'), 3000);
});

test('not a duration: empty, unknown unit, negative', () => {
  for (const bad of ['', '  ', 'soon', '5 parsecs', '-5s']) assert.equal(parseDuration(bad), undefined, bad);
});
