// Applying a staged release: stop -> swap -> start -> trial -> commit, or the
// overlapping handover (the new version beside the old one until it passed).
import { errMessage, log, type UpdaterCore } from './core.js';
import { onStepFailure } from './phases.js';
import type { UpdateTarget } from './journal.js';
import { tidyStore } from './bookkeeping.js';
import { rollBack } from './rollback.js';
import { swapTo } from './swap.js';
import { runProbe, runTrial } from './trial.js';
import { refuseUnverifiedKept } from './stage.js';

/** staged -> stopping -> swapping -> starting -> trial -> committed | rolling-back. */
export async function apply(c: UpdaterCore): Promise<string> {
  const t = c.j.state.target;
  if (!t) throw new Error('internal: nothing staged');
  // Staged may mean kept from before a trust setting: nothing unverified is started.
  await refuseUnverifiedKept(c, t.version, t.reason);
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
  try {
    await c.d.app.stop(c.cfg.stopTimeoutMs);
  } catch (err) {
    return stepFailed(c, t, 'stopping', err);
  }
  await c.enter('swapping');
  try {
    await swapTo(c, t.version);
  } catch (err) {
    return stepFailed(c, t, 'swapping', err);
  }
  await c.enter('starting');
  return startAndJudge(c, t);
}

/**
 * The stop or the swap failed, `current` still names the old version: start it again (`sv up`),
 * go back to staged (phases.onStepFailure), and let a later poll retry with a growing delay.
 */
async function stepFailed(c: UpdaterCore, t: UpdateTarget, step: 'stopping' | 'swapping', err: unknown): Promise<never> {
  const cause = errMessage(err);
  c.trySend('u');
  const { count, waitMs } = c.noteFailure(t.version);
  log.warn('update step failed, the old version runs again; retried later', { version: t.version, step, error: cause, attempts: count, retry_in_ms: waitMs });
  c.event({ event: 'check-failed', version: t.version, detail: `${step} failed: ${cause}` });
  await c.enter(onStepFailure[step]);
  throw new Error(`${t.version}: ${step} failed (${cause}); ${t.from ?? 'the waiting run'} runs again, retried in ${Math.round(waitMs / 1000)} s`);
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
      const stopFailed = (err: unknown) => log.warn('stop before the restart failed; started again once it is down', { error: errMessage(err) });
      await c.d.app.stopNext(c.cfg.stopTimeoutMs).catch(stopFailed);
      // `current` already is the version that passed: whenever the old run is down, `u` starts it.
      await c.d.app.stop(c.cfg.stopTimeoutMs).catch(stopFailed);
      await c.d.app.start();
    }
    c.watchPid = c.d.app.status()?.pid ?? 0;
    return commit(c, t, verdict.why);
  }
  if (c.stopped) throw new Error(`${t.version}: trial interrupted by shutdown`);
  c.failedTrials.set(t.version, verdict.reason);
  await rollBack(c, { ...t, failure: verdict.reason }, oldPid);
  await share(c, t, 'blocked', verdict.reason);
  throw new Error(`${t.version} failed its trial (${verdict.reason}); stopped it, ${t.from ?? 'nothing'} kept running, blocked it`);
}

export async function startAndJudge(c: UpdaterCore, t: UpdateTarget): Promise<string> {
  const before = c.d.app.status();
  try {
    await c.d.app.start();
  } catch (err) {
    // No supervisor takes the start: nothing can be judged (phases.onStepFailure.starting).
    const reason = `could not be started: ${errMessage(err)}`;
    c.failedTrials.set(t.version, reason);
    await rollBack(c, { ...t, failure: reason });
    await share(c, t, 'blocked', reason);
    throw new Error(`${t.version} ${reason}; rolled back to ${t.from ?? 'nothing'} and blocked it`);
  }
  await c.enter('trial');
  const verdict = await runTrial(c, t.version, t.from, runProbe(c, before?.state === 'down' ? before.stampMs : undefined));
  if (verdict.ok) return commit(c, t, verdict.why);
  // A shutdown is not a verdict: leave the journal at `trial`, recovery judges it again.
  if (c.stopped) throw new Error(`${t.version}: trial interrupted by shutdown`);
  c.failedTrials.set(t.version, verdict.reason);
  await rollBack(c, { ...t, failure: verdict.reason });
  // The fleet learns it after the rollback: this replica is safe first, then the others are spared.
  await share(c, t, 'blocked', verdict.reason);
  throw new Error(`${t.version} failed its trial (${verdict.reason}); rolled back to ${t.from ?? 'nothing'} and blocked it`);
}

export async function commit(c: UpdaterCore, t: UpdateTarget, why: string): Promise<string> {
  await c.enter('committed');
  c.event({ event: 'commit', version: t.version, from: t.from, detail: why });
  log.info('committed', { version: t.version, why });
  // Pruned while still 'committed': a crash mid-prune is cleaned up by recovery.
  await tidyStore(c, [t.version, ...(t.from ? [t.from] : [])]);
  await c.enter('idle', null);
  await share(c, t, 'committed', why);
  return `updated to ${t.version} (${why})`;
}

/** A trial's outcome for the fleet (MOLT_FLEET=1): releases from the source only, not the image's own or a rollback. */
async function share(c: UpdaterCore, t: UpdateTarget, kind: 'blocked' | 'committed', why: string): Promise<void> {
  if (t.reason === 'policy' || t.reason === 'named') await c.d.fleet?.share(t.release, kind, why, c.abort.signal);
}
