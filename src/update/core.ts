// The updater's one context: its dependencies, what it remembers between polls
// (releases, actions, the trial, backoffs), and the few helpers every concern
// uses: journaled phase changes, history events, actions and runExclusive.
// The concerns (poll, stage, apply, trial, rollback, recover, watch) are
// functions over this object; Updater (updater.ts) composes them.
import fs from 'node:fs';
import { logger } from '../common/log.js';
import type { ActionInfo, HistoryEntry, UpdatePhase } from '../api/types.js';
import type { AppControl } from './appctl.js';
import type { UpdaterConfig } from './config.js';
import type { Hold } from './hold.js';
import type { Journal, UpdateTarget } from './journal.js';
import { holdFor, isResting } from './phases.js';
import type { VersionStore } from './store.js';
import type { Release, ReleaseSource } from './types.js';
import type { TrustConfig } from './trust/config.js';
import type { TufTrustRoot } from './trust/tuf.js';
import type { Fleet } from './fleet/fleet.js';
import type { SelfUpdater } from './self/updater.js';

export const log = logger('updater');

export interface UpdaterHooks {
  /** Every journal history event (notifications, metrics). */
  onEvent?(e: HistoryEntry): void;
  onDownloadBytes?(n: number): void;
  onCheck?(ok: boolean): void;
}

export interface UpdaterDeps {
  config: UpdaterConfig;
  source: ReleaseSource;
  store: VersionStore;
  app: AppControl;
  journal: Journal;
  hostname: string;
  hooks?: UpdaterHooks;
  /** The app's supervise/hold (absent in tests that do not run PID 1). */
  hold?: Hold;
  /** MOLT_TRUST_*: absent or not required = releases are installed without a signature check. */
  trust?: TrustConfig;
  /** MOLT_BUNDLED: the release shipped in the image (sources/bundled.ts), installed before the first poll (bundled.ts). */
  bundled?: ReleaseSource;
  /** Keeps trust.keyless's root fresh through TUF (keyless without MOLT_TRUST_ROOT only). */
  trustRoot?: Pick<TufTrustRoot, 'refreshIfDue' | 'info'>;
  /** Verdicts shared through the registry, canary waves, pause (fleet/fleet.ts); absent: none of them. */
  fleet?: Fleet;
  /** MOLT_SELF: molt's own releases, taken before the app's (self/updater.ts). */
  self?: { updater: SelfUpdater; spec: string };
}

export interface Trial {
  version: string;
  from?: string;
  startedAt: string;
  startMono: number;
  deadlineMono: number;
  crashes: number;
  ready: boolean;
}

/** One job at a time per lane: polls in `check`, anything that may touch the app in `update`. */
export type Lane = 'check' | 'update';

