// The app's health, as the supervisor writes it (supervise/health), turned into
// history events and so into notifications: unhealthy (no-heal), healed (restarted
// for failing its check), gave up (unhealthy again within the heal cooldown).
// PID 1 only logs these; the updater is the one that notifies.
import type { HistoryEntry } from '../api/types.js';
import type { HealthFile } from '../supervise/health.js';
import type { UpdaterCore } from './core.js';
import { log } from './core.js';

export interface HealthEvent {
  event: Extract<HistoryEntry['event'], 'unhealthy' | 'healed' | 'gave-up'>;
  detail: string;
}

/** Pure: what changed between two reads of supervise/health. No previous read: nothing (a baseline). */
export function healthEvents(prev: HealthFile | undefined, next: HealthFile | undefined): HealthEvent[] {
  if (!prev || !next) return [];
  const out: HealthEvent[] = [];
  const checks = next.failures > 0 ? ` (${next.failures} failed check${next.failures === 1 ? '' : 's'} in a row)` : '';
  if (next.heals > prev.heals) {
    const n = next.heals - prev.heals;
    out.push({ event: 'healed', detail: `its check failed; restarted${n > 1 ? ` ${n} times` : ''} (heal ${next.heals})` });
  }
  if (next.gaveUp && !prev.gaveUp) out.push({ event: 'gave-up', detail: `its check fails again within the heal cooldown${checks}` });
  // A heal or a give-up already says it; otherwise (no-heal) healthy -> unhealthy is the news.
  const turned = next.healthy === false && (prev.healthy !== false || prev.pid !== next.pid);
  if (turned && out.length === 0) out.push({ event: 'unhealthy', detail: `its check fails${checks}` });
  return out;
}

const lastRead = new WeakMap<UpdaterCore, HealthFile | null>();

/** One look at supervise/health (every watch tick); each change is a history event (and so notified). */
export function watchHealth(c: UpdaterCore): void {
  const next = c.d.app.health();
  const prev = lastRead.get(c);
  lastRead.set(c, next ?? null);
  const events = healthEvents(prev ?? undefined, next);
  for (const e of events) {
    log.warn(`app ${e.event}`, { version: c.d.store.current(), detail: e.detail });
    c.event({ event: e.event, version: c.d.store.current(), detail: e.detail });
  }
  if (events.length) void c.save();
}
