// Property test of the supervisor's transition table (machine.ts): random event
// sequences, played against a model of the world the driver (slot.ts) lives in
// (which process runs, which timers are armed), with the invariants checked
// after every step. Seeded: the seed is printed on failure; set
// MOLT_PROPERTY_SEED to replay one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialState, step, transitions, type SlotAction, type SlotEvent, type SlotState } from '../../src/supervise/machine.js';
import { mulberry32 } from '../helpers/prng.js';


/** What the driver's world looks like beside the table's state. */
interface World {
  proc: 'none' | 'run' | 'finish';
  throttleArmed: boolean;
  /** The KILL deadline after a stop signal. */
  killArmed: boolean;
  /** A stop signal was sent to the running process. */
  stopSent: boolean;
  /** The slot was asked to stop or restart the running process (d, x, heal): it must end, TERM ignored or not. */
  stopAsked: boolean;
  finishDeadline: boolean;
  /** A KILL was sent: its exit is on the way. */
  dying: boolean;
  /** A next instance runs (handover): promote may come. */
  nextRunning: boolean;
  exitedActions: number;
  /** The last exit was one too many (max-deaths) or finish said 125 while wanted up. */
  heldBy: string | undefined;
}

const LETTERS = 'udoxtkpchaiq12zU\n';

class Violation extends Error {}

function check(cond: unknown, what: string): void {
  if (!cond) throw new Violation(what);
}

/** Apply the table's actions to the world, checking each is possible where it comes. */
function perform(w: World, actions: SlotAction[]): void {
  for (const a of actions) {
    switch (a.type) {
      case 'spawn-run':
        check(w.proc === 'none', `spawn-run while ${w.proc} runs`);
        Object.assign(w, { proc: 'run', stopSent: false, stopAsked: false, killArmed: false, dying: false, heldBy: undefined });
        break;
      case 'spawn-finish':
        check(w.proc === 'none', `spawn-finish while ${w.proc} runs`);
        Object.assign(w, { proc: 'finish', finishDeadline: true });
        break;
      case 'stop':
        check(w.proc === 'run', 'stop with nothing running');
        check(a.kill === 'grace' || a.kill === 'timeout-kill', 'a stop without a KILL deadline');
        // The driver arms the deadline (the grace time, or timeout-kill where the service sets one).
        Object.assign(w, { stopSent: true, killArmed: true });
        break;
      case 'signal':
        if (a.signal === 'SIGKILL' && w.proc === 'run') w.dying = true;
        break;
      case 'arm-throttle':
        check(!w.throttleArmed, 'a second throttle timer');
        w.throttleArmed = true;
        break;
      case 'cancel-throttle':
        w.throttleArmed = false;
        break;
      case 'exited':
        w.exitedActions++;
        break;
      case 'kill-finish':
        check(w.proc === 'finish', 'kill-finish without finish');
        w.dying = true;
        break;
      case 'promote':
        check(w.nextRunning, 'promote without a next instance');
        // The replaced process is retired with its own grace; the next one is run now.
        Object.assign(w, { proc: 'run', nextRunning: false, stopSent: false, stopAsked: false, killArmed: false, dying: false, heldBy: undefined });
        break;
      case 'refuse-promote':
        break;
    }
  }
}

function invariants(s: SlotState, w: World): void {
  const expected = s.phase === 'down' ? 'none' : s.phase;
  check(w.proc === expected, `phase ${s.phase} but the world runs ${w.proc}`);
  check(s.throttled === w.throttleArmed, `throttled=${s.throttled} but a throttle timer armed=${w.throttleArmed}`);
  if (s.want === 'up' && s.phase === 'down' && !s.exited) check(s.throttled && w.throttleArmed, 'wanted up, down, and no start scheduled');
  if (w.heldBy) check(s.held && s.want !== 'up', `held by ${w.heldBy} but not shown (held=${s.held}, want=${s.want})`);
  if (s.held) check(s.want !== 'up', 'held while wanted up');
  if (w.proc === 'run' && (w.stopSent || w.stopAsked) && !w.dying) check(w.killArmed, 'a stop without a KILL deadline armed');
  if (s.exited) check(s.phase === 'down' && s.want === 'exit' && w.exitedActions === 1, `exited: phase ${s.phase}, want ${s.want}, exited actions ${w.exitedActions}`);
  check(w.exitedActions <= 1, 'let go twice');
}

type Rng = () => number;
const pick = <T,>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

