// The trust decision: given what each signature check found, install or refuse,
// and why. Pure: the checks (minisign.ts, pem.ts, sums.ts) turn bytes into
// verdicts; this table turns verdicts into one answer with a reason from a
// closed set, so logs, notifications and metrics can match on it.

/** What one signature said about the artifact molt is about to install. */
export type SignatureVerdict =
  /** A trusted key or identity signed these bytes; `signedFor` is the file name it was signed for (null: the signature names none). */
  | { kind: 'valid'; by: string; signedFor: string | null }
  /** Well-formed, but by a key the image does not trust. */
  | { kind: 'unknown-key'; keyId: string }
  /** Keyless: a valid bundle for an identity (or issuer) other than the pinned one. */
  | { kind: 'untrusted-identity'; identity: string }
  /** Does not verify: bytes changed, truncated or garbage file, wrong algorithm; `detail` is for the log. */
  | { kind: 'bad'; detail: string }
  /** A signed document (SHA256SUMS) that does not mention this artifact: no evidence either way. */
  | { kind: 'absent' };

export interface TrustEvidence {
  /** The file name molt is about to install, as the source serves it. */
  servedAs: string;
  /**
   * The version molt would record for it (from a tag). When given, the signed
   * name must contain it: a file named the same in every release
   * (app-linux.tar.gz) would otherwise let a signed old release pass as new.
   */
  version?: string;
  verdicts: SignatureVerdict[];
}

export interface TrustPolicy {
  /** False when no trust setting is present: today's behaviour (one warning at start). */
  required: boolean;
}

export type TrustReason =
  | 'no signature'
  | `unknown key ${string}`
  | 'bad signature'
  | `identity ${string} not trusted`
  | `signed for ${string}, served as ${string}`;

export type TrustDecision =
  /** `by`: key id or identity; null when verification is not configured. */
  | { ok: true; by: string | null }
  | { ok: false; reason: TrustReason; detail?: string };

/** The name a signature without `file:` is reported with in a binding refusal. */
export const UNNAMED = '(no name)';

/**
 * A refusal's rank: when several signatures fail, the reason that points at
 * the most deliberate tampering is reported. A trusted signature for another
 * named file (rollback or mix-and-match) beats one that names no file, which
 * beats a broken one, then a stranger's key, then nothing at all. Equal ranks
 * are broken by the text, so the answer never depends on the verdicts' order.
 */
const RANK = { binding: 6, unnamed: 5, bad: 4, identity: 3, 'unknown-key': 2, none: 1 } as const;

/**
 * Whether `name` carries `version` as a whole token: "app-1.2.0.tar.gz" and
 * "app_v1.2.0_linux.tgz" carry 1.2.0; "app-11.2.0.tgz" and "app-1.2.0.1.tgz" do not.
 */
export function nameHasVersion(name: string, version: string): boolean {
  const v = version.replace(/^v/, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^0-9A-Za-z.])v?${v}([^0-9A-Za-z.]|\\.(?![0-9])|$)`).test(name);
}

function binds(v: SignatureVerdict, e: TrustEvidence): boolean {
  return v.kind === 'valid' && v.signedFor === e.servedAs && (e.version === undefined || nameHasVersion(v.signedFor, e.version));
}

function refusalOf(v: SignatureVerdict, e: TrustEvidence): { rank: number; decision: TrustDecision & { ok: false } } {
  const servedAs = e.version !== undefined ? `${e.servedAs} (version ${e.version})` : e.servedAs;
  switch (v.kind) {
    case 'valid':
      return {
        rank: v.signedFor === null ? RANK.unnamed : RANK.binding,
        decision: { ok: false, reason: `signed for ${v.signedFor ?? UNNAMED}, served as ${servedAs}` },
      };
    case 'bad':
      return { rank: RANK.bad, decision: { ok: false, reason: 'bad signature', detail: v.detail } };
    case 'untrusted-identity':
      return { rank: RANK.identity, decision: { ok: false, reason: `identity ${v.identity} not trusted` } };
    case 'unknown-key':
      return { rank: RANK['unknown-key'], decision: { ok: false, reason: `unknown key ${v.keyId}` } };
    case 'absent':
      return { rank: RANK.none, decision: { ok: false, reason: 'no signature' } };
  }
}

function orderKey(d: { reason: string; detail?: string }): string {
  return `${d.reason}\n${d.detail ?? ''}`;
}

/** Install only what a trusted key or identity signed for exactly this name. */
export function decideTrust(policy: TrustPolicy, evidence: TrustEvidence): TrustDecision {
  if (!policy.required) return { ok: true, by: null };
  const accepted = evidence.verdicts.find((v) => binds(v, evidence));
  if (accepted && accepted.kind === 'valid') return { ok: true, by: accepted.by };
  let worst: { rank: number; decision: TrustDecision & { ok: false } } = { rank: 0, decision: { ok: false, reason: 'no signature' } };
  for (const v of evidence.verdicts) {
    const r = refusalOf(v, evidence);
    if (r.rank > worst.rank || (r.rank === worst.rank && orderKey(r.decision) < orderKey(worst.decision))) worst = r;
  }
  return worst.decision;
}
