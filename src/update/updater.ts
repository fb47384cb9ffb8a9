// The updater service: polls the source, stages a release while the old one
// runs, then stop -> swap -> start -> trial, and commits or rolls back. Each
// phase is journaled before it begins; recover() resumes from any of them.
// This class is the updater's face (UpdaterControl for the API, start/stop for
// `molt updater`); the work is in one file per concern over UpdaterCore:
// poll.ts, stage.ts, apply.ts, trial.ts, rollback.ts, recover.ts, watch.ts, bundled.ts.
import type { ActionInfo, BlockedEntry, BlockResult, UpdaterControl, UpdaterStatus } from '../api/types.js';
import { errMessage, log, UpdaterCore, type UpdaterDeps } from './core.js';
import { isResting } from './phases.js';
import { check, choose, runNamedUpdate, scheduleCheck } from './poll.js';
import { recover, settle } from './recover.js';
import { manualRollback } from './rollback.js';
import { watchHealth } from './health-events.js';
import { watchApp, watchSource } from './watch.js';
import { judgeFreshness } from './freshness.js';
import { installBundled } from './bundled.js';
import { decideStored, unverifiedCurrentWarning } from './trust/stored.js';
import type { Fleet } from './fleet/fleet.js';
import { selfStatusOff } from './self/updater.js';

export type { UpdaterDeps, UpdaterHooks } from './core.js';

function fleetStatus(f: Fleet): Pick<UpdaterStatus, 'paused' | 'fleet'> {
  const paused = f.localPaused() ? 'local' : f.fleetPaused ? 'fleet' : undefined;
  return { ...(paused ? { paused } : {}), fleet: { mode: f.cfg.mode, replica: f.cfg.replica, ...(f.cfg.canaryShare > 0 ? { canary: f.canary } : {}) } };
}

const WATCH_POLL_MS = 1000;

export class Updater implements UpdaterControl {
  private readonly c: UpdaterCore;

  constructor(deps: UpdaterDeps) {
    this.c = new UpdaterCore(deps);
  }

  // ---- life cycle -------------------------------------------------------

  async start(): Promise<void> {
    const c = this.c;
    c.syncHold();
    // A molt trial left by a killed updater first: PID 1 says whether it took.
    await c.d.self?.updater.recover().catch((err) => log.warn('cannot recover molt\'s own update', { error: errMessage(err) }));
    let resume: (() => Promise<string>) | undefined;
    try {
      resume = await recover(c);
    } catch (err) {
      // state.json cannot be written (disk full): the updater stays up, as after a failed step (core.leftMidUpdate):
      // the app runs what `current` says, and the first poll recovers from the phase state.json holds.
      log.warn('cannot recover at start; recovering at the next poll', { phase: c.j.state.phase, current: c.d.store.current() ?? 'none', error: errMessage(err) });
      if (!isResting(c.j.state.phase)) c.trySend('u');
    }
    const current = c.d.store.current();
    const unverified = unverifiedCurrentWarning(c.d.trust, current, current ? c.j.state.verifiedBy?.[current] : undefined);
    if (unverified) log.warn(unverified, { version: current });
    const t = c.j.state.target;
    const firstPoll = () => scheduleCheck(c, Math.min(1000, c.cfg.intervalMs));
    if (resume && t) c.runExclusive('update', c.newAction('update', t.version), resume);
    // The image's release before the first poll; after a resumed trial, at the next start (one update at a time).
    if (c.d.bundled && !resume && isResting(c.j.state.phase)) c.runExclusive('update', c.newAction('update'), () => installBundled(c, firstPoll));
    else firstPoll();
    c.watchTimer = setInterval(() => {
      watchHealth(c);
      watchApp(c);
      watchSource(c);
    }, WATCH_POLL_MS);
  }

  stop(): void {
    const c = this.c;
    c.stopped = true;
    c.abort.abort();
    const self = c.d.self?.updater.c;
    if (self) {
      self.stopped = true;
      self.abort.abort();
    }
    for (const t of [c.checkTimer, c.gateTimer]) if (t) clearTimeout(t);
    if (c.watchTimer) clearInterval(c.watchTimer);
    // A trial interrupted by the shutdown is not over: the hold goes with the process (flock), not before.
  }

  // ---- UpdaterControl ---------------------------------------------------

