// The updater service: polls the source, stages a release while the old one
// runs, then stop -> swap -> start -> trial, and commits or rolls back. Each
// phase is journaled before it begins; recover() resumes from any of them.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../common/atomic.js';
import { logger } from '../common/log.js';
import type { ActionInfo, BlockedEntry, HistoryEntry, UpdatePhase, UpdaterControl, UpdaterStatus } from '../api/types.js';
import type { AppControl } from './appctl.js';
import type { UpdaterConfig } from './config.js';
import type { Journal, UpdateTarget } from './journal.js';
import { canEnter, judgeTrial, recoveryFor } from './phases.js';
import { chooseRelease, findNamed, sortNewestFirst } from './policy.js';
import { rolloutDelayMs, jitterMs } from './rollout.js';
import { inSchedule, nextOpening } from './schedule.js';
import type { VersionStore } from './store.js';
import type { Release, ReleaseSource } from './types.js';

const log = logger('updater');
const TRIAL_POLL_MS = 100;
const WATCH_POLL_MS = 1000;
const CRASH_LOOP_WINDOW_MS = 60_000;
const CRASH_LOOP_DEATHS = 3;

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
}

interface Trial {
  version: string;
  from?: string;
  startedAt: string;
  startMono: number;
  deadlineMono: number;
  crashes: number;
  ready: boolean;
}

/** One look at the instance on trial: the service's run, or the next instance of an overlapping handover. */
interface TrialSample {
  /** 0 while it is down. */
  pid: number;
  exitCode?: number;
  /** The supervisor's readiness of this very pid (notification-fd). */
  ready: boolean;
  /** The supervisor's own check result for this pid; null when it has none. */
  healthy: boolean | null;
  /** Deaths counted by the probe itself (an instance may die before any sample saw it run). */
  deaths?: number;
}

