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
}

export type SlotEvent =
  | { type: 'boot' }
  | { type: 'control'; letter: string }
  | { type: 'run-exited'; code: number | null; signal: number | null; hasFinish: boolean }
  /** code 125 is s6's "do not restart": the service stays down (as after `sv down`). */
  | { type: 'finish-exited'; code?: number | null }
  | { type: 'throttle-elapsed' }
  /** A logger's producer is gone and its pipe closed: let it drain to EOF, then let go. */
  | { type: 'drain' };

export type SlotAction =
  | { type: 'spawn-run' }
  | { type: 'spawn-finish'; code: number | null; signal: number | null }
  /** The stop signal (TERM or `down-signal`), then CONT so a paused process can act on it. */
  | { type: 'stop' }
  | { type: 'signal'; signal: NodeJS.Signals }
  | { type: 'arm-throttle' }
  | { type: 'cancel-throttle' }
  | { type: 'exited' };

export interface Transition {
  state: SlotState;
  actions: SlotAction[];
}

export function initialState(normallyDown: boolean): SlotState {
  return { phase: 'down', want: normallyDown ? 'down' : 'up', paused: false, gotTerm: false, throttled: false, exited: false };
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
  return { state: { ...s, want, phase: 'run', throttled: false, paused: false, gotTerm: false }, actions };
}

function controlWhileDown(s: SlotState, letter: string): Transition {
  switch (letter) {
    case 'u':
      // A pending throttle still decides when; otherwise start at once.
      if (s.throttled) return same({ ...s, want: 'up' });
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

function controlWhileRunning(s: SlotState, letter: string): Transition {
  switch (letter) {
    case 'u':
      return same({ ...s, want: 'up' });
    case 'o':
      return same({ ...s, want: 'down' });
    case 'd':
      return { state: { ...s, want: 'down', gotTerm: true }, actions: [{ type: 'stop' }] };
    case 'x':
      return { state: { ...s, want: 'exit', gotTerm: true }, actions: [{ type: 'stop' }] };
    case 't':
      return { state: { ...s, gotTerm: true }, actions: [{ type: 'signal', signal: 'SIGTERM' }] };
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
      return same({ ...s, want: 'up' });
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
  },
  run: {
    boot: ignore,
    control: (s, e) => controlWhileRunning(s, (e as { letter: string }).letter),
    'run-exited': (s, e) => {
      const ev = e as Extract<SlotEvent, { type: 'run-exited' }>;
      if (ev.hasFinish) {
        return {
          state: { ...s, phase: 'finish', gotTerm: false },
          actions: [{ type: 'spawn-finish', code: ev.code, signal: ev.signal }],
        };
      }
      return settleDown(s);
    },
    'finish-exited': ignore,
    'throttle-elapsed': ignore,
    drain: (s) => same({ ...s, want: 'exit' }),
  },
  finish: {
    boot: ignore,
    control: (s, e) => controlWhileFinishing(s, (e as { letter: string }).letter),
    'run-exited': ignore,
    'finish-exited': (s, e) => {
      const code = (e as Extract<SlotEvent, { type: 'finish-exited' }>).code;
      return settleDown(code === PERMANENT_FAILURE && s.want === 'up' ? { ...s, want: 'down' } : s);
    },
    'throttle-elapsed': ignore,
    drain: (s) => same({ ...s, want: 'exit' }),
  },
};

export function step(s: SlotState, e: SlotEvent): Transition {
  return transitions[s.phase][e.type](s, e);
}