  status(): UpdaterStatus {
    const c = this.c;
    const blocked = new Set(c.j.state.blocked.map((b) => b.version));
    const t = c.trial;
    const now = performance.now();
    const current = c.d.store.current();
    const verifiedBy = current ? c.j.state.verifiedBy?.[current] : undefined;
    return {
      phase: c.j.state.phase,
      source: c.d.source.description,
      policy: c.cfg.policy,
      current,
      ...(verifiedBy ? { verifiedBy } : {}),
      ...(current && !decideStored(c.d.trust, current, verifiedBy, 'install').allow ? { unverified: true } : {}),
      ...(c.d.trustRoot ? { trustRoot: c.d.trustRoot.info() } : {}),
      previous: c.d.store.previous(),
      // Derived, not remembered: only ever a release newer than what runs now.
      available: c.releases.length ? choose(c)?.version : undefined,
      releases: c.releases.slice(0, 20).map((r) => ({ version: r.version, prerelease: r.prerelease, blocked: blocked.has(r.version) })),
      lastCheck: c.j.state.lastCheck,
      freshness: judgeFreshness(Date.now(), c.j.state.source, c.startedAt, c.cfg.staleAfterMs),
      nextCheckAt: c.nextCheckWall ? new Date(c.nextCheckWall).toISOString() : undefined,
      waiting: c.waiting,
      ...(c.d.fleet ? fleetStatus(c.d.fleet) : {}),
      download: c.download ? { ...c.download } : undefined,
      trial: t
        ? {
            version: t.version,
            from: t.from,
            startedAt: t.startedAt,
            deadlineAt: new Date(Date.now() + Math.max(0, t.deadlineMono - now)).toISOString(),
            crashes: t.crashes,
            crashLimit: c.cfg.crashLimit,
            ready: t.ready,
            readyMode: c.cfg.ready,
          }
        : undefined,
      blocked: [...c.j.state.blocked],
      history: c.j.state.history.slice(-30).reverse(),
      actions: c.actions.slice(-10).reverse(),
      self: c.d.self ? c.d.self.updater.status(c.d.self.spec) : selfStatusOff(c.cfg.servicesDir),
    };
  }

  check(): ActionInfo {
    return check(this.c);
  }

  update(version?: string): ActionInfo {
    const c = this.c;
    const action = c.newAction('update', version);
    const running = c.holder('update');
    if (running) return c.fail(action, `an update is already in progress (${running.kind} ${running.version ?? ''})`.trim());
    c.runExclusive('update', action, () => runNamedUpdate(c, action, version));
    return action;
  }

  rollback(): ActionInfo {
    const c = this.c;
    const action = c.newAction('rollback');
    if (c.holder('update')) return c.fail(action, 'an update is in progress; it rolls back by itself if its trial fails');
    const prev = c.d.store.previous();
    if (!prev) return c.fail(action, 'there is no previous version to roll back to');
    action.version = prev;
    c.runExclusive('update', action, async () => {
      // A phase left by a step whose journal write failed is recovered first.
      await settle(c);
      // Settling may itself have rolled back (a failed trial): what is `previous` now is what counts.
      const to = c.d.store.previous();
      if (!to) throw new Error('there is no previous version to roll back to');
      return manualRollback(c, to);
    });
    return action;
  }

  ready(): boolean {
    const t = this.c.trial;
    if (!t) return false;
    t.ready = true;
    log.info('app reported ready', { version: t.version });
    return true;
  }

  blocked(): BlockedEntry[] {
    return [...this.c.j.state.blocked];
  }

  async unblock(version: string, opts: { of?: 'molt' } = {}): Promise<boolean> {
    // molt's own blocks live in its second core's journal (MOLT_HOME/molt); without MOLT_SELF there are none.
    const c = opts.of === 'molt' ? this.c.d.self?.updater.c : this.c;
    if (!c?.j.unblock(version)) return false;
    c.failures.delete(version);
    c.event({ event: 'unblock', version });
    await c.j.save();
    // It may be the newest release again (a check polls molt's source first, then the app's).
    scheduleCheck(this.c, 0);
    return true;
  }

  /**
   * `molt block VERSION`: the same block a failed trial leaves (state.json, an event, pruned first),
   * with a reason saying a person did it. The running version is refused: blocking it would not stop
   * it, and `molt rollback` is what goes back and blocks it. So is a version an update is applying now.
   */
  async block(version: string, reason?: string): Promise<BlockResult> {
    const c = this.c;
    if (version === c.d.store.current()) return { result: 'refused', error: `${version} is the running version: molt rollback goes back to the previous one and blocks it` };
    const t = c.j.state.target;
    const busy = c.holder('update');
    if (busy?.version === version || (t?.version === version && !isResting(c.j.state.phase))) {
      return { result: 'refused', error: `an update to ${version} is under way; if it commits, molt rollback blocks it` };
    }
    if (c.j.isBlocked(version)) return { result: 'already' };
    const why = `blocked by hand${reason ? `: ${reason}` : ''}`;
    c.j.block(version, why);
    c.failures.delete(version);
    c.event({ event: 'block', version, detail: why });
    log.warn('blocked by hand', { version, ...(reason ? { reason } : {}) });
    // A release staged and waiting (a rollout gate) is dropped: staged -> idle, as when the fleet blocks it.
    if (!busy && c.j.state.phase === 'staged' && t?.version === version) await c.enter('idle', null);
    else await c.save();
    // What waited (a gate, a manual policy's hint) is decided again without it.
    scheduleCheck(c, 0);
    return { result: 'blocked' };
  }
}
