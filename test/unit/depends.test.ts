import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inCycles, mayStop, parseDepends, startBlockers } from '../../src/supervise/depends.js';

test('parseDepends: one name a line, comments and blanks skipped, duplicates once; a path or two words is an error', () => {
  assert.deepEqual(parseDepends('db\n# the cache\ncache  \n\ndb\n'), ['db', 'cache']);
  assert.deepEqual(parseDepends(''), []);
  assert.throws(() => parseDepends('db\n../etc\n'), /depends line 2 "..\/etc": want one service name/);
  assert.throws(() => parseDepends('db cache\n'), /depends line 1/);
  assert.throws(() => parseDepends('.hidden\n'), /depends line 1/);
});

test('inCycles finds every service on a cycle and none elsewhere', () => {
  const g = new Map([
    ['web', ['db']],
    ['db', []],
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a']],
    ['d', ['a']],
    ['self', ['self']],
    ['orphan', ['ghost']],
  ]);
  assert.deepEqual([...inCycles(g)].sort(), ['a', 'b', 'c', 'self']);
  assert.equal(inCycles(new Map([['x', ['y']], ['y', []]])).size, 0);
});

test('startBlockers: dependencies not ready, missing ones included; a cycle does not block', () => {
  const g = new Map([
    ['web', ['db', 'cache']],
    ['db', []],
    ['cache', []],
    ['jobs', ['ghost']],
  ]);
  const ready = new Set(['db']);
  assert.deepEqual(startBlockers('web', g, (d) => ready.has(d), new Set()), ['cache']);
  ready.add('cache');
  assert.deepEqual(startBlockers('web', g, (d) => ready.has(d), new Set()), []);
  assert.deepEqual(startBlockers('jobs', g, (d) => ready.has(d), new Set()), ['ghost']);
  assert.deepEqual(startBlockers('web', g, () => false, new Set(['web'])), []);
});

test('mayStop: a service stops only once nothing running depends on it', () => {
  const g = new Map([
    ['web', ['db']],
    ['worker', ['db']],
    ['db', []],
  ]);
  const running = new Set(['web', 'worker', 'db']);
  const up = (n: string) => running.has(n);
  assert.equal(mayStop('web', g, up, new Set()), true);
  assert.equal(mayStop('db', g, up, new Set()), false);
  running.delete('web');
  assert.equal(mayStop('db', g, up, new Set()), false, 'worker still runs');
  running.delete('worker');
  assert.equal(mayStop('db', g, up, new Set()), true);
  running.add('web');
  assert.equal(mayStop('db', g, up, new Set(['db', 'web'])), true, 'on a cycle: no order');
});
