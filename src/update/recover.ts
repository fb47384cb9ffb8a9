// Recovery at start: whatever phase the journal was left in (kill -9, power
// loss), bring the app to a complete version through the phase table's
// recovery rows (phases.recoveryFor / recoveryPhases).
import { startAndJudge } from './apply.js';
import { errMessage, log, type UpdaterCore } from './core.js';
import { recoveryFor, recoveryPhase } from './phases.js';
import { rollBack } from './rollback.js';
import { sideEffectsOfSwap } from './swap.js';

/** At start (and whenever a phase was left without a worker): bring the journal and the app to a defined state. */
export async function recover(c: UpdaterCore): Promise<void> {
  const st = c.j.state;
  const current = c.d.store.current();
  const t = st.target;
  const plan = recoveryFor(st.phase, current, t?.version, t?.from);
  const to = recoveryPhase(plan, t !== undefined && c.d.store.has(t.version));
  await c.d.store.cleanStaging().catch((err) => log.warn('cannot clean staging', { error: errMessage(err) }));
  // A next instance of an interrupted overlapping handover is not judged by anyone now: stop it.
  if (t?.handover === 'overlap' && st.phase !== 'idle') {
    await c.d.app.stopNext(c.cfg.stopTimeoutMs).catch((err) => log.warn('cannot stop the next instance', { error: errMessage(err) }));
  }
  if (st.phase !== 'idle') log.warn('recovering an interrupted update', { phase: st.phase, plan, version: t?.version, current: current ?? 'none' });
  switch (plan) {
    case 'idle':
    case 'keep-staged':
      await c.enter(to, to === 'idle' ? null : undefined, 'recovery');
      break;
    case 'restart-current':
      if (current) await sideEffectsOfSwap(c, current);
      c.trySend('u');
      c.event({ event: 'recover', version: current, detail: 'interrupted update abandoned; current version restarted' });
      await c.enter(to, null, 'recovery');
      break;
    case 'resume-trial': {
      const target = t!;
      c.event({ event: 'recover', version: target.version, detail: 'interrupted update resumed at its trial' });
      await c.enter(to, undefined, 'recovery');
      // After an overlapping handover the service's run may still be the old version: restart it on current.
      c.runExclusive('update', c.newAction('update', target.version), async () => {
        if (target.handover === 'overlap') await c.d.app.stop(c.cfg.stopTimeoutMs);
        return startAndJudge(c, target);
      });
      break;
    }
    case 'roll-back':
      c.event({ event: 'recover', version: t?.version, detail: 'interrupted rollback completed' });
      await c.enter(to, undefined, 'recovery');
      await rollBack(c, t!);
      break;
  }
}
