// Canary waves and the fleet gate (pure). MOLT_CANARY picks a fixed share of
// the fleet by a hash of the replica id: those take a release at once; the
// rest wait for MOLT_CANARY_COMMITS committed verdicts, or for the end of the
// MOLT_ROLLOUT window without a block. The gate is one table over the facts.
import { createHash } from 'node:crypto';
import type { FleetView } from './verdict.js';

/** MOLT_CANARY: "5%", "0.5%", "0" -> a share in [0, 1]; a reason string when it is not one. */
export function parseCanary(text: string | undefined): number | string {
  const t = (text ?? '').trim();
  if (t === '' || t === '0' || t === '0%') return 0;
  const m = /^(\d+(?:\.\d+)?)%$/.exec(t);
  if (!m) return `MOLT_CANARY=${JSON.stringify(t)}: want a percentage such as 5%`;
  const p = Number(m[1]);
  if (!(p >= 0 && p <= 100)) return `MOLT_CANARY=${t}: want 0% to 100%`;
  return p / 100;
}

/** The replica's place in [0, 1), fixed by a hash of its id: the same replicas are canaries for every release. */
export function replicaUnit(replicaId: string): number {
  const h = createHash('sha256').update(`molt-canary\n${replicaId}`, 'utf8').digest();
  return h.readUIntBE(0, 6) / 2 ** 48;
}

export function isCanary(replicaId: string, share: number): boolean {
  return share > 0 && replicaUnit(replicaId) < share;
}

export interface GateFacts {
  /** 'local' ($MOLT_HOME/paused) or 'fleet' (the repository's pause tag), else undefined. */
  paused?: 'local' | 'fleet';
  /** The release's verdicts (undefined: none read: fleet off, not an OCI source, or the read failed). */
  view?: FleetView;
  /** MOLT_CANARY as a share; 0: no waves (the rollout spread alone). */
  canaryShare: number;
  canary: boolean;
  needCommits: number;
  /** Since the release was first seen, minus MOLT_DELAY (may be negative). */
  elapsedMs: number;
  /** MOLT_ROLLOUT. */
  windowMs: number;
  /** This replica's own spread in the window (rollout.ts), used when there are no waves. */
  spreadMs: number;
}

export type GateDecision =
  | { action: 'apply'; why: string }
  | { action: 'wait'; why: string; retryMs: number }
  | { action: 'block'; why: string };

/** The fleet gate, in order: pause, a fleet block, MOLT_DELAY, then waves (or the plain rollout spread). */
export function decideGate(f: GateFacts): GateDecision {
  if (f.paused) return { action: 'wait', why: `paused (${f.paused})`, retryMs: Number.POSITIVE_INFINITY };
  if (f.view?.blocked) {
    const b = f.view.blocked;
    return { action: 'block', why: `blocked by ${b.replica}${b.reason ? `: ${b.reason}` : ''}` };
  }
  if (f.elapsedMs < 0) return { action: 'wait', why: 'delay', retryMs: -f.elapsedMs };
  if (f.canaryShare <= 0) {
    if (f.elapsedMs < f.spreadMs) return { action: 'wait', why: 'rollout', retryMs: f.spreadMs - f.elapsedMs };
    return { action: 'apply', why: f.windowMs > 0 ? 'rollout position reached' : 'no delay' };
  }
  if (f.canary) return { action: 'apply', why: 'canary' };
  const commits = f.view?.commits ?? 0;
  if (commits >= f.needCommits) return { action: 'apply', why: `${commits} replica${commits === 1 ? '' : 's'} committed it` };
  if (f.elapsedMs >= f.windowMs) return { action: 'apply', why: 'rollout window ended without a block' };
  return { action: 'wait', why: `canary wave: ${commits}/${f.needCommits} committed`, retryMs: f.windowMs - f.elapsedMs };
}
