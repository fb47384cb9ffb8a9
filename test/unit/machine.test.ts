import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialState, step, transitions, type SlotState, type SlotEvent } from '../../src/supervise/machine.js';

const types = (t: ReturnType<typeof step>) => t.actions.map((a) => a.type);
const running = (over: Partial<SlotState> = {}): SlotState => ({ ...initialState(false), phase: 'run', ...over });

test('boot starts a normally-up slot and leaves a normally-down one', () => {
  assert.deepEqual(types(step(initialState(false), { type: 'boot' })), ['spawn-run']);
  assert.equal(step(initialState(false), { type: 'boot' }).state.phase, 'run');
  const down = step(initialState(true), { type: 'boot' });
  assert.deepEqual(down.actions, []);
  assert.equal(down.state.phase, 'down');
});

test('every phase handles every event (the table is total)', () => {
  const events: SlotEvent[] = [
    { type: 'boot' },
    { type: 'control', letter: 'u' },
    { type: 'run-exited', code: 0, signal: null, hasFinish: false },
    { type: 'finish-exited' },
    { type: 'throttle-elapsed' },
    { type: 'drain' },
  ];
  for (const phase of Object.keys(transitions) as SlotState['phase'][]) {
    for (const e of events) assert.doesNotThrow(() => step({ ...initialState(false), phase }, e), `${phase}/${e.type}`);
  }
});

test('d while running stops with the stop signal, sets want down and got TERM', () => {
  const t = step(running(), { type: 'control', letter: 'd' });
  assert.deepEqual(types(t), ['stop']);
  assert.equal(t.state.want, 'down');
  assert.equal(t.state.gotTerm, true);
  const after = step(t.state, { type: 'run-exited', code: null, signal: 15, hasFinish: false });
  assert.equal(after.state.phase, 'down');
  assert.equal(after.state.gotTerm, false);
  assert.deepEqual(after.actions, [], 'wanted down: no restart');
});

test('a crash of a wanted-up slot arms the throttle, and the timer restarts it', () => {
  const t = step(running(), { type: 'run-exited', code: 1, signal: null, hasFinish: false });
  assert.deepEqual(types(t), ['arm-throttle']);
  assert.equal(t.state.throttled, true);
  const r = step(t.state, { type: 'throttle-elapsed' });
  assert.deepEqual(types(r), ['spawn-run']);
});

test('control letters stay effective during the throttle: d cancels the restart', () => {
  const waiting = step(running(), { type: 'run-exited', code: 1, signal: null, hasFinish: false }).state;
  const d = step(waiting, { type: 'control', letter: 'd' });
  assert.deepEqual(types(d), ['cancel-throttle']);
  assert.equal(d.state.want, 'down');
  assert.deepEqual(step(d.state, { type: 'throttle-elapsed' }).actions, []);
  // u during the throttle waits for it instead of bypassing it
  assert.deepEqual(step(waiting, { type: 'control', letter: 'u' }).actions, []);
  // o starts once at once
  assert.deepEqual(types(step(waiting, { type: 'control', letter: 'o' })), ['cancel-throttle', 'spawn-run']);
});

test('finish runs with exit code and signal, then the slot settles', () => {
  const f = step(running(), { type: 'run-exited', code: null, signal: 9, hasFinish: true });
  assert.deepEqual(f.actions, [{ type: 'spawn-finish', code: null, signal: 9 }]);
  assert.equal(f.state.phase, 'finish');
  // control during finish changes only the wish
  const d = step(f.state, { type: 'control', letter: 'd' });
  assert.deepEqual(d.actions, []);
  const done = step(d.state, { type: 'finish-exited' });
  assert.equal(done.state.phase, 'down');
  assert.deepEqual(done.actions, []);
});

test('finish exiting 125 keeps the service down (s6); any other code restarts it', () => {
  const f = step(running(), { type: 'run-exited', code: 1, signal: null, hasFinish: true });
  const stay = step(f.state, { type: 'finish-exited', code: 125 });
  assert.deepEqual({ phase: stay.state.phase, want: stay.state.want, throttled: stay.state.throttled }, { phase: 'down', want: 'down', throttled: false });
  assert.deepEqual(stay.actions, []);
  const again = step(f.state, { type: 'finish-exited', code: 1 });
  assert.deepEqual(again.actions, [{ type: 'arm-throttle' }]);
  assert.equal(again.state.want, 'up');
  // sv up afterwards starts it again
  assert.deepEqual(step(stay.state, { type: 'control', letter: 'u' }).actions, [{ type: 'spawn-run' }]);
  // 125 after sv exit still lets the slot go
  const exiting = step(step(running(), { type: 'control', letter: 'x' }).state, { type: 'run-exited', code: 0, signal: 15, hasFinish: true });
  assert.equal(step(exiting.state, { type: 'finish-exited', code: 125 }).state.exited, true);
});

