// Spreading a fleet: MOLT_ROLLOUT gives each host a fixed delay for each
// version, so replicas never restart together and a bad release reaches few
// hosts before it is blocked; MOLT_JITTER spreads polls.
import { createHash } from 'node:crypto';

/** MOLT_ROLLOUT: a delay in [0, rolloutMs) fixed by a hash (sha256) of hostname + version, so replicas never update at once.
 *  0 when rolloutMs is 0. The same host gets the same delay for a version across restarts (the delay counts from first
 *  discovery, which the journal keeps), and another place in the queue for the next version, so no host is always first. */
export function rolloutDelayMs(hostname: string, version: string, rolloutMs: number): number {
  if (!(rolloutMs > 0)) return 0;
  // A separator, so that ("ab", "1.0") and ("a", "b1.0") hash differently.
  const h = createHash('sha256').update(`${hostname}\n${version}`, 'utf8').digest();
  const unit = h.readUIntBE(0, 6) / 2 ** 48; // [0, 1)
  return Math.min(Math.floor(unit * rolloutMs), Math.ceil(rolloutMs) - 1);
}

/** MOLT_JITTER: uniform random in [0, jitterMs), injectable random for tests. */
export function jitterMs(maxMs: number, random: () => number = Math.random): number {
  if (!(maxMs > 0)) return 0;
  const r = random();
  const v = Math.floor((Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0) * maxMs);
  return Math.min(v, Math.ceil(maxMs) - 1);
}
