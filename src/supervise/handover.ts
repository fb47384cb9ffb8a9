// MOLT_HANDOVER=overlap: a second instance of a service's `run` (the "next"
// one) started beside the running one, on the same `listen` sockets, so that
// an update has no window at all. The updater drives it through three control
// bytes that runit never sends (runsv ignores unknown bytes, so `sv` is
// unaffected): N starts the next instance, P promotes it (the old one gets its
// stop signal and the next one becomes the service's run), K stops it.
// Its state is published in supervise/next. This file is the pure part: the
// table and the file format.

export type NextPhase = 'none' | 'run' | 'stopping' | 'down';

export interface NextState {
  phase: NextPhase;
  /** Counts N's that started an instance, so a reader can tell one instance from the next. */
  generation: number;
}

export type NextEvent =
  | { type: 'control'; letter: 'N' | 'P' | 'K'; mainRunning: boolean }
  | { type: 'exited' }
  /** The service itself is told to go down or exit: the next instance goes too. */
  | { type: 'main-stopping' }
  /** The slot refused a promotion (its finish runs): the next instance goes on as it was. */
  | { type: 'refused' };

export type NextAction = 'spawn' | 'promote' | 'stop' | 'refuse';

export const HANDOVER_LETTERS = new Set(['N', 'P', 'K']);

export function initialNext(): NextState {
  return { phase: 'none', generation: 0 };
}

type Handler = (s: NextState, e: NextEvent) => { state: NextState; actions: NextAction[] };
const same: Handler = (s) => ({ state: s, actions: [] });

const idle: Record<NextEvent['type'], Handler> = {
  control: (s, e) => {
    const ev = e as Extract<NextEvent, { type: 'control' }>;
    if (ev.letter !== 'N') return same(s, e);
    // Nothing to overlap with: the caller falls back to a plain restart.
    if (!ev.mainRunning) return { state: s, actions: ['refuse'] };
    return { state: { phase: 'run', generation: s.generation + 1 }, actions: ['spawn'] };
  },
  exited: same,
  'main-stopping': same,
  refused: same,
};

export const nextTransitions: Record<NextPhase, Record<NextEvent['type'], Handler>> = {
  none: { ...idle, refused: (s) => ({ state: { ...s, phase: 'run' }, actions: [] }) },
  down: idle,
  run: {
    control: (s, e) => {
      const ev = e as Extract<NextEvent, { type: 'control' }>;
      if (ev.letter === 'P') return { state: { ...s, phase: 'none' }, actions: ['promote'] };
      if (ev.letter === 'K') return { state: { ...s, phase: 'stopping' }, actions: ['stop'] };
      return same(s, e); // a second N while one runs: one next instance at a time
    },
    exited: (s) => ({ state: { ...s, phase: 'down' }, actions: [] }),
    'main-stopping': (s) => ({ state: { ...s, phase: 'stopping' }, actions: ['stop'] }),
    refused: same,
  },
  stopping: {
    control: same,
    exited: (s) => ({ state: { ...s, phase: 'down' }, actions: [] }),
    'main-stopping': same,
    refused: same,
  },
};

export function stepNext(s: NextState, e: NextEvent): { state: NextState; actions: NextAction[] } {
  return nextTransitions[s.phase][e.type](s, e);
}

/** supervise/next, one JSON line. */
export interface NextFile {
  phase: NextPhase;
  generation: number;
  pid: number;
  ready: boolean;
  /** When this instance started (ISO). */
  since: string | null;
  exit: { code: number; signal: number } | null;
}

export function formatNext(f: NextFile): string {
  return JSON.stringify(f) + '\n';
}

export function parseNext(text: string): NextFile | undefined {
  try {
    const v = JSON.parse(text) as NextFile;
    if (typeof v !== 'object' || !v || typeof v.generation !== 'number' || typeof v.pid !== 'number') return undefined;
    if (!['none', 'run', 'stopping', 'down'].includes(v.phase)) return undefined;
    return v;
  } catch {
    return undefined;
  }
}