/** One random event the world can produce now, with its effect on the world. */
function randomEvent(r: Rng, s: SlotState, w: World): { e: SlotEvent; world?: (w: World) => void } {
  const options: (() => { e: SlotEvent; world?: (w: World) => void })[] = [
    () => ({ e: { type: 'control', letter: pick(r, [...LETTERS]), scripted: r() < 0.2 } }),
    () => ({ e: { type: 'control', letter: pick(r, [...'udox']) } }),
    () => ({ e: { type: 'boot' } }),
    () => ({ e: { type: 'term-sent' } }),
    () => ({ e: { type: 'heal' } }),
    () => ({ e: { type: 'drain' } }),
    () => ({ e: { type: 'control', letter: 'u' }, world: (x) => void (x.nextRunning = true) }), // N started a next instance
  ];
  if (w.proc === 'run') {
    // It exits on its own, is killed -9 from outside, or obeys its stop signal; max-deaths may say "enough".
    const exit = (signal: number | null, code: number | null): { e: SlotEvent; world: (w: World) => void } => {
      const failed = r() < 0.1;
      return {
        e: { type: 'run-exited', code, signal, hasFinish: r() < 0.4, failed },
        world: (x) => {
          if (failed && s.want === 'up') x.heldBy = 'max-deaths';
          Object.assign(x, { proc: 'none', killArmed: false, stopSent: false, stopAsked: false, dying: false });
        },
      };
    };
    options.push(() => exit(null, Math.floor(r() * 256)), () => exit(9, null), () => exit(null, 111));
    if (w.dying || w.stopSent) options.push(() => exit(w.dying ? 9 : 15, null));
    if (w.killArmed) options.push(() => ({ e: { type: 'kill-due' }, world: (x) => void (x.killArmed = false) }));
  }
  if (w.proc === 'finish') {
    const code = pick(r, [0, 1, 125, 111, null]);
    options.push(() => ({
      e: { type: 'finish-exited', code },
      world: (x) => {
        if (code === 125 && s.want === 'up') x.heldBy = 'finish 125';
        Object.assign(x, { proc: 'none', finishDeadline: false, dying: false });
      },
    }));
    if (w.finishDeadline) options.push(() => ({ e: { type: 'finish-overdue' }, world: (x) => void (x.finishDeadline = false) }));
  }
  if (w.throttleArmed) options.push(() => ({ e: { type: 'throttle-elapsed' }, world: (x) => void (x.throttleArmed = false) }), () => ({ e: { type: 'throttle-elapsed' }, world: (x) => void (x.throttleArmed = false) }));
  if (w.nextRunning) options.push(() => ({ e: { type: 'promote' } }));
  return pick(r, options)();
}

/** Events a state does not expect: the table must ignore them (no throw, no action, same state). */
const STRAY: Record<SlotState['phase'], SlotEvent[]> = {
  down: [{ type: 'run-exited', code: 0, signal: null, hasFinish: true }, { type: 'finish-exited', code: 0 }, { type: 'kill-due' }, { type: 'finish-overdue' }, { type: 'term-sent' }, { type: 'heal' }],
  run: [{ type: 'finish-exited', code: 1 }, { type: 'throttle-elapsed' }, { type: 'finish-overdue' }, { type: 'boot' }],
  finish: [{ type: 'run-exited', code: 0, signal: 9, hasFinish: true }, { type: 'throttle-elapsed' }, { type: 'kill-due' }, { type: 'term-sent' }, { type: 'heal' }, { type: 'boot' }],
};

function apply(s: SlotState, w: World, e: SlotEvent, world?: (w: World) => void): SlotState {
  world?.(w);
  if (e.type === 'control' && e.letter === 'u') w.heldBy = undefined; // sv up ends a hold
  const asked = s.phase === 'run' && ((e.type === 'control' && (e.letter === 'd' || e.letter === 'x')) || (e.type === 'heal' && s.want === 'up'));
  if (asked) w.stopAsked = true;
  const t = step(s, e);
  perform(w, t.actions);
  return t.state;
}

/** Every state has a way out: with the world cooperating, `u` brings it up and `x` lets it go. */
function wayOut(s0: SlotState, w0: World): void {
  for (const goal of ['up', 'exit'] as const) {
    let s = s0;
    const w: World = { ...w0 };
    s = apply(s, w, { type: 'control', letter: goal === 'up' ? 'u' : 'x' });
    for (let i = 0; i < 12; i++) {
      if (goal === 'up' ? s.phase === 'run' : s.exited) break;
      let e: SlotEvent;
      let fx: ((w: World) => void) | undefined;
      if (w.proc === 'run' && w.killArmed && !w.dying) {
        // A process that ignores its stop signal: only the KILL deadline ends it.
        e = { type: 'kill-due' };
        fx = (x) => void (x.killArmed = false);
      } else if (w.proc === 'run' && w.dying) {
        e = { type: 'run-exited', code: null, signal: 9, hasFinish: false };
        fx = (x) => Object.assign(x, { proc: 'none', killArmed: false, stopSent: false, stopAsked: false, dying: false });
      } else if (w.proc === 'finish') {
        e = { type: 'finish-exited', code: 0 };
        fx = (x) => Object.assign(x, { proc: 'none', finishDeadline: false });
      } else if (w.throttleArmed) {
        e = { type: 'throttle-elapsed' };
        fx = (x) => void (x.throttleArmed = false);
      } else break;
      s = apply(s, w, e, fx);
      invariants(s, w);
    }
    if (goal === 'up') check(s0.exited || s.phase === 'run', `no way up from ${JSON.stringify(s0)}`);
    else check(s.exited, `no way out (exit) from ${JSON.stringify(s0)}`);
  }
}

