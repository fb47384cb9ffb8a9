import { test } from 'node:test';
import assert from 'node:assert/strict';
import { holdKeepsUp, RESTART_INTO_STAGED, STALE_APPLY_EXITS, staleHoldKeepsUp } from '../../src/supervise/hold.js';

test('no hold: an essential exit ends the container, whatever its code', () => {
  assert.equal(holdKeepsUp(undefined, 0, null), false);
  assert.equal(holdKeepsUp(undefined, 42, null), false);
  assert.equal(holdKeepsUp(undefined, null, 'SIGKILL'), false);
});

test('apply: every exit is the updater\'s to judge', () => {
  assert.equal(holdKeepsUp('apply', 1, null), true);
  assert.equal(holdKeepsUp('apply', 0, null), true);
  assert.equal(holdKeepsUp('apply', null, 'SIGKILL'), true);
});

test('staged: only exit 42 (restart me into the staged release) keeps the container up', () => {
  assert.equal(RESTART_INTO_STAGED, 42);
  assert.equal(holdKeepsUp('staged', 42, null), true);
  assert.equal(holdKeepsUp('staged', 3, null), false);
  assert.equal(holdKeepsUp('staged', 0, null), false);
  assert.equal(holdKeepsUp('staged', null, 'SIGTERM'), false);
});

test('a word molt does not know (or none written yet) changes nothing', () => {
  assert.equal(holdKeepsUp('', 42, null), false);
  assert.equal(holdKeepsUp('APPLY', 1, null), false);
  assert.equal(holdKeepsUp('later', 42, null), false);
});

test('a stale apply (nobody holds the lock) keeps the container up for STALE_APPLY_EXITS exits, then no more', () => {
  assert.ok(STALE_APPLY_EXITS >= 1);
  for (let n = 0; n < STALE_APPLY_EXITS; n++) assert.equal(staleHoldKeepsUp('apply', n), true, `exit ${n + 1}`);
  assert.equal(staleHoldKeepsUp('apply', STALE_APPLY_EXITS), false);
  assert.equal(staleHoldKeepsUp('apply', STALE_APPLY_EXITS + 7), false);
});

test('a stale staged, an emptied file or no file: no grace', () => {
  assert.equal(staleHoldKeepsUp('staged', 0), false);
  assert.equal(staleHoldKeepsUp('', 0), false);
  assert.equal(staleHoldKeepsUp(undefined, 0), false);
});
