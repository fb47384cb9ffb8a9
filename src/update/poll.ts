// Polling: list the source, choose a release, and hand it to staging and
// apply when every gate (delay, rollout, schedule, backoff) is open.
import type { ActionInfo } from '../api/types.js';
import { apply } from './apply.js';
import { errMessage, log, type UpdaterCore } from './core.js';
import { isResting } from './phases.js';
import { chooseRelease, findNamed, sortNewestFirst } from './policy.js';
import { rolloutDelayMs, jitterMs } from './rollout.js';
import { decideGate, type GateDecision } from './fleet/wave.js';
import { inSchedule, nextOpening } from './schedule.js';
import { settle } from './recover.js';
import { noteAnswer } from './freshness.js';
import { stage } from './stage.js';
import type { Release } from './types.js';

/** A poll now, unless one runs: then that one's action. */
export function check(c: UpdaterCore): ActionInfo {
  const running = c.holder('check');
  if (running) return running;
  const action = c.newAction('check');
  c.runExclusive('check', action, () => runCheck(c, true));
  return action;
}

export function scheduleCheck(c: UpdaterCore, ms: number): void {
  if (c.stopped) return;
  if (c.checkTimer) clearTimeout(c.checkTimer);
  c.nextCheckWall = Date.now() + ms;
  c.checkTimer = setTimeout(() => {
    c.checkTimer = undefined;
    check(c);
  }, ms);
}

async function list(c: UpdaterCore): Promise<Release[]> {
  // The keyless trust root first (never throws; at most every few hours once fresh).
  await c.d.trustRoot?.refreshIfDue();
  const res = await c.d.source.list({ signal: c.abort.signal });
  c.releases = sortNewestFirst(res.releases);
  const now = new Date().toISOString();
  for (const r of c.releases) {
    c.j.state.firstSeen[r.version] ??= now;
    firstSeenMono(c, r.version);
  }
  c.j.state.lastCheck = { at: now, ok: true, notModified: res.notModified };
  c.j.state.source = noteAnswer(c.j.state.source, res.releases, now);
  c.d.hooks?.onCheck?.(true);
  return c.releases;
}

/** A poll: list, choose, stage, and apply when every gate is open. */
async function runCheck(c: UpdaterCore, reschedule: boolean): Promise<string> {
  const phase = c.j.state.phase;
  if (!isResting(phase) && !c.holder('update')) {
    // A phase nobody works on (its step's journal write failed): recover from it first.
    c.runExclusive('update', c.newAction('update', c.j.state.target?.version), async () => (await settle(c)) ?? `recovered from ${phase}`);
    if (reschedule) scheduleCheck(c, c.cfg.intervalMs + jitterMs(c.cfg.jitterMs));
    return `recovering from ${phase}`;
  }
  const idle = phase === 'idle';
  // molt first, then the app: a molt release holds the update lane, the app's waits for the next poll.
  if (c.d.self && !c.holder('update')) await pollSelf(c);
  try {
    if (idle && !c.holder('update')) await c.enter('checking');
    await list(c);
    await liftFleetBlock(c);
    const chosen = choose(c);
    let message: string;
    if (!chosen) {
      c.waiting = undefined;
      message = `up to date (${c.d.store.current() ?? 'nothing installed'})`;
    } else if (c.cfg.policy === 'manual') {
      c.waiting = `policy is manual: run "molt update ${chosen.version}"`;
      message = `${chosen.version} is available (policy manual)`;
    } else {
      message = `${chosen.version} is available`;
    }
    if (idle && !c.holder('update')) await c.enter('idle');
    const backoff = chosen && c.failures.get(chosen.version);
    if (backoff && performance.now() < backoff.until) {
      c.waiting = `${chosen!.version} failed ${backoff.count} time${backoff.count === 1 ? '' : 's'}; retrying later`;
    } else if (chosen && c.cfg.policy !== 'manual' && !c.holder('update')) {
      c.runExclusive('update', c.newAction('update', chosen.version), () => stageAndMaybeApply(c, chosen));
    }
    return message;
  } catch (err) {
    const msg = errMessage(err);
    log.warn('check failed', { error: msg });
    c.j.state.lastCheck = { at: new Date().toISOString(), ok: false, error: msg };
    c.d.hooks?.onCheck?.(false);
    c.event({ event: 'check-failed', detail: msg });
    if (c.j.state.phase === 'checking') await c.enter('idle').catch((e) => log.warn('cannot save state.json', { error: errMessage(e) }));
    else await c.save();
    throw err;
  } finally {
    if (reschedule) scheduleCheck(c, c.cfg.intervalMs + jitterMs(c.cfg.jitterMs));
  }
}

