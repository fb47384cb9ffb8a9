// Durations in configuration: ms-style strings ("30s", "5m", "1h") or bare numbers.
import ms from 'ms';

/** Parse a duration; bare numbers are in `bareUnit` (seconds for the seed's SLEEP/SVWAIT). */
export function parseDuration(raw: string, bareUnit: 'ms' | 's' = 'ms'): number | undefined {
  const s = raw.trim();
  if (s === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * (bareUnit === 's' ? 1000 : 1));
  const v = ms(s as ms.StringValue);
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return undefined;
  return v;
}
