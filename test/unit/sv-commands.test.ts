import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planFor, type Plan } from '../../src/sv/commands.js';

const send = (letters: string, wait = false, killOnTimeout = false): Plan => ({ act: 'control', letters, wait, killOnTimeout });

test('plain commands send their first letter, and wait only with -v', () => {
  const words: Record<string, string> = {
    up: 'u', down: 'd', once: 'o', pause: 'p', cont: 'c', hup: 'h', alarm: 'a',
    interrupt: 'i', quit: 'q', '1': '1', '2': '2', term: 't', kill: 'k',
  };
  for (const [word, letter] of Object.entries(words)) {
    assert.deepEqual(planFor(word, false), send(letter), word);
    assert.deepEqual(planFor(word, true), send(letter, true), `-v ${word}`);
  }
  // Only the first letter counts.
  assert.deepEqual(planFor('uptown', false), send('u'));
  assert.deepEqual(planFor('terminate', false), send('t'));
  assert.deepEqual(planFor('continue', false), send('c'));
});

test('exit: x, waiting only with -v; X and E also kill on timeout', () => {
  assert.deepEqual(planFor('exit', false), send('x'));
  assert.deepEqual(planFor('exit', true), send('x', true));
  assert.deepEqual(planFor('X', false), send('x', true, true));
  assert.deepEqual(planFor('E', false), send('x', true, true));
  assert.deepEqual(planFor('D', false), send('d', true, true));
  assert.deepEqual(planFor('T', false), send('tc', true, true));
});

test('LSB commands always wait; the force-* ones kill on timeout', () => {
  assert.deepEqual(planFor('start', false), send('u', true));
  assert.deepEqual(planFor('stop', false), send('d', true));
  assert.deepEqual(planFor('restart', false), send('tcu', true));
  assert.deepEqual(planFor('reload', false), send('h', true));
  assert.deepEqual(planFor('shutdown', false), send('x', true));
  assert.deepEqual(planFor('try-restart', false), send('tc', true));
  assert.deepEqual(planFor('force-stop', false), send('d', true, true));
  assert.deepEqual(planFor('force-reload', false), send('tc', true, true));
  assert.deepEqual(planFor('force-restart', false), send('tcu', true, true));
  assert.deepEqual(planFor('force-shutdown', false), send('x', true, true));
  assert.deepEqual(planFor('check', false), { act: 'none', letters: 'C', wait: true, killOnTimeout: false });
});

test('status, and any other word starting with s, prints without waiting even with -v', () => {
  const status: Plan = { act: 'status', letters: 's', wait: false, killOnTimeout: false };
  assert.deepEqual(planFor('status', true), status);
  assert.deepEqual(planFor('stat', false), status);
  assert.deepEqual(planFor('startup', false), status);
});

test('usage errors: unknown letters, inexact r/f words, empty', () => {
  for (const word of ['', 'bogus', 'restarts', 'r', 'force', 'force-up', 'U', 'S', 'wait', '-']) {
    assert.equal(planFor(word, false), undefined, JSON.stringify(word));
  }
});
