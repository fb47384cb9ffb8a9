// Between updates: watch the app's run for crash loops (reported, never rolled
// back) and for exit 42 (restart me into the staged release).
import { apply } from './apply.js';
import { log, type UpdaterCore } from './core.js';
import { judgeFreshness } from './freshness.js';

const CRASH_LOOP_WINDOW_MS = 60_000;
const CRASH_LOOP_DEATHS = 3;

/** Between updates: report crash loops (never roll back for them) and honour exit 42. */
export function watchApp(c: UpdaterCore): void {
  if (c.trial || c.holder('update')) return;
  const s = c.d.app.status();
  if (!s) return;
  const pid = s.state === 'run' ? s.pid : 0;
  if (c.watchPid !== 0 && pid !== c.watchPid) {
    const code = s.lastExit?.code;
    if (code === 42 && c.j.state.phase === 'staged' && c.j.state.target) {
      log.info('app asked for the staged update (exit 42)', { version: c.j.state.target.version });
      c.runExclusive('update', c.newAction('update', c.j.state.target.version), () => apply(c));
    } else if (code !== 0 && code !== 42) {
      const now = performance.now();
      c.deaths = c.deaths.filter((t) => now - t < CRASH_LOOP_WINDOW_MS);
      c.deaths.push(now);
      if (c.deaths.length >= CRASH_LOOP_DEATHS && now - c.lastCrashLoopReport > 10 * 60_000) {
        c.lastCrashLoopReport = now;
        const detail = `${c.deaths.length} deaths within ${CRASH_LOOP_WINDOW_MS / 1000}s (not an update: not rolled back)`;
        log.warn('app is crash-looping', { version: c.d.store.current(), detail });
        c.event({ event: 'crash-loop', version: c.d.store.current(), detail });
        void c.save();
      }
    }
  }
  c.watchPid = pid;
}

/** The source's freshness, judged at each watch tick: one warning line when it goes stale, one line when it answers again. */
export function watchSource(c: UpdaterCore): void {
  const f = judgeFreshness(Date.now(), c.j.state.source, c.startedAt, c.cfg.staleAfterMs);
  if (f.stale && !c.staleWarned) {
    c.staleWarned = true;
    log.warn('release source stale: no answer', {
      source: c.d.source.description,
      last_success: f.lastSuccessAt ?? `never since the start at ${c.startedAt}`,
      age_s: f.lastSuccessAgeSeconds,
      stale_after_s: f.staleAfterSeconds,
      ...(c.j.state.lastCheck && !c.j.state.lastCheck.ok ? { last_error: c.j.state.lastCheck.error } : {}),
    });
  } else if (!f.stale && c.staleWarned) {
    c.staleWarned = false;
    log.info('release source answering again', { source: c.d.source.description, last_success: f.lastSuccessAt });
  }
}
