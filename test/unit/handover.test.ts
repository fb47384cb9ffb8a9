import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatNext, initialNext, parseNext, stepNext, type NextState } from '../../src/supervise/handover.js';

const N = (mainRunning = true) => ({ type: 'control' as const, letter: 'N' as const, mainRunning });
const P = { type: 'control' as const, letter: 'P' as const, mainRunning: true };
const K = { type: 'control' as const, letter: 'K' as const, mainRunning: true };

test('N starts a next instance only beside a running service, one at a time', () => {
  assert.deepEqual(stepNext(initialNext(), N(false)), { state: initialNext(), actions: ['refuse'] });
  const started = stepNext(initialNext(), N());
  assert.deepEqual(started, { state: { phase: 'run', generation: 1 }, actions: ['spawn'] });
  assert.deepEqual(stepNext(started.state, N()), { state: started.state, actions: [] });
});

test('P promotes a running next instance; P and K without one do nothing', () => {
  const run: NextState = { phase: 'run', generation: 3 };
  assert.deepEqual(stepNext(run, P), { state: { phase: 'none', generation: 3 }, actions: ['promote'] });
  for (const idle of [initialNext(), { phase: 'down', generation: 2 } as NextState]) {
    assert.deepEqual(stepNext(idle, P).actions, []);
    assert.deepEqual(stepNext(idle, K).actions, []);
  }
});

test('K and the service going down stop it; its exit leaves it down, and a new N counts a new generation', () => {
  const run: NextState = { phase: 'run', generation: 1 };
  const stopping = stepNext(run, K);
  assert.deepEqual(stopping, { state: { phase: 'stopping', generation: 1 }, actions: ['stop'] });
  assert.deepEqual(stepNext(stopping.state, P).actions, [], 'a stopping instance is not promoted');
  assert.deepEqual(stepNext(run, { type: 'main-stopping' }), stopping);
  const down = stepNext(stopping.state, { type: 'exited' }).state;
  assert.deepEqual(down, { phase: 'down', generation: 1 });
  assert.deepEqual(stepNext(run, { type: 'exited' }).state, down, 'a crash of the next instance');
  assert.deepEqual(stepNext(down, N()).state, { phase: 'run', generation: 2 });
});

test('supervise/next round-trips and refuses what it did not write', () => {
  const f = { phase: 'run' as const, generation: 2, pid: 42, ready: true, since: '2026-11-22T00:00:00.000Z', exit: null };
  assert.deepEqual(parseNext(formatNext(f)), f);
  assert.equal(parseNext(''), undefined);
  assert.equal(parseNext('{"phase":"flying","generation":1,"pid":1}'), undefined);
  assert.equal(parseNext('{"phase":"run","pid":1}'), undefined);
});

test('a promotion the slot refused (finish runs) leaves the next instance running', () => {
  const running = stepNext(stepNext(initialNext(), { type: 'control', letter: 'N', mainRunning: true }).state, { type: 'control', letter: 'P', mainRunning: true });
  assert.deepEqual(running.actions, ['promote']);
  const back = stepNext(running.state, { type: 'refused' });
  assert.deepEqual(back, { state: { phase: 'run', generation: 1 }, actions: [] });
  assert.deepEqual(stepNext({ phase: 'down', generation: 1 }, { type: 'refused' }).state.phase, 'down');
});
