// Restart throttle as a pure function. At least 1 s between starts; while a
// service keeps dying within 10 s of its start the delay doubles up to the
// maximum; once it stays up 10 s the delay resets. The wait is a deadline the
// supervisor arms on its timer, never a sleep, so control bytes keep working.

export const MIN_RESTART_DELAY_MS = 1000;
export const STABLE_UPTIME_MS = 10_000;

export interface Throttle {
  /** The delay between the last start and the next one. 0 = never throttled yet. */
  delayMs: number;
}

/**
 * @param prev     the throttle after the previous exit
 * @param ranMs    time from the last start to now (run + finish)
 * @param maxMs    MOLT_MAX_BACKOFF
 * @returns the new throttle and how long to wait from now before starting again
 */
export function nextRestart(prev: Throttle, ranMs: number, maxMs: number): { throttle: Throttle; waitMs: number } {
  const ceiling = Math.max(MIN_RESTART_DELAY_MS, maxMs);
  const delayMs =
    ranMs >= STABLE_UPTIME_MS || prev.delayMs === 0
      ? MIN_RESTART_DELAY_MS
      : Math.min(prev.delayMs * 2, ceiling);
  return { throttle: { delayMs }, waitMs: Math.max(0, delayMs - ranMs) };
}

/** A `max-deaths` file: `COUNT [WINDOW]` (window in seconds or a duration, default 60 s). */
export interface DeathLimit {
  count: number;
  windowMs: number;
}

export function parseDeathLimit(text: string, parseWindow: (raw: string) => number | undefined): DeathLimit | undefined {
  const [count, window, ...rest] = text.trim().split(/\s+/);
  const n = Number(count);
  if (!Number.isInteger(n) || n < 1 || rest.length) return undefined;
  const windowMs = window === undefined ? 60_000 : parseWindow(window);
  return windowMs && windowMs > 0 ? { count: n, windowMs } : undefined;
}

/**
 * Record a death at `nowMs` (monotonic) and say whether the service has now failed for good
 * (supervisord's FATAL, s6-permafailon): `count` deaths within the last `windowMs`.
 */
export function recordDeath(deaths: readonly number[], nowMs: number, limit: DeathLimit): { deaths: number[]; failed: boolean } {
  const recent = [...deaths.filter((t) => nowMs - t < limit.windowMs), nowMs];
  return { deaths: recent, failed: recent.length >= limit.count };
}
