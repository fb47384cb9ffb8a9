// The update's phases as tables: which phase may follow which, how to judge a
// trial, and what to do at start for a journal left in any phase. Pure.
import type { UpdatePhase } from '../api/types.js';

export const nextPhases: Record<UpdatePhase, readonly UpdatePhase[]> = {
  idle: ['checking', 'downloading', 'staged', 'rolling-back', 'idle'],
  checking: ['idle', 'downloading', 'staged'],
  downloading: ['staged', 'idle'],
  // swapping straight from staged: an overlapping handover never stops the old version first.
  staged: ['stopping', 'swapping', 'idle', 'downloading', 'checking'],
  // back to staged: the stop or the swap failed, the old version is started again and the update retried later.
  stopping: ['swapping', 'rolling-back', 'idle', 'staged'],
  swapping: ['starting', 'rolling-back', 'staged'],
  starting: ['trial', 'rolling-back'],
  trial: ['committed', 'rolling-back'],
  committed: ['idle'],
  'rolling-back': ['idle'],
};

export function canEnter(from: UpdatePhase, to: UpdatePhase): boolean {
  return from === to || nextPhases[from].includes(to);
}

/** The phases in which nothing is in progress: anything else needs a worker (or recover()) to leave it. */
export function isResting(phase: UpdatePhase): boolean {
  return phase === 'idle' || phase === 'staged';
}

/**
 * Where an update goes when the step of `phase` fails (the step itself, not the journal's
 * write): stopping or swapping failed -> staged (the old version runs again, `current` was
 * not moved, the update is retried with a growing delay); starting -> rolling-back.
 */
export const onStepFailure = { stopping: 'staged', swapping: 'staged', starting: 'rolling-back' } as const satisfies Partial<Record<UpdatePhase, UpdatePhase>>;

/** The word the updater keeps in the app's supervise/hold (see the hold protocol): what PID 1 must leave to it. */
export type HoldWord = 'apply' | 'staged';

/**
 * `apply` from the start of an update's stop through the end of its trial or rollback (an
 * exit of an essential app then is the trial's to judge); `staged` while a release waits
 * (an exit 42 asks for it); nothing otherwise.
 */
export function holdFor(phase: UpdatePhase): HoldWord | undefined {
  switch (phase) {
    case 'stopping':
    case 'swapping':
    case 'starting':
    case 'trial':
    case 'rolling-back':
      return 'apply';
    case 'staged':
      return 'staged';
    case 'idle':
    case 'checking':
    case 'downloading':
    case 'committed':
      return undefined;
  }
}

/**
 * The way out of a phase that nobody is working on any more (after a kill -9, or a
 * step whose journal write failed): the phases recover() may write, derived from
 * recoveryFor below and kept as a table so that a reader can check each row.
 */
export const recoveryPhases: Record<UpdatePhase, readonly UpdatePhase[]> = {
  idle: ['idle'],
  checking: ['idle'],
  downloading: ['idle'],
  staged: ['staged', 'idle'],
  stopping: ['idle'],
  swapping: ['idle', 'starting'],
  // rolling-back: the trial had already failed when its rollback could not be journaled.
  starting: ['idle', 'starting', 'rolling-back'],
  trial: ['idle', 'starting', 'rolling-back'],
  committed: ['idle'],
  'rolling-back': ['idle', 'rolling-back'],
};

export function canRecover(from: UpdatePhase, to: UpdatePhase): boolean {
  return recoveryPhases[from].includes(to);
}

export interface TrialObservation {
  nowMs: number;
  /** When the trial began (monotonic ms). */
  startMs: number;
  trialMs: number;
  /** Since when the running instance has been up (monotonic ms); undefined while it is down. */
  upSinceMs: number | undefined;
  crashes: number;
  crashLimit: number;
  ready: boolean;
  readyMode: 'auto' | 'explicit';
  /** The service's `check` once the instance has stayed up for the trial; undefined when it has none. */
  checkPassed?: boolean;
  /** The supervisor found its check failing during the trial (supervise/health): as bad as a crash. */
  checkFailed?: boolean;
  /** Since when the service's process has been up without running the release (monotonic ms). */
  notRunningSinceMs?: number;
}

