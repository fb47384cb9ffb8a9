// molt updates itself (issue 15): the app's pipeline (source, download, verify,
// trust, store, journal, blocks) run a second time over MOLT_HOME/molt, where a
// release is molt's bundle. Applying one is not stop -> swap -> start but:
// activate it, ask PID 1 to re-execute into it (its request FIFO), and wait for
// PID 1 to say it runs it with every service taken over (common/pid1.ts). A
// new molt that does not, or that PID 1 refuses (it stays or returns to the old
// one), is blocked and `current` goes back. The updater itself runs the new
// molt from its next start (resolve.ts).
import fs from 'node:fs';
import path from 'node:path';
import type { SelfStatus } from '../../api/types.js';
import { parsePid1, pid1File, type Pid1Identity } from '../../common/pid1.js';
import { moltVersion } from '../../common/version.js';
import { REQUEST_FIFO } from '../../init/reexec.js';
import { settlePrevious, tidyStore } from '../bookkeeping.js';
import { logger } from '../../common/log.js';
import { errMessage, type UpdaterCore } from '../core.js';
import { isResting } from '../phases.js';
import { chooseRelease, sortNewestFirst } from '../policy.js';
import { stage } from '../stage.js';
import type { Release } from '../types.js';
import { ENTRY, chooseMolt, inspectInstall, pid1Behind, realEntry } from './resolve.js';
import { judgeSelfTrial, selfTrialMs } from './trial.js';

const log = logger('self');
const WATCH_MS = 200;

export interface SelfDeps {
  /** The second UpdaterCore: MOLT_SELF's source, the store and journal under MOLT_HOME/molt. */
  core: UpdaterCore;
  servicesDir: string;
  /** Ask PID 1 to re-execute into `entry` (default: its request FIFO). */
  requestReexec?: (entry: string) => void;
}

