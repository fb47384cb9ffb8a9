// Recovery at start: whatever phase the journal was left in (kill -9, power
// loss), bring the app to a complete version through the phase table's
// recovery rows (phases.recoveryFor / recoveryPhases).
import { startAndJudge } from './apply.js';
import { errMessage, log, type UpdaterCore } from './core.js';
import { isResting, recoveryFor, recoveryPhase } from './phases.js';
import { rollBack } from './rollback.js';
import { sideEffectsOfSwap } from './swap.js';

/**
 * At start, and at a poll that finds a phase nobody works on (a step whose journal write
 * failed): bring the journal and the app to a defined state through the recovery rows.
 * A trial to resume is returned, for the caller to run in the update lane.
 */
export async function recover(c: UpdaterCore): Promise<(() => Promise<string>) | undefined> {
  const st = c.j.state;
  const current = c.d.store.current();
  const t = st.target;
  const failure = t && c.failedTrials.get(t.version);
  const plan = recoveryFor(st.phase, current, t?.version, t?.from, failure !== undefined);
  const to = recoveryPhase(plan, t !== undefined && c.d.store.has(t.version));
  await c.d.store.cleanStaging().catch((err) => log.warn('cannot clean staging', { error: errMessage(err) }));
  // A next instance of an interrupted overlapping handover is not judged by anyone now: stop it.
  if (t?.handover === 'overlap' && st.phase !== 'idle') {
    await c.d.app.stopNext(c.cfg.stopTimeoutMs).catch((err) => log.warn('cannot stop the next instance', { error: errMessage(err) }));
  }
  // Once per phase and plan: a poll that retries while the disk stays full says nothing new.
  const attempt = `${st.phase} ${plan} ${t?.version}`;
  if (st.phase !== 'idle' && attempt !== c.lastRecovery) log.warn('recovering an interrupted update', { phase: st.phase, plan, version: t?.version, current: current ?? 'none' });
  c.lastRecovery = attempt;
  switch (plan) {
    case 'idle':
    case 'keep-staged':
      await c.enter(to, to === 'idle' ? null : undefined, 'recovery');
      return undefined;
    case 'restart-current':
      if (current) await sideEffectsOfSwap(c, current);
      c.trySend('u');
      c.event({ event: 'recover', version: current, detail: 'interrupted update abandoned; current version restarted' });
      await c.enter(to, null, 'recovery');
      return undefined;
    case 'resume-trial': {
      const target = t!;
      c.event({ event: 'recover', version: target.version, detail: 'interrupted update resumed at its trial' });
      await c.enter(to, undefined, 'recovery');
      return async () => {
        // After an overlapping handover the service's run may still be the old version: restart it on current.
        if (target.handover === 'overlap') await c.d.app.stop(c.cfg.stopTimeoutMs);
        return startAndJudge(c, target);
      };
    }
    case 'roll-back':
      c.event({ event: 'recover', version: t?.version, detail: failure ? 'failed trial rolled back' : 'interrupted rollback completed' });
      await c.enter(to, undefined, 'recovery');
      await rollBack(c, { ...t!, failure: t!.failure ?? failure });
      return undefined;
  }
}

/** Before a person's update or rollback: leave a phase nobody works on first; the message when that already did the job. */
export async function settle(c: UpdaterCore): Promise<string | undefined> {
  if (isResting(c.j.state.phase)) return undefined;
  const resume = await recover(c);
  return resume ? resume() : undefined;
}
