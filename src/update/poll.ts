// Polling: list the source, choose a release, and hand it to staging and
// apply when every gate (delay, rollout, schedule, backoff) is open.
import type { ActionInfo } from '../api/types.js';
import { apply } from './apply.js';
import { errMessage, log, type UpdaterCore } from './core.js';
import { isResting } from './phases.js';
import { chooseRelease, findNamed, sortNewestFirst } from './policy.js';
import { rolloutDelayMs, jitterMs } from './rollout.js';
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

/** Why `version` may not be applied yet: delay, rollout, schedule; undefined when it may. */
function gate(c: UpdaterCore, version: string): { why: string; retryMs: number } | undefined {
  // With nothing installed there is nothing running to protect: install at once.
  if (!c.d.store.current()) return undefined;
  const left = firstSeenMono(c, version) + c.cfg.delayMs + rolloutDelayMs(c.d.hostname, version, c.cfg.rolloutMs) - performance.now();
  const now = Date.now();
  if (left > 0) {
    const what = c.cfg.rolloutMs ? 'delay and rollout' : 'delay';
    return { why: `${what}: applies after ${new Date(now + left).toISOString()}`, retryMs: left };
  }
  if (c.cfg.schedule && !inSchedule(c.cfg.schedule, new Date(now))) {
    const opens = nextOpening(c.cfg.schedule, new Date(now));
    return { why: `outside the schedule window: opens ${opens.toISOString()}`, retryMs: opens.getTime() - now };
  }
  return undefined;
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
  const target = c.j.state.target;
  if (c.j.state.phase !== 'staged' || target?.version !== release.version) {
    try {
      await stage(c, release, 'policy');
    } catch (err) {
      await stagingFailed(c, release, err);
      throw err;
    }
  }
  const g = gate(c, release.version);
  if (g) {
    c.waiting = g.why;
    log.info('release staged, waiting', { version: release.version, why: g.why });
    // Capped so that a wall-clock jump is noticed within one interval.
    if (c.gateTimer) clearTimeout(c.gateTimer);
    c.gateTimer = setTimeout(() => reevaluateStaged(c), Math.min(Math.max(g.retryMs, 1000), c.cfg.intervalMs));
    return `${release.version} staged: ${g.why}`;
  }
  c.waiting = undefined;
  return apply(c);
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