/** MOLT_SELF's poll: a failing molt source is reported, and never stops the app's poll. */
async function pollSelf(c: UpdaterCore): Promise<void> {
  const self = c.d.self!.updater;
  try {
    const release = await self.poll();
    if (release) c.runExclusive('update', c.newAction('update', `molt ${release.version}`), () => self.update(release));
  } catch (err) {
    log.warn('molt\'s own source: check failed', { error: errMessage(err) });
  }
}

export function choose(c: UpdaterCore): Release | undefined {
  const blocked = new Set(c.j.state.blocked.map((b) => b.version));
  return chooseRelease(c.releases, {
    current: c.d.store.current(),
    policy: c.cfg.policy,
    prerelease: c.cfg.prerelease,
    blocked,
  });
}

/**
 * Whether `release` may be applied now (fleet/wave.ts decides): paused, blocked by the fleet, waiting
 * (MOLT_DELAY, MOLT_ROLLOUT or a canary wave, then MOLT_SCHEDULE), or apply.
 */
async function gate(c: UpdaterCore, release: Release): Promise<GateDecision> {
  const fleet = c.d.fleet;
  const signal = c.abort.signal;
  const paused = await fleet?.paused(signal);
  const view = paused ? undefined : await fleet?.view(release, signal);
  // With nothing installed there is nothing running to protect: no delay, spread or wave.
  const nothingRuns = !c.d.store.current();
  const spreadMs = rolloutDelayMs(c.d.hostname, release.version, c.cfg.rolloutMs);
  const elapsedMs = nothingRuns ? Number.POSITIVE_INFINITY : performance.now() - firstSeenMono(c, release.version) - c.cfg.delayMs;
  const d = decideGate({ paused, view, canaryShare: fleet?.cfg.canaryShare ?? 0, canary: fleet?.canary ?? false, needCommits: fleet?.cfg.needCommits ?? 1, elapsedMs, windowMs: c.cfg.rolloutMs, spreadMs });
  const now = Date.now();
  if (d.action === 'wait' && (d.why === 'delay' || d.why === 'rollout')) {
    const what = c.cfg.rolloutMs ? 'delay and rollout' : 'delay';
    return { ...d, why: `${what}: applies after ${new Date(now + d.retryMs).toISOString()}` };
  }
  if (d.action !== 'apply' || nothingRuns) return d;
  if (c.cfg.schedule && !inSchedule(c.cfg.schedule, new Date(now))) {
    const opens = nextOpening(c.cfg.schedule, new Date(now));
    return { action: 'wait', why: `outside the schedule window: opens ${opens.toISOString()}`, retryMs: opens.getTime() - now };
  }
  return d;
}

/** The journal's wall-clock firstSeen survives restarts; it is read once per process (the time already waited, never
 *  negative), and from then on only the monotonic clock advances the delay. */
function firstSeenMono(c: UpdaterCore, version: string): number {
  let t = c.seenMono.get(version);
  if (t === undefined) {
    const seen = Date.parse(c.j.state.firstSeen[version] ?? '');
    t = performance.now() - (Number.isFinite(seen) ? Math.max(0, Date.now() - seen) : 0);
    c.seenMono.set(version, t);
  }
  return t;
}

async function stageAndMaybeApply(c: UpdaterCore, release: Release): Promise<string> {
  // The poll that chose this release began while an update held the lane; that update may have failed
  // since, leaving a phase nobody works on (its journal write failed): recover it first, stage at a later poll.
  const left = c.j.state.phase;
  if (!isResting(left)) return (await settle(c)) ?? `recovered from ${left}`;
  // Read before staging: a release the fleet blocked is never downloaded, and neither is one that a paused
  // replica or the later canary wave waits on (most of a fleet never downloads a release a canary blocks).
  const g = await gate(c, release);
  if (g.action === 'block') return fleetBlock(c, release, g.why);
  if (g.action === 'wait' && (g.why.startsWith('paused') || g.why.startsWith('canary wave'))) {
    c.waiting = g.why;
    return `${release.version} available: ${g.why}`;
  }
  const target = c.j.state.target;
  if (c.j.state.phase !== 'staged' || target?.version !== release.version) {
    try {
      await stage(c, release, 'policy');
    } catch (err) {
      await stagingFailed(c, release, err);
      throw err;
    }
  }
  if (g.action === 'wait') {
    c.waiting = g.why;
    log.info('release staged, waiting', { version: release.version, why: g.why });
    // Capped so that a wall-clock jump (and a new verdict) is noticed within one interval.
    if (c.gateTimer) clearTimeout(c.gateTimer);
    c.gateTimer = setTimeout(() => reevaluateStaged(c), Math.min(Math.max(g.retryMs, 1000), c.cfg.intervalMs));
    return `${release.version} staged: ${g.why}`;
  }
  // Blocked by hand (molt block) after this poll chose it: staged, never applied.
  if (c.j.isBlocked(release.version)) {
    await c.enter('idle', null);
    return `${release.version} was blocked meanwhile; not applied`;
  }
  c.waiting = undefined;
  log.debug('gate open', { version: release.version, why: g.why });
  return apply(c);
}

