// Durations in configuration: ms-style strings ("30s", "5m", "1h") or bare numbers.
import ms from 'ms';

/**
 * The longest delay a Node timer keeps: setTimeout turns anything above 2^31-1 ms
 * (about 24.8 days) into 1 ms, so a longer duration would fire at once.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
export const MAX_TIMER_TEXT = '24d (2147483647 ms)';

function parseUnbounded(raw: string, bareUnit: 'ms' | 's'): number | undefined {
  const s = raw.trim();
  if (s === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * (bareUnit === 's' ? 1000 : 1));
  const v = ms(s as ms.StringValue);
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return undefined;
  return v;
}

/**
 * Parse a duration; bare numbers are in `bareUnit` (seconds for the seed's SLEEP/SVWAIT).
 * Undefined when it is not a duration or is longer than MAX_TIMER_MS; durationProblem() says which.
 */
export function parseDuration(raw: string, bareUnit: 'ms' | 's' = 'ms'): number | undefined {
  const v = parseUnbounded(raw, bareUnit);
  return v === undefined || v > MAX_TIMER_MS ? undefined : v;
}

/** Why parseDuration() refused `raw`, as words that follow its name; undefined when it is fine. */
export function durationProblem(raw: string, bareUnit: 'ms' | 's' = 'ms'): string | undefined {
  const v = parseUnbounded(raw, bareUnit);
  if (v === undefined) return 'is not a duration (examples: 7s, 500ms, 1m)';
  if (v > MAX_TIMER_MS) return `is too long (at most ${MAX_TIMER_TEXT}, the longest timer)`;
  return undefined;
}