/** Play `sequences` random sequences of `steps` events; the first violation, with the seed to replay it. */
function explore(seed: number, sequences: number, steps: number): string | undefined {
  const r = mulberry32(seed);
  for (let q = 0; q < sequences; q++) {
    let s = initialState(r() < 0.3);
    const w: World = { proc: 'none', throttleArmed: false, killArmed: false, stopSent: false, stopAsked: false, finishDeadline: false, dying: false, nextRunning: false, exitedActions: 0, heldBy: undefined };
    const trail: string[] = ['boot'];
    try {
      // Before boot a slot waits for its dependencies (the supervisor's gate), by design.
      s = apply(s, w, { type: 'boot' });
      invariants(s, w);
      for (let i = 0; i < steps && !s.exited; i++) {
        if (r() < 0.15) {
          const stray = pick(r, STRAY[s.phase]);
          const t = step(s, stray);
          trail.push(`stray ${JSON.stringify(stray)}`);
          check(t.actions.length === 0, `stray ${stray.type} in ${s.phase} acted: ${JSON.stringify(t.actions)}`);
          check(JSON.stringify(t.state) === JSON.stringify(s), `stray ${stray.type} in ${s.phase} changed the state`);
          continue;
        }
        const { e, world } = randomEvent(r, s, w);
        trail.push(`${s.phase}/${s.want} <- ${JSON.stringify(e)}`);
        s = apply(s, w, e, world);
        invariants(s, w);
        if (i % 5 === 0) wayOut(s, w);
      }
    } catch (err) {
      if (!(err instanceof Violation)) throw err;
      return `seed ${seed}, sequence ${q}: ${err.message}\n  after: ${trail.slice(-12).join('\n         ')}`;
    }
  }
  return undefined;
}

test('the slot table holds its invariants over thousands of random steps (kill -9 at any point)', () => {
  const seed = Number(process.env.MOLT_PROPERTY_SEED) || Date.now() % 2 ** 31;
  const found = explore(seed, 400, 60);
  assert.equal(found, undefined, `${found} (replay with MOLT_PROPERTY_SEED=${seed})`);
});

test('every phase answers every event without throwing (the table is total)', () => {
  const types: SlotEvent['type'][] = ['boot', 'control', 'run-exited', 'finish-exited', 'throttle-elapsed', 'drain', 'term-sent', 'kill-due', 'finish-overdue', 'heal', 'promote'];
  for (const phase of Object.keys(transitions) as SlotState['phase'][]) {
    for (const type of types) assert.equal(typeof transitions[phase][type], 'function', `${phase}/${type}`);
  }
});

test('the property test catches a broken row (mutation check)', () => {
  const rows = transitions.down;
  const saved = rows['throttle-elapsed'];
  try {
    // Bug: a throttle deadline that does nothing leaves a wanted-up service down for ever.
    rows['throttle-elapsed'] = (s) => ({ state: s, actions: [] });
    assert.match(explore(1, 200, 60) ?? '', /throttle timer armed=false|no start scheduled|no way up/);
  } finally {
    rows['throttle-elapsed'] = saved;
  }
  const run = transitions.run;
  const savedHeal = run.heal;
  try {
    // Bug: a heal that stops with a plain signal, no KILL deadline: a stuck process is never restarted.
    run.heal = (s) => ({ state: s, actions: [{ type: 'signal', signal: 'SIGTERM' }] });
    const savedStop = run.control;
    run.control = (s, e) => {
      const t = savedStop(s, e);
      return { ...t, actions: t.actions.map((a) => (a.type === 'stop' ? ({ type: 'signal', signal: 'SIGTERM' } as const) : a)) };
    };
    try {
      assert.match(explore(2, 200, 60) ?? '', /no way out|without a KILL deadline|no way up/);
    } finally {
      run.control = savedStop;
    }
  } finally {
    run.heal = savedHeal;
  }
  assert.equal(explore(1, 200, 60), undefined, 'restored');
});
