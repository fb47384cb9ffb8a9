// The supervision state machine of one process slot (a service's `run`, or its
// logger), as a table: transitions[phase][event](state, event) -> next state
// and the actions the driver performs. Pure: no I/O, no clock. Modelled on
// runsv's ctrl() and on s6-supervise's actions[state][event].

export type Phase = 'down' | 'run' | 'finish';
export type Want = 'up' | 'down' | 'exit';

export interface SlotState {
  phase: Phase;
  want: Want;
  paused: boolean;
  gotTerm: boolean;
  /** Down and waiting for the restart throttle's deadline. */
  throttled: boolean;
  /** Want exit and nothing left running: the driver may let go of the slot. */
  exited: boolean;
  /** Kept down on purpose (max-deaths reached, or finish exited 125) until `sv up`. */
  held: boolean;
}

export type SlotEvent =
  | { type: 'boot' }
  /** `scripted`: runsv's control scripts apply, so "got TERM" waits for the signal really sent (term-sent). */
  | { type: 'control'; letter: string; scripted?: boolean }
  /** `failed`: max-deaths says this death was one too many: stay down (held) until sv up. */
  | { type: 'run-exited'; code: number | null; signal: number | null; hasFinish: boolean; failed?: boolean }
  /** code 125 is s6's "do not restart": the service stays down (as after `sv down`). */
  | { type: 'finish-exited'; code?: number | null }
  | { type: 'throttle-elapsed' }
  /** A logger's producer is gone and its pipe closed: let it drain to EOF, then let go. */
  | { type: 'drain' }
  /** A control script (control/t, control/d...) let the stop signal through: runsv's "got TERM". */
  | { type: 'term-sent' }
  /** The deadline after a stop signal passed (timeout-kill, or the grace time of a heal). */
  | { type: 'kill-due' }
  /** finish ran past its deadline. */
  | { type: 'finish-overdue' }
  /** Restart a running service: a failed health check (heal) or no readiness within timeout-up. */
  | { type: 'heal' }
  /** The next instance (handover) becomes the service's run. */
  | { type: 'promote' };

export type SlotAction =
  | { type: 'spawn-run' }
  | { type: 'spawn-finish'; code: number | null; signal: number | null }
  /**
   * The stop signal (TERM or `down-signal`), then CONT so a paused process can act on it,
   * and a KILL deadline: `timeout-kill` (when the file sets one; runit waits otherwise) or
   * `grace` (molt's stop timeout, always armed).
   */
  | { type: 'stop'; kill: 'timeout-kill' | 'grace' }
  | { type: 'signal'; signal: NodeJS.Signals }
  | { type: 'arm-throttle' }
  | { type: 'cancel-throttle' }
  | { type: 'exited' }
  | { type: 'kill-finish' }
  /** Adopt the next instance as run; the replaced one is stopped with grace. */
  | { type: 'promote' }
  | { type: 'refuse-promote' };

export interface Transition {
  state: SlotState;
  actions: SlotAction[];
}

export function initialState(normallyDown: boolean): SlotState {
  return { phase: 'down', want: normallyDown ? 'down' : 'up', paused: false, gotTerm: false, throttled: false, exited: false, held: false };
}

/** finish's exit code that tells the supervisor not to restart (s6-supervise's convention). */
export const PERMANENT_FAILURE = 125;

type Handler = (s: SlotState, e: SlotEvent) => Transition;
type EventType = SlotEvent['type'];

const same = (s: SlotState): Transition => ({ state: s, actions: [] });

/** What a slot does once nothing runs: restart (throttled), stay down, or let go. */
function settleDown(s: SlotState): Transition {
  const down: SlotState = { ...s, phase: 'down', gotTerm: false };
  if (s.want === 'up') return { state: { ...down, throttled: true }, actions: [{ type: 'arm-throttle' }] };
  if (s.want === 'exit') return { state: { ...down, exited: true }, actions: [{ type: 'exited' }] };
  return { state: down, actions: [] };
}

function startNow(s: SlotState, want: Want): Transition {
  const actions: SlotAction[] = s.throttled ? [{ type: 'cancel-throttle' }] : [];
  actions.push({ type: 'spawn-run' });
  return { state: { ...s, want, phase: 'run', throttled: false, paused: false, gotTerm: false, held: false }, actions };
}

function controlWhileDown(s: SlotState, letter: string): Transition {
  switch (letter) {
    case 'u':
      // A pending throttle still decides when; otherwise start at once.
      if (s.throttled) return same({ ...s, want: 'up', held: false });
      return startNow(s, 'up');
    case 'o':
      return startNow(s, 'down');
    case 'd':
      return { state: { ...s, want: 'down', throttled: false }, actions: s.throttled ? [{ type: 'cancel-throttle' }] : [] };
    case 'x':
      return {
        state: { ...s, want: 'exit', throttled: false, exited: true },
        actions: [...(s.throttled ? [{ type: 'cancel-throttle' } as const] : []), { type: 'exited' }],
      };
    case 'p':
      return same({ ...s, paused: true });
    case 'c':
      return same({ ...s, paused: false });
    default:
      return same(s);
  }
}

