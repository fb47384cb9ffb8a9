// Rolling back: put `from` back (or take `current` away after a failed first
// install), block the failed version, and return to idle.
import fs from 'node:fs';
import path from 'node:path';
import { errMessage, log, type UpdaterCore } from './core.js';
import type { UpdateTarget } from './journal.js';
import { settlePrevious, tidyStore } from './bookkeeping.js';
import { sideEffectsOfSwap, swapTo } from './swap.js';
import type { Release } from './types.js';
import { decideStored } from './trust/stored.js';

/**
 * Back to t.from without a signature check even with a trust setting (trust/stored.ts, 'auto-rollback'):
 * it is the version that ran until this update. `molt rollback` checks before it calls this.
 * overlapOldPid: the old version's pid during an overlapping handover; it keeps running if it still does.
 */
export async function rollBack(c: UpdaterCore, t: UpdateTarget, overlapOldPid?: number): Promise<void> {
  const reason = t.failure ?? 'rolled back';
  log.warn('rolling back', { version: t.version, to: t.from ?? 'none', reason });
  await c.enter('rolling-back', t);
  const stopFailed = (err: unknown) => log.warn('stop during rollback failed', { error: errMessage(err) });
  if (overlapOldPid !== undefined) await c.d.app.stopNext(c.cfg.stopTimeoutMs).catch(stopFailed);
  // The old version is untouched only if its very process still runs; a restart since then ran the new one.
  const oldRuns = overlapOldPid !== undefined && c.d.app.status()?.pid === overlapOldPid;
  // A rollback resumed after `current` was already put back: the run is the old version, `u` below is enough.
  const alreadyBack = t.from !== undefined && c.d.store.current() === t.from;
  if (!oldRuns && !alreadyBack) await c.d.app.stop(c.cfg.stopTimeoutMs).catch(stopFailed);
  if (t.from && c.d.store.has(t.from)) {
    await swapTo(c, t.from);
    // `previous` would now name the failed version: point it at the one before t.from, if kept.
    await settlePrevious(c, t.from, t.version).catch((err) => log.warn('cannot set previous', { error: errMessage(err) }));
    if (!oldRuns) await c.d.app.start().catch((err) => log.warn('start after rollback failed', { error: errMessage(err) }));
  } else {
    // A first install failed: take `current` away so the app waits instead of running a bad release.
    fs.rmSync(path.join(c.d.store.home, 'current'), { force: true });
    await sideEffectsOfSwap(c, undefined);
    c.d.app.send('u');
  }
  c.j.block(t.version, reason);
  c.event({ event: 'rollback', version: t.from, from: t.version, detail: reason });
  c.event({ event: 'block', version: t.version, detail: reason });
  // Pruned while still rolling back (a crash mid-prune redoes the rollback, then this).
  await tidyStore(c);
  await c.enter('idle', null);
}

/** `molt rollback`: back to `prev`, and the version running now is blocked. */
export async function manualRollback(c: UpdaterCore, prev: string): Promise<string> {
  const cur = c.d.store.current();
  // Not running now, so started only if verified (trust/stored.ts); nothing changes when refused.
  const d = decideStored(c.d.trust, prev, c.j.state.verifiedBy?.[prev], 'rollback');
  if (!d.allow) {
    log.warn('rollback refused', { to: prev, reason: d.reason, detail: d.line });
    throw new Error(`cannot roll back to ${prev}: ${d.reason}: ${d.line}; ${cur ?? 'nothing'} keeps running`);
  }
  const release: Release = { version: prev, tag: prev, prerelease: false, locator: {} };
  const t: UpdateTarget = { version: cur ?? prev, from: prev, release, reason: 'rollback', startedAt: new Date().toISOString(), failure: 'rolled back by request' };
  await rollBack(c, t);
  return `rolled back to ${prev}; ${cur ?? ''} blocked`.trim();
}

// ---- recovery and watching -------------------------------------------