test('signal letters map to runsv signals and only while running', () => {
  const map: Record<string, string> = { t: 'SIGTERM', k: 'SIGKILL', p: 'SIGSTOP', c: 'SIGCONT', h: 'SIGHUP', a: 'SIGALRM', i: 'SIGINT', q: 'SIGQUIT', '1': 'SIGUSR1', '2': 'SIGUSR2' };
  for (const [letter, sig] of Object.entries(map)) {
    assert.deepEqual(step(running(), { type: 'control', letter }).actions, [{ type: 'signal', signal: sig }], letter);
    assert.deepEqual(step(initialState(true), { type: 'control', letter }).actions, [], `${letter} when down`);
  }
  assert.equal(step(running(), { type: 'control', letter: 'p' }).state.paused, true);
  assert.equal(step(running({ paused: true }), { type: 'control', letter: 'c' }).state.paused, false);
});

test('unknown control bytes are ignored', () => {
  for (const letter of ['z', '\n', '\0', 'e', 'U']) {
    const t = step(running(), { type: 'control', letter });
    assert.deepEqual(t.actions, []);
    assert.deepEqual(t.state, running());
  }
});

test('x stops the slot and lets go once it is down; o does not restart after exit', () => {
  const x = step(running(), { type: 'control', letter: 'x' });
  assert.deepEqual(types(x), ['stop']);
  const gone = step(x.state, { type: 'run-exited', code: 0, signal: null, hasFinish: false });
  assert.deepEqual(types(gone), ['exited']);
  assert.equal(gone.state.exited, true);
  const once = step(initialState(true), { type: 'control', letter: 'o' });
  assert.deepEqual(types(once), ['spawn-run']);
  assert.deepEqual(step(once.state, { type: 'run-exited', code: 0, signal: null, hasFinish: false }).actions, []);
});

test('drain lets a running logger read to EOF without a signal, then lets go', () => {
  const d = step(running(), { type: 'drain' });
  assert.deepEqual(d.actions, []);
  assert.equal(d.state.want, 'exit');
  assert.deepEqual(types(step(d.state, { type: 'run-exited', code: 0, signal: null, hasFinish: false })), ['exited']);
  assert.deepEqual(types(step(initialState(true), { type: 'drain' })), ['exited']);
});

test('timers and side paths are rows: kill-due KILLs only a running slot, finish-overdue kills only finish', () => {
  assert.deepEqual(step(running(), { type: 'kill-due' }).actions, [{ type: 'signal', signal: 'SIGKILL' }]);
  assert.deepEqual(step(initialState(false), { type: 'kill-due' }).actions, []);
  const fin = { ...running(), phase: 'finish' as const };
  assert.deepEqual(step(fin, { type: 'kill-due' }).actions, []);
  assert.deepEqual(step(fin, { type: 'finish-overdue' }).actions, [{ type: 'kill-finish' }]);
  assert.deepEqual(step(running(), { type: 'finish-overdue' }).actions, []);
});

test('d and x carry a KILL deadline (timeout-kill); a heal restarts with the grace time and keeps want up', () => {
  assert.deepEqual(step(running(), { type: 'control', letter: 'd' }).actions, [{ type: 'stop', kill: 'timeout-kill' }]);
  const h = step(running(), { type: 'heal' });
  assert.deepEqual(h.actions, [{ type: 'stop', kill: 'grace' }]);
  assert.equal(h.state.want, 'up');
  assert.deepEqual(step(running({ want: 'down' }), { type: 'heal' }).actions, [], 'no heal of a service going down');
  assert.deepEqual(step(initialState(false), { type: 'heal' }).actions, []);
});

test('with control scripts, got TERM waits for term-sent', () => {
  const d = step(running(), { type: 'control', letter: 'd', scripted: true });
  assert.equal(d.state.gotTerm, false);
  assert.equal(step(d.state, { type: 'term-sent' }).state.gotTerm, true);
  assert.equal(step(initialState(true), { type: 'term-sent' }).state.gotTerm, false, 'ignored once down');
});

test('max-deaths and finish 125 hold the slot down and show it; sv up ends the hold', () => {
  const failed = step(running(), { type: 'run-exited', code: 1, signal: null, hasFinish: false, failed: true });
  assert.deepEqual(failed.actions, []);
  assert.deepEqual({ want: failed.state.want, held: failed.state.held, phase: failed.state.phase }, { want: 'down', held: true, phase: 'down' });
  const up = step(failed.state, { type: 'control', letter: 'u' });
  assert.deepEqual(types(up), ['spawn-run']);
  assert.equal(up.state.held, false);
  const f = step(running(), { type: 'run-exited', code: 1, signal: null, hasFinish: true }).state;
  assert.equal(step(f, { type: 'finish-exited', code: 125 }).state.held, true);
});

test('promote: a running slot adopts the next instance; finish refuses; a throttled slot cancels its restart', () => {
  const p = step(running({ gotTerm: true, paused: true }), { type: 'promote' });
  assert.deepEqual(p.actions, [{ type: 'promote' }]);
  assert.deepEqual({ gotTerm: p.state.gotTerm, paused: p.state.paused, phase: p.state.phase }, { gotTerm: false, paused: false, phase: 'run' });
  assert.deepEqual(step({ ...running(), phase: 'finish' }, { type: 'promote' }).actions, [{ type: 'refuse-promote' }]);
  const waiting = step(running(), { type: 'run-exited', code: 1, signal: null, hasFinish: false }).state;
  assert.deepEqual(types(step(waiting, { type: 'promote' })), ['cancel-throttle', 'promote']);
});