function controlWhileRunning(s: SlotState, letter: string, scripted = false): Transition {
  switch (letter) {
    case 'u':
      return same({ ...s, want: 'up', held: false });
    case 'o':
      return same({ ...s, want: 'down' });
    case 'd':
      return { state: { ...s, want: 'down', gotTerm: !scripted }, actions: [{ type: 'stop', kill: 'timeout-kill' }] };
    case 'x':
      return { state: { ...s, want: 'exit', gotTerm: !scripted }, actions: [{ type: 'stop', kill: 'timeout-kill' }] };
    case 't':
      return { state: { ...s, gotTerm: !scripted }, actions: [{ type: 'signal', signal: 'SIGTERM' }] };
    case 'k':
      return { state: s, actions: [{ type: 'signal', signal: 'SIGKILL' }] };
    case 'p':
      return { state: { ...s, paused: true }, actions: [{ type: 'signal', signal: 'SIGSTOP' }] };
    case 'c':
      return { state: { ...s, paused: false }, actions: [{ type: 'signal', signal: 'SIGCONT' }] };
    case 'h':
      return { state: s, actions: [{ type: 'signal', signal: 'SIGHUP' }] };
    case 'a':
      return { state: s, actions: [{ type: 'signal', signal: 'SIGALRM' }] };
    case 'i':
      return { state: s, actions: [{ type: 'signal', signal: 'SIGINT' }] };
    case 'q':
      return { state: s, actions: [{ type: 'signal', signal: 'SIGQUIT' }] };
    case '1':
      return { state: s, actions: [{ type: 'signal', signal: 'SIGUSR1' }] };
    case '2':
      return { state: s, actions: [{ type: 'signal', signal: 'SIGUSR2' }] };
    default:
      return same(s); // unknown bytes are ignored, as runsv does
  }
}

function controlWhileFinishing(s: SlotState, letter: string): Transition {
  // `finish` is not signalled by control letters (runsv); only the wish changes.
  switch (letter) {
    case 'u':
      return same({ ...s, want: 'up', held: false });
    case 'd':
    case 'o':
      return same({ ...s, want: 'down' });
    case 'x':
      return same({ ...s, want: 'exit' });
    case 'p':
      return same({ ...s, paused: true });
    case 'c':
      return same({ ...s, paused: false });
    default:
      return same(s);
  }
}

const ignore: Handler = (s) => same(s);

/** Handover with nothing running: the next instance simply becomes run. */
const promoteWhileDown = (s: SlotState): Transition => ({
  state: { ...s, phase: 'run', throttled: false, paused: false, gotTerm: false, held: false },
  actions: [...(s.throttled ? [{ type: 'cancel-throttle' } as const] : []), { type: 'promote' }],
});

export const transitions: Record<Phase, Record<EventType, Handler>> = {
  down: {
    boot: (s) => (s.want === 'up' ? startNow(s, 'up') : same(s)),
    control: (s, e) => controlWhileDown(s, (e as { letter: string }).letter),
    'run-exited': ignore,
    'finish-exited': ignore,
    'throttle-elapsed': (s) => {
      const t = { ...s, throttled: false };
      return t.want === 'up' ? startNow(t, 'up') : same(t);
    },
    drain: (s) => controlWhileDown(s, 'x'),
    'term-sent': ignore,
    'kill-due': ignore,
    'finish-overdue': ignore,
    heal: ignore,
    // The updater promotes only a next instance beside a running one; promote anyway
    // rather than kill an instance that already serves.
    promote: (s) => (s.want === 'exit' ? { state: s, actions: [{ type: 'refuse-promote' }] } : promoteWhileDown(s)),
  },
  run: {
    boot: ignore,
    control: (s, e) => {
      const ev = e as Extract<SlotEvent, { type: 'control' }>;
      return controlWhileRunning(s, ev.letter, ev.scripted);
    },
    'run-exited': (s, e) => {
      const ev = e as Extract<SlotEvent, { type: 'run-exited' }>;
      const after = ev.failed && s.want === 'up' ? { ...s, want: 'down' as const, held: true } : s;
      if (ev.hasFinish) {
        return {
          state: { ...after, phase: 'finish', gotTerm: false },
          actions: [{ type: 'spawn-finish', code: ev.code, signal: ev.signal }],
        };
      }
      return settleDown(after);
    },
    'finish-exited': ignore,
    'throttle-elapsed': ignore,
    drain: (s) => same({ ...s, want: 'exit' }),
    'term-sent': (s) => same({ ...s, gotTerm: true }),
    'kill-due': (s) => ({ state: s, actions: [{ type: 'signal', signal: 'SIGKILL' }] }),
    'finish-overdue': ignore,
    // Restarted, not stopped: the wish stays up and the exit brings it back (throttled).
    heal: (s) => (s.want === 'up' ? { state: s, actions: [{ type: 'stop', kill: 'grace' }] } : same(s)),
    promote: (s) => ({ state: { ...s, throttled: false, paused: false, gotTerm: false }, actions: [{ type: 'promote' }] }),
  },
  finish: {
    boot: ignore,
    control: (s, e) => controlWhileFinishing(s, (e as { letter: string }).letter),
    'run-exited': ignore,
    'finish-exited': (s, e) => {
      const code = (e as Extract<SlotEvent, { type: 'finish-exited' }>).code;
      return settleDown(code === PERMANENT_FAILURE && s.want === 'up' ? { ...s, want: 'down', held: true } : s);
    },
    'throttle-elapsed': ignore,
    drain: (s) => same({ ...s, want: 'exit' }),
    'term-sent': ignore,
    'kill-due': ignore,
    'finish-overdue': (s) => ({ state: s, actions: [{ type: 'kill-finish' }] }),
    heal: ignore,
    // finish owns the slot: promoting would race it. The updater falls back to a restart.
    promote: (s) => ({ state: s, actions: [{ type: 'refuse-promote' }] }),
  },
};

export function sameState(a: SlotState, b: SlotState): boolean {
  return a.phase === b.phase && a.want === b.want && a.paused === b.paused && a.gotTerm === b.gotTerm && a.throttled === b.throttled && a.exited === b.exited && a.held === b.held;
}

export function step(s: SlotState, e: SlotEvent): Transition {
  return transitions[s.phase][e.type](s, e);
}
