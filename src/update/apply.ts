// Applying a staged release: stop -> swap -> start -> trial -> commit, or the
// overlapping handover (the new version beside the old one until it passed).
import { log, type UpdaterCore } from './core.js';
import type { UpdateTarget } from './journal.js';
import { tidyStore } from './bookkeeping.js';
import { rollBack } from './rollback.js';
import { swapTo } from './swap.js';
import { runProbe, runTrial } from './trial.js';

/** staged -> stopping -> swapping -> starting -> trial -> committed | rolling-back. */
export async function apply(c: UpdaterCore): Promise<string> {
  const t = c.j.state.target;
  if (!t) throw new Error('internal: nothing staged');
  log.info('applying', { version: t.version, from: t.from ?? 'none', handover: c.cfg.handover });
  c.event({ event: 'update', version: t.version, from: t.from });
  // A first install has nothing to overlap with.
  if (c.cfg.handover === 'overlap' && t.from) {
    const running = c.d.app.status();
    const why = !c.d.app.hasListen()
      ? 'the app has no listen file (two instances could not share its port)'
      : !running || running.state !== 'run' || !running.pid
        ? 'the app is not running'
        : undefined;
    if (!why) return applyOverlapping(c, { ...t, handover: 'overlap' }, running!.pid);
    log.warn('overlapping handover not possible, stopping then starting', { version: t.version, why });
  }
  await c.enter('stopping');
  await c.d.app.stop(c.cfg.stopTimeoutMs);
  await c.enter('swapping');
  await swapTo(c, t.version);
  await c.enter('starting');
  return startAndJudge(c, t);
}

/**
 * MOLT_HANDOVER=overlap: staged -> swapping -> starting -> trial with the new version
 * running beside the old one on the same sockets; the old one gets its stop signal only
 * once the new one passed, and a failed new one is stopped while the old one never was.
 */
export async function applyOverlapping(c: UpdaterCore, t: UpdateTarget, oldPid: number): Promise<string> {
  await c.enter('swapping', t);
  await swapTo(c, t.version);
  await c.enter('starting');
  const base = c.d.app.next()?.generation ?? 0;
  const first = await c.d.app.startNext();
  if (!first) log.warn('next instance did not start', { version: t.version });
  await c.enter('trial');
  let diedAt: number | undefined;
  // Each generation of the next instance that ended is one death, seen running or not.
  const ended = new Set<number>();
  const verdict = await runTrial(c, t.version, t.from, {
    sample: () => {
      const n = c.d.app.next();
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
      c.trySend('N');
    },
  });
  if (verdict.ok) {
    const next = c.d.app.next();
    const promoted = next && next.phase === 'run' && (await c.d.app.promoteNext(next.pid));
    if (!promoted) {
      // It passed but could not be handed over (say, finish was running): a plain restart.
      log.warn('handover failed, restarting the app on the new version', { version: t.version });
      await c.d.app.stopNext(c.cfg.stopTimeoutMs).catch(() => {});
      await c.d.app.stop(c.cfg.stopTimeoutMs);
      await c.d.app.start();
    }
    c.watchPid = c.d.app.status()?.pid ?? 0;
    return commit(c, t, verdict.why);
  }
  if (c.stopped) throw new Error(`${t.version}: trial interrupted by shutdown`);
  await rollBack(c, { ...t, failure: verdict.reason }, oldPid);
  throw new Error(`${t.version} failed its trial (${verdict.reason}); stopped it, ${t.from ?? 'nothing'} kept running, blocked it`);
}

export async function startAndJudge(c: UpdaterCore, t: UpdateTarget): Promise<string> {
  const before = c.d.app.status();
  await c.d.app.start();
  await c.enter('trial');
  const verdict = await runTrial(c, t.version, t.from, runProbe(c, before?.state === 'down' ? before.stampMs : undefined));
  if (verdict.ok) return commit(c, t, verdict.why);
  // A shutdown is not a verdict: leave the journal at `trial`, recovery judges it again.
  if (c.stopped) throw new Error(`${t.version}: trial interrupted by shutdown`);
  await rollBack(c, { ...t, failure: verdict.reason });
  throw new Error(`${t.version} failed its trial (${verdict.reason}); rolled back to ${t.from ?? 'nothing'} and blocked it`);
}

export async function commit(c: UpdaterCore, t: UpdateTarget, why: string): Promise<string> {
  await c.enter('committed');
  c.event({ event: 'commit', version: t.version, from: t.from, detail: why });
  log.info('committed', { version: t.version, why });
  // Pruned while still 'committed': a crash mid-prune is cleaned up by recovery.
  await tidyStore(c, [t.version, ...(t.from ? [t.from] : [])]);
  await c.enter('idle', null);
  return `updated to ${t.version} (${why})`;
}