interface TrialProbe {
  sample(): TrialSample;
  /** Bring a dead instance back (the supervisor does that by itself for the service's run). */
  revive?(): void;
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class Updater implements UpdaterControl {
  private releases: Release[] = [];
  private readonly actions: ActionInfo[] = [];
  private actionSeq = 0;
  private busy: ActionInfo | undefined;
  private checking: ActionInfo | undefined;
  private trial: Trial | undefined;
  private download: { version: string; bytes: number; total?: number } | undefined;
  private waiting: string | undefined;
  private nextCheckWall: number | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private gateTimer: NodeJS.Timeout | undefined;
  private watchTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly abort = new AbortController();
  // Idle watch of the app (crash loops, exit 42).
  private watchPid = 0;
  private deaths: number[] = [];
  private lastCrashLoopReport = -Infinity;
  /** Releases whose download or install failed: retried with a growing delay, not at every poll. */
  private readonly failures = new Map<string, { count: number; until: number }>();
  /** First discovery of each version on the monotonic clock: MOLT_DELAY and MOLT_ROLLOUT count from it, so a wall-clock jump moves neither. */
  private readonly seenMono = new Map<string, number>();

  constructor(private readonly d: UpdaterDeps) {}

  private get cfg(): UpdaterConfig {
    return this.d.config;
  }
  private get j(): Journal {
    return this.d.journal;
  }

  // ---- life cycle -------------------------------------------------------

  async start(): Promise<void> {
    await this.recover();
    this.scheduleCheck(Math.min(1000, this.cfg.intervalMs));
    this.watchTimer = setInterval(() => this.watchApp(), WATCH_POLL_MS);
  }

  stop(): void {
    this.stopped = true;
    this.abort.abort();
    for (const t of [this.checkTimer, this.gateTimer]) if (t) clearTimeout(t);
    if (this.watchTimer) clearInterval(this.watchTimer);
  }

  // ---- UpdaterControl ---------------------------------------------------

  status(): UpdaterStatus {
    const blocked = new Set(this.j.state.blocked.map((b) => b.version));
    const t = this.trial;
    const now = performance.now();
    return {
      phase: this.j.state.phase,
      source: this.d.source.description,
      policy: this.cfg.policy,
      current: this.d.store.current(),
      previous: this.d.store.previous(),
      // Derived, not remembered: only ever a release newer than what runs now.
      available: this.releases.length ? this.choose()?.version : undefined,
      releases: this.releases.slice(0, 20).map((r) => ({ version: r.version, prerelease: r.prerelease, blocked: blocked.has(r.version) })),
      lastCheck: this.j.state.lastCheck,
      nextCheckAt: this.nextCheckWall ? new Date(this.nextCheckWall).toISOString() : undefined,
      waiting: this.waiting,
      download: this.download ? { ...this.download } : undefined,
      trial: t
        ? {
            version: t.version,
            from: t.from,
            startedAt: t.startedAt,
            deadlineAt: new Date(Date.now() + Math.max(0, t.deadlineMono - now)).toISOString(),
            crashes: t.crashes,
            crashLimit: this.cfg.crashLimit,
            ready: t.ready,
            readyMode: this.cfg.ready,
          }
        : undefined,
      blocked: [...this.j.state.blocked],
      history: this.j.state.history.slice(-30).reverse(),
      actions: this.actions.slice(-10).reverse(),
    };
  }

  check(): ActionInfo {
    if (this.checking) return this.checking;
    const action = this.newAction('check');
    this.checking = action;
    void this.runCheck(action, true).finally(() => {
      if (this.checking === action) this.checking = undefined;
    });
    return action;
  }

  update(version?: string): ActionInfo {
    const action = this.newAction('update', version);
    if (this.busy) return this.fail(action, `an update is already in progress (${this.busy.kind} ${this.busy.version ?? ''})`.trim());
    this.busy = action;
    void this.runNamedUpdate(action, version).finally(() => {
      if (this.busy === action) this.busy = undefined;
    });
    return action;
  }

  rollback(): ActionInfo {
    const action = this.newAction('rollback');
    if (this.busy) return this.fail(action, 'an update is in progress; it rolls back by itself if its trial fails');
    const prev = this.d.store.previous();
    if (!prev) return this.fail(action, 'there is no previous version to roll back to');
    this.busy = action;
    action.version = prev;
    void this.manualRollback(action, prev).finally(() => {
      if (this.busy === action) this.busy = undefined;
    });
    return action;
  }

  ready(): boolean {
    if (!this.trial) return false;
    this.trial.ready = true;
    log.info('app reported ready', { version: this.trial.version });
    return true;
  }

  blocked(): BlockedEntry[] {
    return [...this.j.state.blocked];
  }

  async unblock(version: string): Promise<boolean> {
    if (!this.j.unblock(version)) return false;
    this.failures.delete(version);
    this.event({ event: 'unblock', version });
    await this.j.save();
    // It may be the newest release again.
    this.scheduleCheck(0);
    return true;
  }

  // ---- actions ----------------------------------------------------------

  private newAction(kind: ActionInfo['kind'], version?: string): ActionInfo {
    const a: ActionInfo = { id: `${kind}-${++this.actionSeq}-${Date.now().toString(36)}`, kind, state: 'running', startedAt: new Date().toISOString(), version };
    this.actions.push(a);
    if (this.actions.length > 50) this.actions.shift();
    return a;
  }

  private fail(a: ActionInfo, message: string): ActionInfo {
    a.state = 'failed';
    a.message = message;
    a.finishedAt = new Date().toISOString();
    return a;
  }

  private done(a: ActionInfo, message: string): void {
    a.state = 'done';
    a.message = message;
    a.finishedAt = new Date().toISOString();
  }

  private event(e: Omit<HistoryEntry, 'at'>): void {
    const entry = this.j.addHistory(e);
    try {
      this.d.hooks?.onEvent?.(entry);
    } catch {
      // hooks never break an update
    }
  }

  private async enter(phase: UpdatePhase, target?: UpdateTarget | null): Promise<void> {
    const from = this.j.state.phase;
    if (!canEnter(from, phase)) throw new Error(`internal: phase ${from} -> ${phase} is not in the table`);
    log.debug('phase', { from, to: phase, version: target?.version ?? this.j.state.target?.version });
    await this.j.enter(phase, target);
    // Test seam for fault injection: MOLT_FAULT_PAUSE=<phase>:<ms> (or @FILE holding that, read at each
    // phase) holds a phase open so that a test can kill -9 us in it.
    let spec = process.env.MOLT_FAULT_PAUSE;
    if (spec?.startsWith('@')) {
      try {
        spec = fs.readFileSync(spec.slice(1), 'utf8').trim();
      } catch {
        spec = undefined;
      }
    }
    const pause = spec?.split(':');
    if (pause?.[0] === phase) {
      log.warn('fault-injection pause', { phase, ms: pause[1] });
      await new Promise((r) => setTimeout(r, Number(pause[1]) || 0));
    }
  }

  // ---- checking ---------------------------------------------------------

  private scheduleCheck(ms: number): void {
    if (this.stopped) return;
    if (this.checkTimer) clearTimeout(this.checkTimer);
    this.nextCheckWall = Date.now() + ms;
    this.checkTimer = setTimeout(() => {
      this.checkTimer = undefined;
      this.check();
    }, ms);
  }

  private async list(): Promise<Release[]> {
    const res = await this.d.source.list({ signal: this.abort.signal });
    this.releases = sortNewestFirst(res.releases);
    const now = new Date().toISOString();
    for (const r of this.releases) {
      this.j.state.firstSeen[r.version] ??= now;
      this.firstSeenMono(r.version);
    }
    this.j.state.lastCheck = { at: now, ok: true, notModified: res.notModified };
    this.d.hooks?.onCheck?.(true);
    return this.releases;
  }

  /** A poll: list, choose, stage, and apply when every gate is open. */
  private async runCheck(action: ActionInfo, reschedule: boolean): Promise<void> {
    const idle = this.j.state.phase === 'idle';
    try {
      if (idle && !this.busy) await this.enter('checking');
      await this.list();
      const chosen = this.choose();
      if (!chosen) {
        this.waiting = undefined;
        this.done(action, `up to date (${this.d.store.current() ?? 'nothing installed'})`);
      } else if (this.cfg.policy === 'manual') {
        this.waiting = `policy is manual: run "molt update ${chosen.version}"`;
        this.done(action, `${chosen.version} is available (policy manual)`);
      } else {
        this.done(action, `${chosen.version} is available`);
      }
      if (idle && !this.busy) await this.enter('idle');
      const backoff = chosen && this.failures.get(chosen.version);
      if (backoff && performance.now() < backoff.until) {
        this.waiting = `${chosen!.version} failed ${backoff.count} time${backoff.count === 1 ? '' : 's'}; retrying later`;
      } else if (chosen && this.cfg.policy !== 'manual' && !this.busy) {
        const bg = this.newAction('update', chosen.version);
        this.busy = bg;
        void this.stageAndMaybeApply(bg, chosen).finally(() => {
          if (this.busy === bg) this.busy = undefined;
        });
      }
    } catch (err) {
      const msg = errMessage(err);
      log.warn('check failed', { error: msg });
      this.j.state.lastCheck = { at: new Date().toISOString(), ok: false, error: msg };
      this.d.hooks?.onCheck?.(false);
      this.event({ event: 'check-failed', detail: msg });
      this.fail(action, msg);
      if (this.j.state.phase === 'checking') await this.enter('idle').catch(() => {});
      else await this.j.save().catch(() => {});
    }
    if (reschedule) this.scheduleCheck(this.cfg.intervalMs + jitterMs(this.cfg.jitterMs));
  }

  private choose(): Release | undefined {
    const blocked = new Set(this.j.state.blocked.map((b) => b.version));
    return chooseRelease(this.releases, {
      current: this.d.store.current(),
      policy: this.cfg.policy,
      prerelease: this.cfg.prerelease,
      blocked,
    });
  }

  /** Why `version` may not be applied yet: delay, rollout, schedule; undefined when it may. */
  private gate(version: string): { why: string; retryMs: number } | undefined {
    // With nothing installed there is nothing running to protect: install at once.
    if (!this.d.store.current()) return undefined;
    const left = this.firstSeenMono(version) + this.cfg.delayMs + rolloutDelayMs(this.d.hostname, version, this.cfg.rolloutMs) - performance.now();
    const now = Date.now();
    if (left > 0) {
      const what = this.cfg.rolloutMs ? 'delay and rollout' : 'delay';
      return { why: `${what}: applies after ${new Date(now + left).toISOString()}`, retryMs: left };
    }
    if (this.cfg.schedule && !inSchedule(this.cfg.schedule, new Date(now))) {
      const opens = nextOpening(this.cfg.schedule, new Date(now));
      return { why: `outside the schedule window: opens ${opens.toISOString()}`, retryMs: opens.getTime() - now };
    }
    return undefined;
  }

  /** The journal's wall-clock firstSeen survives restarts; it is read once per process (the time already waited, never
   *  negative), and from then on only the monotonic clock advances the delay. */
  private firstSeenMono(version: string): number {
    let t = this.seenMono.get(version);
    if (t === undefined) {
      const seen = Date.parse(this.j.state.firstSeen[version] ?? '');
      t = performance.now() - (Number.isFinite(seen) ? Math.max(0, Date.now() - seen) : 0);
      this.seenMono.set(version, t);
    }
    return t;
  }

  private async stageAndMaybeApply(action: ActionInfo, release: Release): Promise<void> {
    try {
      const target = this.j.state.target;
      if (this.j.state.phase !== 'staged' || target?.version !== release.version) {
        try {
          await this.stage(release, 'policy');
        } catch (err) {
          await this.stagingFailed(release, err);
          throw err;
        }
      }
      const g = this.gate(release.version);
      if (g) {
        this.waiting = g.why;
        log.info('release staged, waiting', { version: release.version, why: g.why });
        // Capped so that a wall-clock jump is noticed within one interval.
        if (this.gateTimer) clearTimeout(this.gateTimer);
        this.gateTimer = setTimeout(() => this.reevaluateStaged(), Math.min(Math.max(g.retryMs, 1000), this.cfg.intervalMs));
        this.done(action, `${release.version} staged: ${g.why}`);
        return;
      }
      this.waiting = undefined;
      const result = await this.apply();
      this.done(action, result);
    } catch (err) {
      this.fail(action, errMessage(err));
    }
  }

  /** A download or install that failed is retried with a growing delay, not at every poll. */
  private async stagingFailed(release: Release, err: unknown): Promise<void> {
    const msg = errMessage(err);
    const n = (this.failures.get(release.version)?.count ?? 0) + 1;
    const waitMs = Math.min(this.cfg.intervalMs * 2 ** n, 3600_000);
    this.failures.set(release.version, { count: n, until: performance.now() + waitMs });
    log.warn('download failed', { version: release.version, error: msg, attempts: n, retry_in_ms: waitMs });
    this.event({ event: 'check-failed', version: release.version, detail: msg });
    await this.j.save().catch(() => {});
  }

  private reevaluateStaged(): void {
    this.gateTimer = undefined;
    const t = this.j.state.target;
    if (this.busy || this.j.state.phase !== 'staged' || !t) return;
    const action = this.newAction('update', t.version);
    this.busy = action;
    void this.stageAndMaybeApply(action, t.release).finally(() => {
      if (this.busy === action) this.busy = undefined;
    });
  }

  /** `molt update [VERSION]`: fresh list, then stage and apply at once, gates bypassed (a person asked). */
  private async runNamedUpdate(action: ActionInfo, name?: string): Promise<void> {
    try {
      await this.list();
      let release: Release | undefined;
      if (name) {
        release = findNamed(this.releases, name);
        if (!release) throw new Error(`no release named ${name} at ${this.d.source.description}`);
        if (release.version === this.d.store.current()) {
          this.done(action, `${release.version} is already running`);
          return;
        }
      } else {
        release = this.choose();
        if (!release) {
          this.done(action, `up to date (${this.d.store.current() ?? 'nothing installed'})`);
          return;
        }
      }
      action.version = release.version;
      if (this.j.state.phase !== 'staged' || this.j.state.target?.version !== release.version) await this.stage(release, name ? 'named' : 'policy');
      this.waiting = undefined;
      this.done(action, await this.apply());
    } catch (err) {
      this.fail(action, errMessage(err));
    }
  }

  // ---- staging, apply, trial -------------------------------------------

  private async stage(release: Release, reason: UpdateTarget['reason']): Promise<void> {
    const target: UpdateTarget = { version: release.version, from: this.d.store.current(), release, reason, startedAt: new Date().toISOString() };
    if (this.d.store.has(release.version)) {
      await this.enter('staged', target);
      return;
    }
    await this.enter('downloading', target);
    this.download = { version: release.version, bytes: 0 };
    let lastLog = 0;
    let lastPct = -10;
    try {
      const fetched = await this.d.source.fetch(release, this.d.store.stagingRoot(), {
        signal: this.abort.signal,
        onProgress: (p) => {
          this.download = { version: release.version, bytes: p.bytes, total: p.total };
          const pct = p.total ? Math.floor((p.bytes / p.total) * 100) : -1;
          const now = performance.now();
          if ((pct >= 0 && pct >= lastPct + 10) || now - lastLog > 5000) {
            lastPct = pct >= 0 ? pct - (pct % 10) : lastPct;
            lastLog = now;
            log.info('downloading', { version: release.version, bytes: p.bytes, total: p.total, percent: pct >= 0 ? pct : undefined });
          }
        },
      });
      this.d.hooks?.onDownloadBytes?.(fetched.downloaded);
      await this.d.store.install(release.version, fetched.dir);
      this.event({ event: 'download', version: release.version, detail: `${fetched.downloaded} bytes, verified ${fetched.verified.join(' ') || 'n/a'}` });
    } catch (err) {
      this.download = undefined;
      await this.d.store.cleanStaging().catch(() => {});
      await this.enter('idle', null);
      throw err;
    }
    this.download = undefined;
    await this.enter('staged', target);
  }

  /** staged -> stopping -> swapping -> starting -> trial -> committed | rolling-back. */
  private async apply(): Promise<string> {
    const t = this.j.state.target;
    if (!t) throw new Error('internal: nothing staged');
    log.info('applying', { version: t.version, from: t.from ?? 'none', handover: this.cfg.handover });
    this.event({ event: 'update', version: t.version, from: t.from });
    // A first install has nothing to overlap with.
    if (this.cfg.handover === 'overlap' && t.from) {
      const running = this.d.app.status();
      const why = !this.d.app.hasListen()
        ? 'the app has no listen file (two instances could not share its port)'
        : !running || running.state !== 'run' || !running.pid
          ? 'the app is not running'
          : undefined;
      if (!why) return this.applyOverlapping({ ...t, handover: 'overlap' }, running!.pid);
      log.warn('overlapping handover not possible, stopping then starting', { version: t.version, why });
    }
    await this.enter('stopping');
    await this.d.app.stop(this.cfg.stopTimeoutMs);
    await this.enter('swapping');
    await this.swapTo(t.version);
    await this.enter('starting');
    return this.startAndJudge(t);
  }

  /**
   * MOLT_HANDOVER=overlap: staged -> swapping -> starting -> trial with the new version
   * running beside the old one on the same sockets; the old one gets its stop signal only
   * once the new one passed, and a failed new one is stopped while the old one never was.
   */
  private async applyOverlapping(t: UpdateTarget, oldPid: number): Promise<string> {
    await this.enter('swapping', t);
    await this.swapTo(t.version);
    await this.enter('starting');
    const base = this.d.app.next()?.generation ?? 0;
    const first = await this.d.app.startNext();
    if (!first) log.warn('next instance did not start', { version: t.version });
    await this.enter('trial');
    let diedAt: number | undefined;
    // Each generation of the next instance that ended is one death, seen running or not.
    const ended = new Set<number>();
    const verdict = await this.runTrial(t.version, t.from, {
      sample: () => {
        const n = this.d.app.next();
        const pid = n && n.phase === 'run' ? n.pid : 0;
        if (n && n.generation > base && n.phase === 'down' && n.exit?.code !== 42) ended.add(n.generation);
        return { pid, exitCode: n?.exit?.code, ready: pid !== 0 && n!.ready, healthy: null, deaths: ended.size };
      },
      revive: () => {
        // The supervisor does not restart a next instance: we do, throttled like a restart.
        const now = performance.now();
        diedAt ??= now;
        if (now - diedAt < 1000) return;
        diedAt = undefined;
        this.trySend('N');
      },
    });
    if (verdict.ok) {
      const next = this.d.app.next();
      const promoted = next && next.phase === 'run' && (await this.d.app.promoteNext(next.pid));
      if (!promoted) {
        // It passed but could not be handed over (say, finish was running): a plain restart.
        log.warn('handover failed, restarting the app on the new version', { version: t.version });
        await this.d.app.stopNext(this.cfg.stopTimeoutMs).catch(() => {});
        await this.d.app.stop(this.cfg.stopTimeoutMs);
        await this.d.app.start();
      }
      this.watchPid = this.d.app.status()?.pid ?? 0;
      return this.commit(t, verdict.why);
    }
    if (this.stopped) throw new Error(`${t.version}: trial interrupted by shutdown`);
    await this.rollBack({ ...t, failure: verdict.reason }, oldPid);
    throw new Error(`${t.version} failed its trial (${verdict.reason}); stopped it, ${t.from ?? 'nothing'} kept running, blocked it`);
  }

  private async startAndJudge(t: UpdateTarget): Promise<string> {
    const before = this.d.app.status();
    await this.d.app.start();
    await this.enter('trial');
    const verdict = await this.runTrial(t.version, t.from, this.runProbe(before?.state === 'down' ? before.stampMs : undefined));
    if (verdict.ok) return this.commit(t, verdict.why);
    // A shutdown is not a verdict: leave the journal at `trial`, recovery judges it again.
    if (this.stopped) throw new Error(`${t.version}: trial interrupted by shutdown`);
    await this.rollBack({ ...t, failure: verdict.reason });
    throw new Error(`${t.version} failed its trial (${verdict.reason}); rolled back to ${t.from ?? 'nothing'} and blocked it`);
  }

  private async commit(t: UpdateTarget, why: string): Promise<string> {
    await this.enter('committed');
    this.event({ event: 'commit', version: t.version, from: t.from, detail: why });
    log.info('committed', { version: t.version, why });
    // Pruned while still 'committed': a crash mid-prune is cleaned up by recovery.
    const protect = [t.version, ...(t.from ? [t.from] : [])];
    const removed = await this.d.store.prune(this.cfg.keep, protect).catch(() => [] as string[]);
    if (removed.length) log.info('pruned old versions', { removed: removed.join(',') });
    await this.enter('idle', null);
    return `updated to ${t.version} (${why})`;
  }

  private async swapTo(version: string): Promise<void> {
    await this.d.store.activate(version);
    await this.sideEffectsOfSwap(version);
  }

  /** MOLT_APP_DIR and MOLT_VERSION_FILE follow `current`. */
  private async sideEffectsOfSwap(version: string | undefined): Promise<void> {
    if (this.cfg.appDir && version) {
      const tmp = `${this.cfg.appDir}.molt-new`;
      try {
        fs.rmSync(tmp, { force: true });
        fs.symlinkSync(path.join(this.d.store.home, 'versions', version), tmp);
        fs.renameSync(tmp, this.cfg.appDir);
      } catch (err) {
        log.warn('cannot update MOLT_APP_DIR', { path: this.cfg.appDir, error: errMessage(err) });
      }
    }
    try {
      await writeFileAtomic(this.cfg.versionFile, version ? `${version}\n` : '');
    } catch (err) {
      log.warn('cannot write MOLT_VERSION_FILE', { path: this.cfg.versionFile, error: errMessage(err) });
    }
  }

  /** The service's run, as the supervisor reports it. */
  /**
   * The service's run, as the supervisor reports it. A death is a new pid after another one,
   * or a `down` status with a stamp not seen before (other than `stoppedAt`, the stop before
   * this start): a run that exits at once may never be seen running by a 100 ms poll.
   */
  private runProbe(stoppedAt: number | undefined): TrialProbe {
    const downs = new Set<number>(stoppedAt !== undefined ? [stoppedAt] : []);
    let lastRunPid = 0;
    let countedSinceRun = false;
    let deaths = 0;
    return {
      sample: () => {
        const s = this.d.app.status();
        const pid = s && s.state === 'run' ? s.pid : 0;
        const request = s?.lastExit?.code === 42; // a restart into a staged update, not a crash
        if (pid !== 0) {
          if (lastRunPid !== 0 && pid !== lastRunPid && !countedSinceRun && !request) deaths++;
          if (pid !== lastRunPid) countedSinceRun = false;
          lastRunPid = pid;
        } else if (s?.state === 'down' && !downs.has(s.stampMs)) {
          downs.add(s.stampMs);
          if (!request) deaths++;
          countedSinceRun = true;
        }
        const health = pid !== 0 ? this.d.app.health() : undefined;
        const mine = health && health.pid === pid ? health : undefined;
        return { pid, exitCode: s?.lastExit?.code, ready: mine?.ready === true, healthy: mine ? mine.healthy : null, deaths };
      },
    };
  }

  private async runTrial(version: string, from: string | undefined, probe: TrialProbe): Promise<{ ok: true; why: string } | { ok: false; reason: string }> {
    const start = performance.now();
    const trial: Trial = { version, from, startedAt: new Date().toISOString(), startMono: start, deadlineMono: start + this.cfg.trialMs, crashes: 0, ready: false };
    this.trial = trial;
    log.info('trial started', { version, trial_ms: this.cfg.trialMs, ready: this.cfg.ready });
    let lastPid = 0;
    let upSince: number | undefined;
    try {
      for (;;) {
        if (this.stopped) return { ok: false, reason: 'the updater stopped during the trial' };
        const s = probe.sample();
        const pid = s.pid;
        const now = performance.now();
        if (s.deaths !== undefined && s.deaths > trial.crashes) {
          trial.crashes = s.deaths;
          log.warn('app died during its trial', { version, crashes: trial.crashes, code: s.exitCode });
        }
        if (pid !== lastPid) {
          if (s.deaths === undefined && lastPid !== 0 && s.exitCode !== 42) {
            // One death of the trial version (exit 42 is a request, not a crash).
            trial.crashes++;
            log.warn('app died during its trial', { version, crashes: trial.crashes, code: s.exitCode });
          }
          upSince = pid !== 0 ? now : undefined;
          lastPid = pid;
        }
        // The stay-up clock is what auto mode commits on; show it as the deadline.
        if (this.cfg.ready === 'auto') trial.deadlineMono = (upSince ?? now) + this.cfg.trialMs;
        // The supervisor's health state of this very run: s6 readiness, and its own check results.
        if (s.ready && !trial.ready) {
          trial.ready = true;
          log.info('app ready (notification-fd)', { version });
        }
        let checkPassed: boolean | undefined;
        const stayed = upSince !== undefined && now - upSince >= this.cfg.trialMs;
        if (stayed && !trial.ready && this.cfg.ready === 'auto' && this.d.app.hasCheck()) {
          checkPassed = s.healthy !== null ? s.healthy : await this.runCheckScript();
        }
        const v = judgeTrial({
          nowMs: now,
          startMs: trial.startMono,
          trialMs: this.cfg.trialMs,
          upSinceMs: upSince,
          crashes: trial.crashes,
          crashLimit: this.cfg.crashLimit,
          ready: trial.ready,
          readyMode: this.cfg.ready,
          checkPassed,
        });
        if (v.verdict === 'commit') return { ok: true, why: v.why };
        if (v.verdict === 'fail') return { ok: false, reason: v.reason };
        if (pid === 0) probe.revive?.();
        await new Promise((r) => setTimeout(r, TRIAL_POLL_MS));
      }
    } finally {
      this.trial = undefined;
      this.watchPid = this.d.app.status()?.pid ?? 0;
    }
  }

  private runCheckScript(): Promise<boolean> {
    return new Promise((resolve) => {
      const child = spawn('./check', [], { cwd: this.d.app.dir, stdio: 'ignore' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.on('error', () => {
        clearTimeout(timer);
        resolve(false);
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve(code === 0);
      });
    });
  }

  /** overlapOldPid: the old version's pid during an overlapping handover; it keeps running if it still does. */
  private async rollBack(t: UpdateTarget, overlapOldPid?: number): Promise<void> {
    const reason = t.failure ?? 'rolled back';
    log.warn('rolling back', { version: t.version, to: t.from ?? 'none', reason });
    await this.enter('rolling-back', t);
    const stopFailed = (err: unknown) => log.warn('stop during rollback failed', { error: errMessage(err) });
    if (overlapOldPid !== undefined) await this.d.app.stopNext(this.cfg.stopTimeoutMs).catch(stopFailed);
    // The old version is untouched only if its very process still runs; a restart since then ran the new one.
    const oldRuns = overlapOldPid !== undefined && this.d.app.status()?.pid === overlapOldPid;
    if (!oldRuns) await this.d.app.stop(this.cfg.stopTimeoutMs).catch(stopFailed);
    if (t.from && this.d.store.has(t.from)) {
      await this.swapTo(t.from);
      // `previous` would now name the failed version; nothing to go back to from here.
      await this.d.store.setPrevious(undefined);
      if (!oldRuns) await this.d.app.start().catch((err) => log.warn('start after rollback failed', { error: errMessage(err) }));
    } else {
      // A first install failed: take `current` away so the app waits instead of running a bad release.
      fs.rmSync(path.join(this.d.store.home, 'current'), { force: true });
      await this.sideEffectsOfSwap(undefined);
      this.d.app.send('u');
    }
    this.j.block(t.version, reason);
    this.event({ event: 'rollback', version: t.from, from: t.version, detail: reason });
    this.event({ event: 'block', version: t.version, detail: reason });
    await this.enter('idle', null);
  }

  private async manualRollback(action: ActionInfo, prev: string): Promise<void> {
    const cur = this.d.store.current();
    try {
      const release: Release = { version: prev, tag: prev, prerelease: false, locator: {} };
      const t: UpdateTarget = { version: cur ?? prev, from: prev, release, reason: 'rollback', startedAt: new Date().toISOString(), failure: 'rolled back by request' };
      await this.rollBack(t);
      this.done(action, `rolled back to ${prev}; ${cur ?? ''} blocked`.trim());
    } catch (err) {
      this.fail(action, errMessage(err));
    }
  }

  // ---- recovery and watching -------------------------------------------

  private async recover(): Promise<void> {
    const st = this.j.state;
    const current = this.d.store.current();
    const t = st.target;
    const plan = recoveryFor(st.phase, current, t?.version, t?.from);
    await this.d.store.cleanStaging().catch((err) => log.warn('cannot clean staging', { error: errMessage(err) }));
    // A next instance of an interrupted overlapping handover is not judged by anyone now: stop it.
    if (t?.handover === 'overlap' && st.phase !== 'idle') await this.d.app.stopNext(this.cfg.stopTimeoutMs).catch(() => {});
    if (st.phase !== 'idle') log.warn('recovering an interrupted update', { phase: st.phase, plan, version: t?.version, current: current ?? 'none' });
    switch (plan) {
      case 'idle':
        st.phase = 'idle';
        delete st.target;
        await this.j.save();
        break;
      case 'keep-staged':
        if (t && !this.d.store.has(t.version)) {
          st.phase = 'idle';
          delete st.target;
        }
        await this.j.save();
        break;
      case 'restart-current':
        if (current) await this.sideEffectsOfSwap(current);
        this.trySend('u');
        st.phase = 'idle';
        delete st.target;
        this.event({ event: 'recover', version: current, detail: 'interrupted update abandoned; current version restarted' });
        await this.j.save();
        break;
      case 'resume-trial':
        this.event({ event: 'recover', version: t!.version, detail: 'interrupted update resumed at its trial' });
        st.phase = 'starting';
        await this.j.save();
        this.busy = this.newAction('update', t!.version);
        // After an overlapping handover the service's run may still be the old version: restart it on current.
        void (t!.handover === 'overlap' ? this.d.app.stop(this.cfg.stopTimeoutMs) : Promise.resolve())
          .then(() => this.startAndJudge(t!))
          .then((m) => this.done(this.busy!, m))
          .catch((err) => this.fail(this.busy!, errMessage(err)))
          .finally(() => (this.busy = undefined));
        break;
      case 'roll-back':
        this.event({ event: 'recover', version: t?.version, detail: 'interrupted rollback completed' });
        st.phase = 'idle';
        await this.j.enter('rolling-back');
        await this.rollBack(t!);
        break;
    }
  }

  private trySend(letters: string): void {
    try {
      this.d.app.send(letters);
    } catch (err) {
      log.warn('cannot control the app', { error: errMessage(err) });
    }
  }

  /** Between updates: report crash loops (never roll back for them) and honour exit 42. */
  private watchApp(): void {
    if (this.trial || this.busy) return;
    const s = this.d.app.status();
    if (!s) return;
    const pid = s.state === 'run' ? s.pid : 0;
    if (this.watchPid !== 0 && pid !== this.watchPid) {
      const code = s.lastExit?.code;
      if (code === 42 && this.j.state.phase === 'staged' && this.j.state.target) {
        log.info('app asked for the staged update (exit 42)', { version: this.j.state.target.version });
        const action = this.newAction('update', this.j.state.target.version);
        this.busy = action;
        void this.apply()
          .then((m) => this.done(action, m))
          .catch((err) => this.fail(action, errMessage(err)))
          .finally(() => (this.busy = undefined));
      } else if (code !== 0 && code !== 42) {
        const now = performance.now();
        this.deaths = this.deaths.filter((t) => now - t < CRASH_LOOP_WINDOW_MS);
        this.deaths.push(now);
        if (this.deaths.length >= CRASH_LOOP_DEATHS && now - this.lastCrashLoopReport > 10 * 60_000) {
          this.lastCrashLoopReport = now;
          const detail = `${this.deaths.length} deaths within ${CRASH_LOOP_WINDOW_MS / 1000}s (not an update: not rolled back)`;
          log.warn('app is crash-looping', { version: this.d.store.current(), detail });
          this.event({ event: 'crash-loop', version: this.d.store.current(), detail });
          void this.j.save().catch(() => {});
        }
      }
    }
    this.watchPid = pid;
  }
}