/** Write one request line to PID 1's re-exec FIFO (src/init/reexec.ts reads it). */
export function writeReexecRequest(servicesDir: string, entry: string): void {
  const fd = fs.openSync(path.join(servicesDir, REQUEST_FIFO), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  try {
    fs.writeSync(fd, `${entry}\n`);
  } finally {
    fs.closeSync(fd);
  }
}

export class SelfUpdater {
  private releases: Release[] = [];
  private trial: { version: string; from?: string; startedAt: string; deadlineMs: number } | undefined;
  readonly c: UpdaterCore;

  constructor(private readonly d: SelfDeps) {
    this.c = d.core;
  }

  pid1(): Pid1Identity | undefined {
    try {
      return parsePid1(fs.readFileSync(pid1File(this.d.servicesDir), 'utf8'));
    } catch {
      return undefined;
    }
  }

  /** The version that counts as running for the policy: the installed current, else the image's molt (this one's, at first). */
  private running(): string {
    return this.c.d.store.current() ?? moltVersion();
  }

  private entryOf(version: string): string {
    return realEntry(path.join(this.c.d.store.home, 'versions', version, ENTRY));
  }

  /** List MOLT_SELF and choose; undefined when there is nothing to take (or policy manual). Throws when the source fails. */
  async poll(): Promise<Release | undefined> {
    const c = this.c;
    try {
      const res = await c.d.source.list({ signal: c.abort.signal });
      this.releases = sortNewestFirst(res.releases);
      c.j.state.lastCheck = { at: new Date().toISOString(), ok: true, notModified: res.notModified };
    } catch (err) {
      c.j.state.lastCheck = { at: new Date().toISOString(), ok: false, error: errMessage(err) };
      await c.save();
      throw err;
    }
    await c.save();
    const chosen = this.choose();
    if (chosen && c.cfg.policy === 'manual') {
      log.info('molt release available (MOLT_SELF_POLICY manual)', { version: chosen.version });
      return undefined;
    }
    if (chosen) {
      // A download or install that failed waits intervalMs * 2^n before the next attempt, as the app's.
      const backoff = c.failures.get(chosen.version);
      if (backoff && performance.now() < backoff.until) return undefined;
      return chosen;
    }
    // Nothing newer, but PID 1 runs another molt than `current` (the container restarted on the image's): trial it again.
    const want = this.wanted();
    if (want.use === 'installed' && pid1Behind(want, this.pid1()?.entry)) {
      log.info('PID 1 does not run the installed molt; asking it to', { version: want.version });
      return this.releases.find((r) => r.version === want.version) ?? { version: want.version, tag: want.version, prerelease: false, locator: {} };
    }
    return undefined;
  }

  private choose(): Release | undefined {
    const blocked = new Set(this.c.j.state.blocked.map((b) => b.version));
    return chooseRelease(this.releases, { current: this.running(), policy: this.c.cfg.policy, prerelease: this.c.cfg.prerelease, blocked });
  }

  /** Stage `release` into MOLT_HOME/molt, then activate it and trial it as PID 1. */
  async update(release: Release): Promise<string> {
    const c = this.c;
    // Installed and current already: only PID 1 has to follow (pollSelf found it behind).
    const rejoin = release.version === c.d.store.current();
    if (rejoin) await c.enter('staged', { version: release.version, from: c.d.store.previous(), release, reason: 'policy', startedAt: new Date().toISOString() });
    else if (!(c.j.state.phase === 'staged' && c.j.state.target?.version === release.version)) {
      try {
        await stage(c, release, 'policy');
      } catch (err) {
        // A refused release is blocked by stage(); anything else is retried later.
        if (!c.j.isBlocked(release.version)) {
          const { count, waitMs } = c.noteFailure(release.version);
          log.warn('molt download failed', { version: release.version, error: errMessage(err), attempts: count, retry_in_ms: waitMs });
        }
        throw err;
      }
    }
    const target = c.j.state.target!;
    const from = rejoin ? target.from : c.d.store.current();
    const before = this.pid1();
    await c.enter('swapping', { ...target, ...(from ? { from } : {}) });
    if (!rejoin) await c.d.store.activate(release.version);
    c.event({ event: 'update', version: release.version, ...(from ? { from } : {}), detail: rejoin ? 'PID 1 runs another molt: re-executing it into current' : 'molt' });
    await c.enter('starting');
    const verdict = await this.reexecTrial(release.version, from);
    if (verdict.ok) {
      await c.enter('committed');
      c.event({ event: 'commit', version: release.version, detail: verdict.why });
      await c.enter('idle', null);
      await tidyStore(c);
      log.info('molt committed', { version: release.version, why: verdict.why });
      return `molt ${release.version} committed`;
    }
    // Stopped (the updater's shutdown): the trial is not over; the next start judges it (recover).
    if (c.stopped) throw new Error(`molt ${release.version}: the updater stopped during its trial; judged at its next start`);
    await this.rollBack(release.version, from, before, verdict.reason);
    throw new Error(`molt ${release.version} rolled back: ${verdict.reason}`);
  }

  /** Ask PID 1 to re-exec into `version`'s install and judge it. */
  private async reexecTrial(version: string, from: string | undefined): Promise<{ ok: true; why: string } | { ok: false; reason: string }> {
    const c = this.c;
    const entry = this.entryOf(version);
    const requestedMs = Date.now();
    const deadlineMs = requestedMs + selfTrialMs(c.cfg.trialMs);
    this.trial = { version, ...(from ? { from } : {}), startedAt: new Date(requestedMs).toISOString(), deadlineMs };
    try {
      await c.enter('trial');
      log.info('asking PID 1 to re-execute into molt', { version, entry });
      try {
        (this.d.requestReexec ?? ((e) => writeReexecRequest(this.d.servicesDir, e)))(entry);
      } catch (err) {
        return { ok: false, reason: `cannot ask PID 1 to re-execute: ${errMessage(err)}` };
      }
      for (;;) {
        const v = judgeSelfTrial({ id: this.pid1(), version, entry, requestedMs, nowMs: Date.now(), deadlineMs });
        if (v.verdict === 'commit') return { ok: true, why: v.why };
        if (v.verdict === 'fail') return { ok: false, reason: v.reason };
        if (c.stopped) return { ok: false, reason: 'the updater stopped during the trial' };
        await new Promise((r) => setTimeout(r, WATCH_MS));
      }
    } finally {
      this.trial = undefined;
    }
  }

  /** Block `failed`, point `current` back, and if PID 1 runs the failed molt, ask it back to the one it ran before. */
  private async rollBack(failed: string, from: string | undefined, before: Pid1Identity | undefined, reason: string, via: 'step' | 'recovery' = 'step'): Promise<void> {
    const c = this.c;
    log.warn('molt failed its trial; rolling back and blocking it', { version: failed, to: from ?? 'the image\'s molt', reason });
    if (via === 'step') await c.enter('rolling-back');
    c.j.block(failed, reason);
    c.event({ event: 'block', version: failed, detail: reason });
    if (from) {
      await c.d.store.activate(from);
      await settlePrevious(c, from, failed);
    } else {
      await c.d.store.clearCurrent();
    }
    c.event({ event: 'rollback', version: from ?? 'image', from: failed, detail: reason });
    const now = this.pid1();
    const back = before?.entry ?? (from ? this.entryOf(from) : undefined);
    if (now && now.entry === this.entryOf(failed) && back) {
      log.warn('PID 1 runs the failed molt; asking it back', { to: back });
      try {
        (this.d.requestReexec ?? ((e) => writeReexecRequest(this.d.servicesDir, e)))(back);
      } catch (err) {
        log.error('cannot ask PID 1 back to the old molt', { error: errMessage(err) });
      }
    }
    await c.enter('idle', null, via);
    await tidyStore(c);
  }

  /** At the updater's start: a trial left by a killed updater is judged by what PID 1 runs now. */
  async recover(): Promise<void> {
    const c = this.c;
    await c.d.store.cleanStaging().catch((err) => log.warn('cannot clean staging', { error: errMessage(err) }));
    const phase = c.j.state.phase;
    if (isResting(phase)) return;
    const t = c.j.state.target;
    if (!t || phase === 'checking' || phase === 'downloading' || phase === 'committed') {
      await c.enter('idle', null, 'recovery');
      return;
    }
    const id = this.pid1();
    const ok = id?.entry === this.entryOf(t.version) && id.version === t.version && (!id.adopted || id.adopted.accounted === id.adopted.of);
    if (ok && phase !== 'rolling-back') {
      c.event({ event: 'commit', version: t.version, detail: 'PID 1 runs it (trial resumed after a restart of the updater)' });
      await c.enter('idle', null, 'recovery');
      return;
    }
    await this.rollBack(t.version, t.from, undefined, t.failure ?? 'its trial was interrupted and PID 1 does not run it', 'recovery');
  }

  status(spec: string): SelfStatus {
    const c = this.c;
    const id = this.pid1();
    const available = this.releases.length ? this.choose()?.version : undefined;
    const t = this.trial;
    return {
      ...(id ? { running: id.version } : {}),
      updater: moltVersion(),
      source: `${c.d.source.description} (MOLT_SELF=${spec})`,
      policy: c.cfg.policy,
      current: c.d.store.current(),
      previous: c.d.store.previous(),
      ...(available ? { available } : {}),
      ...(c.j.state.lastCheck ? { lastCheck: c.j.state.lastCheck } : {}),
      phase: c.j.state.phase,
      ...(t ? { trial: { version: t.version, ...(t.from ? { from: t.from } : {}), startedAt: t.startedAt, deadlineAt: new Date(t.deadlineMs).toISOString() } } : {}),
      blocked: [...c.j.state.blocked],
      history: c.j.state.history.slice(-30).reverse(),
    };
  }

  /** Which molt PID 1 should run now (for status and diagnostics). */
  wanted(): ReturnType<typeof chooseMolt> {
    return chooseMolt({ enabled: true, current: inspectInstall(this.c.d.store.home), blocked: new Set(this.c.j.state.blocked.map((b) => b.version)) });
  }
}

/** MOLT_SELF off: still which molt runs, as PID 1 and as this updater. */
export function selfStatusOff(servicesDir: string): SelfStatus {
  let running: string | undefined;
  try {
    running = parsePid1(fs.readFileSync(pid1File(servicesDir), 'utf8'))?.version;
  } catch {
    running = undefined;
  }
  return { ...(running ? { running } : {}), updater: moltVersion(), blocked: [], history: [] };
}