export function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class UpdaterCore {
  releases: Release[] = [];
  readonly actions: ActionInfo[] = [];
  private actionSeq = 0;
  private readonly lanes = new Map<Lane, ActionInfo>();
  trial: Trial | undefined;
  download: { version: string; bytes: number; total?: number } | undefined;
  waiting: string | undefined;
  nextCheckWall: number | undefined;
  checkTimer: NodeJS.Timeout | undefined;
  gateTimer: NodeJS.Timeout | undefined;
  watchTimer: NodeJS.Timeout | undefined;
  stopped = false;
  readonly abort = new AbortController();
  // Idle watch of the app (crash loops, exit 42).
  watchPid = 0;
  deaths: number[] = [];
  lastCrashLoopReport = -Infinity;
  /** Releases whose download or install failed: retried with a growing delay, not at every poll. */
  readonly failures = new Map<string, { count: number; until: number }>();
  /** Versions whose trial this process judged failed: a rollback that could not be journaled is retried, not re-judged. */
  readonly failedTrials = new Map<string, string>();
  /** When this process started: the age of "no answer yet" when state.json has none. */
  readonly startedAt = new Date().toISOString();
  /** A stale source was reported (one warning line per stale spell). */
  staleWarned = false;
  /** First discovery of each version on the monotonic clock: MOLT_DELAY and MOLT_ROLLOUT count from it, so a wall-clock jump moves neither. */
  readonly seenMono = new Map<string, number>();

  constructor(readonly d: UpdaterDeps) {}

  get cfg(): UpdaterConfig {
    return this.d.config;
  }
  get j(): Journal {
    return this.d.journal;
  }

  // ---- actions ----------------------------------------------------------

  newAction(kind: ActionInfo['kind'], version?: string): ActionInfo {
    const a: ActionInfo = { id: `${kind}-${++this.actionSeq}-${Date.now().toString(36)}`, kind, state: 'running', startedAt: new Date().toISOString(), version };
    this.actions.push(a);
    if (this.actions.length > 50) this.actions.shift();
    return a;
  }

  fail(a: ActionInfo, message: string): ActionInfo {
    a.state = 'failed';
    a.message = message;
    a.finishedAt = new Date().toISOString();
    return a;
  }

  done(a: ActionInfo, message: string): void {
    a.state = 'done';
    a.message = message;
    a.finishedAt = new Date().toISOString();
  }

  /** The action that holds `lane`, if any. */
  holder(lane: Lane): ActionInfo | undefined {
    return this.lanes.get(lane);
  }

  /**
   * Run `work` for `action` unless `lane` is taken (then false, and nothing runs). The
   * action ends done with work's message or failed with its error; the lane is free again after.
   */
  runExclusive(lane: Lane, action: ActionInfo, work: () => Promise<string>): boolean {
    if (this.lanes.has(lane)) return false;
    this.lanes.set(lane, action);
    void (async () => work())()
      .then(
        (message) => this.done(action, message),
        (err: unknown) => {
          this.fail(action, errMessage(err));
          if (lane === 'update') this.leftMidUpdate(err);
        },
      )
      .finally(() => {
        if (this.lanes.get(lane) === action) this.lanes.delete(lane);
      });
    return true;
  }

  private lastInterruption: string | undefined;
  /** The last recovery attempted (recover.ts logs a new one only). */
  lastRecovery: string | undefined;

  /**
   * An update's step failed and left a phase that nobody works on (most often: state.json could
   * not be written). The app runs what `current` says meanwhile, and the next poll recovers from
   * the phase state.json holds.
   */
  private leftMidUpdate(err: unknown): void {
    const phase = this.j.state.phase;
    if (isResting(phase) || this.stopped) return;
    this.trySend('u');
    // One line per cause, not one per poll while the disk stays full.
    const cause = `${phase}: ${errMessage(err)}`;
    if (cause === this.lastInterruption) return;
    this.lastInterruption = cause;
    log.warn('update interrupted, the app runs what current says; recovering at the next poll', { phase, current: this.d.store.current() ?? 'none', error: errMessage(err) });
  }

  /** One more failure of `version`: its next attempt waits intervalMs * 2^n (at most an hour). */
  noteFailure(version: string): { count: number; waitMs: number } {
    const count = (this.failures.get(version)?.count ?? 0) + 1;
    const waitMs = Math.min(this.cfg.intervalMs * 2 ** count, 3600_000);
    this.failures.set(version, { count, until: performance.now() + waitMs });
    return { count, waitMs };
  }

  // ---- journal ----------------------------------------------------------

  /** The app's hold follows the phase state.json holds (phases.holdFor). */
  syncHold(): void {
    this.d.hold?.set(holdFor(this.j.state.phase));
  }

  event(e: Omit<HistoryEntry, 'at'>): void {
    const entry = this.j.addHistory(e);
    try {
      this.d.hooks?.onEvent?.(entry);
    } catch {
      // hooks never break an update
    }
  }

  /** Journal a phase (through the journal's table) before doing it. */
  async enter(phase: UpdatePhase, target?: UpdateTarget | null, via: 'step' | 'recovery' = 'step'): Promise<void> {
    log.debug('phase', { from: this.j.state.phase, to: phase, version: target?.version ?? this.j.state.target?.version });
    await this.j.enter(phase, target, via);
    if (isResting(phase)) this.lastInterruption = undefined;
    this.syncHold();
    await faultPause(phase);
  }

  /** Save the journal outside a phase change (history, blocks); a failure is logged, never thrown. */
  async save(): Promise<void> {
    await this.j.save().catch((err) => log.warn('cannot save state.json', { file: this.j.file, error: errMessage(err) }));
  }

  trySend(letters: string): void {
    try {
      this.d.app.send(letters);
    } catch (err) {
      log.warn('cannot control the app', { error: errMessage(err) });
    }
  }
}

/**
 * Test seam for fault injection: MOLT_FAULT_PAUSE=<phase>:<ms> (or @FILE holding that, read at
 * each phase) holds a phase open so that a test can kill -9 us in it.
 */
async function faultPause(phase: UpdatePhase): Promise<void> {
  let spec = process.env.MOLT_FAULT_PAUSE;
  if (spec?.startsWith('@')) {
    try {
      spec = fs.readFileSync(spec.slice(1), 'utf8').trim();
    } catch {
      spec = undefined; // no pause file: no pause
    }
  }
  const pause = spec?.split(':');
  if (pause?.[0] === phase) {
    log.warn('fault-injection pause', { phase, ms: pause[1] });
    await new Promise((r) => setTimeout(r, Number(pause[1]) || 0));
  }
}
