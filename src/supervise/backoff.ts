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
