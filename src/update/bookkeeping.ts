// The store's bookkeeping after an update ends either way (commit, rollback, a
// block): where `previous` points, which versions are pruned, which cached
// blobs are collected. The choices are pure functions; the store does the rest.
import { errMessage, log, type UpdaterCore } from './core.js';

/**
 * After rolling back to `now` (from the failed version): the version to go back to
 * from here, the newest install before `now` that is neither the failed one nor
 * blocked; undefined when none is kept. `installed` is oldest install first.
 */
export function previousAfterRollback(installed: readonly string[], now: string, failed: string, blocked: readonly string[]): string | undefined {
  const at = installed.indexOf(now);
  if (at < 0) return undefined;
  const shut = new Set([...blocked, failed, now]);
  for (let i = at - 1; i >= 0; i--) {
    const v = installed[i]!;
    if (!shut.has(v)) return v;
  }
  return undefined;
}

/** Point `previous` at what a rollback to `now` leaves to go back to (or remove it). */
export async function settlePrevious(c: UpdaterCore, now: string, failed: string): Promise<void> {
  const blocked = c.j.state.blocked.map((b) => b.version);
  const prev = previousAfterRollback(c.d.store.list(), now, failed, blocked);
  await c.d.store.setPrevious(prev);
  log.info('previous version', { previous: prev ?? 'none' });
}

/**
 * Prune to MOLT_KEEP (blocked versions first; never current, previous, a staged release or
 * `protect`) and collect the cached blobs no kept version came from. Skipped for blobs while
 * a download runs (it may be reading a cached blob). Failures are logged: tidying never fails an update.
 */
export async function tidyStore(c: UpdaterCore, protect: string[] = []): Promise<void> {
  // A staged release waits to be applied; a target in any other phase is the one just judged.
  const staged = c.j.state.phase === 'staged' ? c.j.state.target?.version : undefined;
  const guard = [...protect, ...(staged ? [staged] : [])];
  const blocked = c.j.state.blocked.map((b) => b.version).filter((v) => !guard.includes(v));
  try {
    const removed = await c.d.store.prune(c.cfg.keep, guard, blocked);
    if (removed.length) log.info('pruned old versions', { removed: removed.join(','), keep: c.cfg.keep });
  } catch (err) {
    log.warn('cannot prune old versions', { error: errMessage(err) });
  }
  if (c.download) return;
  await c.d.store.collectBlobs().catch((err) => log.warn('cannot collect cached blobs', { error: errMessage(err) }));
}
