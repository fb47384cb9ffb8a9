// Versions already in MOLT_HOME/versions/ are started again without a download:
// `molt update` to a kept version, `molt rollback`, the automatic rollback after a
// failed trial. With a trust setting, the download's signature check is not
// there to stop them, so the record state.json keeps (verifiedBy) decides. Pure:
// (trust settings, the version's record, why it would run) -> allow | refuse.
import type { TrustConfig } from './config.js';
import type { TrustReason } from './decide.js';
import { identityMatches } from './sigstore.js';

/** state.json's verifiedBy for a MOLT_BUNDLED release: trusted as the image is, never signature-checked. */
export const BUNDLED_BY = 'bundled with the image';

/**
 * Why a kept version would run: installed again (`molt update VERSION`, or the policy choosing it),
 * `molt rollback`, or the rollback after a failed trial (back to the version that ran before it).
 */
export type StoredUse = 'install' | 'rollback' | 'auto-rollback';

export type StoredDecision = { allow: true; why: string } | { allow: false; reason: TrustReason; line: string };

const KEY_ID_RE = /^[0-9A-Fa-f]{16}$/;

/** Whether `by` (a verifiedBy record) is a key or identity the trust settings name now. */
export function trustedNow(trust: Pick<TrustConfig, 'keys' | 'identity'>, by: string): boolean {
  if (by === BUNDLED_BY) return true;
  if (trust.keys.some((k) => k.id === by)) return true;
  return trust.identity !== undefined && !KEY_ID_RE.test(by) && identityMatches(trust.identity, by);
}

/**
 * The rule: with a trust setting, a kept version runs only when a key or identity trusted now
 * verified it, or it is bundled. The one exception is the automatic rollback: it returns to the
 * version that ran until this update (already running under these settings, the operator's), so a
 * crashing trial never leaves the app down; it starts no version that was not running.
 */
export function decideStored(trust: Pick<TrustConfig, 'required' | 'keys' | 'identity'> | undefined, version: string, verifiedBy: string | undefined, use: StoredUse): StoredDecision {
  if (!trust?.required) return { allow: true, why: 'no trust setting' };
  if (verifiedBy !== undefined && trustedNow(trust, verifiedBy)) return { allow: true, why: verifiedBy === BUNDLED_BY ? 'bundled' : `verified by ${verifiedBy}` };
  if (use === 'auto-rollback') return { allow: true, why: 'it ran before this update' };
  if (verifiedBy === undefined) {
    return { allow: false, reason: 'no signature', line: `${version} was installed before signatures were required; publish it signed or remove it` };
  }
  const reason: TrustReason = KEY_ID_RE.test(verifiedBy) ? `unknown key ${verifiedBy}` : `identity ${verifiedBy} not trusted`;
  return { allow: false, reason, line: `${version} was verified by ${verifiedBy}, which is no longer trusted; publish it signed or remove it` };
}

/**
 * A kept version that may not run again as it is can still be downloaded again and checked like a
 * new release, its verified copy replacing the kept one: unless it runs (current) or is the automatic
 * rollback's target (previous), which must stay in place. Then it is refused as decideStored says.
 */
export function refetchKept(trust: Pick<TrustConfig, 'required' | 'keys' | 'identity'> | undefined, version: string, verifiedBy: string | undefined, roles: { current?: string | undefined; previous?: string | undefined }): boolean {
  if (decideStored(trust, version, verifiedBy, 'install').allow) return false;
  return version !== roles.current && version !== roles.previous;
}

/** The one line at start when the running version is not one decideStored would start now, or null. */
export function unverifiedCurrentWarning(trust: Pick<TrustConfig, 'required' | 'keys' | 'identity'> | undefined, current: string | undefined, verifiedBy: string | undefined): string | null {
  if (!current) return null;
  const d = decideStored(trust, current, verifiedBy, 'install');
  return d.allow ? null : `the running version ${current} is not verified (${d.reason}): it keeps running; once replaced, only an automatic rollback starts it again`;
}