/**
 * A release blocked here because the fleet blocked it is unblocked once the fleet unblocked it
 * (`molt unblock VERSION --fleet`). One read per poll, for the release that would be chosen only.
 */
async function liftFleetBlock(c: UpdaterCore): Promise<void> {
  const fleet = c.d.fleet;
  if (!fleet?.reads) return;
  const byFleet = (reason: string) => reason.startsWith('fleet: ');
  const fleetBlocked = new Set(c.j.state.blocked.filter((b) => byFleet(b.reason)).map((b) => b.version));
  if (fleetBlocked.size === 0) return;
  const others = new Set(c.j.state.blocked.filter((b) => !byFleet(b.reason)).map((b) => b.version));
  const candidate = chooseRelease(c.releases, { current: c.d.store.current(), policy: c.cfg.policy, prerelease: c.cfg.prerelease, blocked: others });
  if (!candidate || !fleetBlocked.has(candidate.version)) return;
  const view = await fleet.view(candidate, c.abort.signal);
  if (!view?.unblocked) return;
  c.j.unblock(candidate.version);
  c.failures.delete(candidate.version);
  c.event({ event: 'unblock', version: candidate.version, detail: `fleet: unblocked by ${view.unblocked.replica}` });
  log.info('unblocked by the fleet', { version: candidate.version, by: view.unblocked.replica });
  await c.save();
}

/** Another replica (or a person) blocked `release` for the fleet: blocked here too, never tried. */
async function fleetBlock(c: UpdaterCore, release: Release, why: string): Promise<string> {
  const reason = `fleet: ${why}`;
  c.waiting = undefined;
  if (c.j.state.phase === 'staged' && c.j.state.target?.version === release.version) await c.enter('idle', null);
  c.j.block(release.version, reason);
  c.event({ event: 'block', version: release.version, detail: reason });
  log.warn('blocked by the fleet', { version: release.version, why });
  await c.save();
  return `${release.version} blocked: ${reason}`;
}

/** A download or install that failed is retried with a growing delay, not at every poll. */
async function stagingFailed(c: UpdaterCore, release: Release, err: unknown): Promise<void> {
  // A refused release is blocked by stage() (logged there once), not retried.
  if (c.j.isBlocked(release.version)) return;
  const msg = errMessage(err);
  const { count: n, waitMs } = c.noteFailure(release.version);
  log.warn('download failed', { version: release.version, error: msg, attempts: n, retry_in_ms: waitMs });
  c.event({ event: 'check-failed', version: release.version, detail: msg });
  await c.save();
}

function reevaluateStaged(c: UpdaterCore): void {
  c.gateTimer = undefined;
  const t = c.j.state.target;
  if (c.holder('update') || c.j.state.phase !== 'staged' || !t) return;
  c.runExclusive('update', c.newAction('update', t.version), () => stageAndMaybeApply(c, t.release));
}

/** `molt update [VERSION]`: fresh list, then stage and apply at once, gates bypassed (a person asked). */
export async function runNamedUpdate(c: UpdaterCore, action: ActionInfo, name?: string): Promise<string> {
  await settle(c);
  await list(c);
  let release: Release | undefined;
  if (name) {
    release = findNamed(c.releases, name);
    if (!release) throw new Error(`no release named ${name} at ${c.d.source.description}`);
    if (release.version === c.d.store.current()) return `${release.version} is already running`;
  } else {
    release = choose(c);
    if (!release) return `up to date (${c.d.store.current() ?? 'nothing installed'})`;
  }
  action.version = release.version;
  if (c.j.state.phase !== 'staged' || c.j.state.target?.version !== release.version) await stage(c, release, name ? 'named' : 'policy');
  c.waiting = undefined;
  return apply(c);
}