export type TrialVerdict = { verdict: 'continue' } | { verdict: 'commit'; why: string } | { verdict: 'fail'; reason: string };

/** How long a trial may go on in auto mode while the app keeps restarting before it has stayed up once. */
export function trialCapMs(trialMs: number): number {
  return 3 * trialMs + 30_000;
}

/**
 * auto: committed once an instance has stayed up for the whole trial time (a
 * death restarts that clock) and its check passes, or at once on ready.
 * explicit: it must report ready before trialMs has passed.
 * Either way, crashLimit deaths, or its check failing at any time of the trial, roll it back.
 */
export function judgeTrial(o: TrialObservation): TrialVerdict {
  if (o.crashes >= o.crashLimit) return { verdict: 'fail', reason: `crashed ${o.crashes} time${o.crashes === 1 ? '' : 's'} during its trial` };
  if (o.checkFailed) return { verdict: 'fail', reason: 'its check failed during its trial' };
  if (o.ready) return { verdict: 'commit', why: 'reported ready' };
  const elapsed = o.nowMs - o.startMs;
  if (o.readyMode === 'explicit') {
    return elapsed >= o.trialMs ? { verdict: 'fail', reason: 'did not report ready before the trial deadline' } : { verdict: 'continue' };
  }
  if (o.notRunningSinceMs !== undefined && o.nowMs - o.notRunningSinceMs >= o.trialMs) {
    return { verdict: 'fail', reason: 'its service ran for the whole trial without running it' };
  }
  if (o.upSinceMs !== undefined && o.nowMs - o.upSinceMs >= o.trialMs) {
    if (o.checkPassed === false) return { verdict: 'fail', reason: 'its check failed at the end of its trial' };
    return { verdict: 'commit', why: 'stayed up for the trial' };
  }
  if (elapsed >= trialCapMs(o.trialMs)) return { verdict: 'fail', reason: 'never stayed up for the whole trial' };
  return { verdict: 'continue' };
}

export type Recovery =
  /** Nothing was touched yet: forget the attempt (the download, if any, is kept or cleaned). */
  | 'idle'
  /** A staged release waits for its window: keep it. */
  | 'keep-staged'
  /** The app was being stopped; current is unchanged: bring it back up. */
  | 'restart-current'
  /** current points at the new version: start it and judge it again from the beginning. */
  | 'resume-trial'
  /** Put `from` back and block the target. */
  | 'roll-back';

/**
 * What to do at start (or at a poll, for a phase whose worker failed) for a journal left in `phase`. `current` is what the
 * symlink says now (the swap is one rename, so it is either from or target).
 */
export function recoveryFor(
  phase: UpdatePhase,
  current: string | undefined,
  target: string | undefined,
  from: string | undefined,
  /** This process already judged the target failed (its rollback could not be journaled then). */
  failedTrial = false,
): Recovery {
  switch (phase) {
    case 'idle':
    case 'checking':
    case 'downloading':
    case 'committed':
      return 'idle';
    case 'staged':
      return target ? 'keep-staged' : 'idle';
    case 'stopping':
      return 'restart-current';
    case 'swapping':
      return current !== undefined && current === target ? 'resume-trial' : 'restart-current';
    case 'starting':
    case 'trial':
      if (current !== target) return 'restart-current';
      return failedTrial ? 'roll-back' : 'resume-trial';
    case 'rolling-back':
      return from !== undefined || current !== target ? 'roll-back' : 'restart-current';
  }
}

/** The phase a recovery plan writes first; `staged` only while the staged version is still in the store. */
export function recoveryPhase(plan: Recovery, stagedInStore: boolean): UpdatePhase {
  switch (plan) {
    case 'idle':
    case 'restart-current':
      return 'idle';
    case 'keep-staged':
      return stagedInStore ? 'staged' : 'idle';
    case 'resume-trial':
      return 'starting';
    case 'roll-back':
      return 'rolling-back';
  }
}
