// Durations in configuration: ms-style strings ("30s", "5m", "1h") or bare numbers.
import { createRequire } from 'node:module';
import type { StringValue } from 'ms';

// ms is CommonJS. PID 1 parses durations, and Node 20 takes a few ms more to
// import a CommonJS package into ESM than to require() it (the bench's exec →
// first service). scripts/bundle.mjs turns this line back into an import, which
// its bundle inlines.
const ms = createRequire(import.meta.url)('ms') as typeof import('ms');

/**
 * The longest delay a Node timer keeps: setTimeout turns anything above 2^31-1 ms
 * (about 24.8 days) into 1 ms, so a longer duration would fire at once.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
export const MAX_TIMER_TEXT = '24d (2^31-1 ms, the longest timer)';

/**
 * Parse a duration; bare numbers are in `bareUnit` (seconds for the seed's SLEEP/SVWAIT).
 * Not bounded: a duration that arms a timer goes through timerDuration().
 */
export function parseDuration(raw: string, bareUnit: 'ms' | 's' = 'ms'): number | undefined {
  const s = raw.trim();
  if (s === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * (bareUnit === 's' ? 1000 : 1));
  const v = ms(s as StringValue);
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return undefined;
  return v;
}

/** A duration that arms a timer: its milliseconds, or why not, as words that follow its name. */
export function timerDuration(raw: string, bareUnit: 'ms' | 's' = 'ms'): { ms: number } | { problem: string } {
  const v = parseDuration(raw, bareUnit);
  if (v === undefined) return { problem: 'is not a duration (examples: 7s, 500ms, 1m)' };
  if (Math.round(v) > MAX_TIMER_MS) return { problem: `is too long (at most ${MAX_TIMER_TEXT})` };
  return { ms: Math.round(v) };
}
