// A fleet verdict (pure): what one replica (or a person) says about one release,
// shared through the registry so the other replicas need not try it. The verdict
// is a small JSON document carried in the annotations of a referrer manifest
// (artifactType VERDICT_TYPE) and copied into the referrers index entry, so one
// GET of the index reads every verdict. Anything malformed, oversized or bound
// to another subject is ignored with a reason; the fold is a table over what is left.
import { createHash } from 'node:crypto';
import type { TrustKey } from '../trust/keys.js';
import { verifyMinisign, signMinisign } from '../trust/minisign.js';
import { signPem, verifyPemOverBytes } from '../trust/pem.js';
import type { SigningKey } from '../trust/sign.js';

export const VERDICT_TYPE = 'application/vnd.molt.verdict.v1+json';
/** Annotation keys on the referrer manifest and its index entry. */
export const ANN_VERDICT = 'vnd.molt.verdict';
export const ANN_SIG = 'vnd.molt.verdict.sig';
/** A verdict document longer than this is ignored unread (annotations are copied into every index read). */
export const MAX_VERDICT_BYTES = 1024;
export const MAX_SIG_BYTES = 1024;
export const MAX_REASON = 200;

export type VerdictKind = 'blocked' | 'committed' | 'unblocked' | 'paused' | 'resumed';
const KINDS = new Set<VerdictKind>(['blocked', 'committed', 'unblocked', 'paused', 'resumed']);

export interface Verdict {
  kind: VerdictKind;
  /** What it is about: the release manifest's digest, or for paused/resumed the repository (registry/name). */
  subject: string;
  version?: string;
  reason: string;
  /** The replica (MOLT_REPLICA_ID or hostname) or person that wrote it. */
  replica: string;
  /** ISO time on the writer's clock. */
  time: string;
}

const ID_RE = /^[A-Za-z0-9._:@\-/]{1,128}$/;

/** The bytes that are stored and signed: a fixed field order, so a re-encoding is the same. */
export function encodeVerdict(v: Verdict): string {
  const reason = v.reason.replace(/[\r\n\t]+/g, ' ').slice(0, MAX_REASON);
  return JSON.stringify({ v: 1, kind: v.kind, subject: v.subject, ...(v.version ? { version: v.version } : {}), reason, replica: v.replica, time: v.time });
}

/** A verdict document to a Verdict, or a one-line reason it is ignored. `subject`: what it must be about. */
export function parseVerdict(text: string | undefined, subject: string): Verdict | string {
  if (text === undefined) return 'no verdict annotation';
  if (Buffer.byteLength(text, 'utf8') > MAX_VERDICT_BYTES) return `verdict larger than ${MAX_VERDICT_BYTES} bytes`;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return 'verdict is not JSON';
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return 'verdict is not an object';
  const d = doc as Record<string, unknown>;
  if (d.v !== 1) return `verdict of unknown format ${JSON.stringify(d.v ?? null)}`;
  if (typeof d.kind !== 'string' || !KINDS.has(d.kind as VerdictKind)) return `verdict of unknown kind ${JSON.stringify(d.kind ?? null)}`;
  if (d.subject !== subject) return `verdict about ${String(d.subject).slice(0, 80)}, not ${subject}`;
  if (typeof d.replica !== 'string' || !ID_RE.test(d.replica)) return 'verdict without a valid replica id';
  if (typeof d.reason !== 'string' || d.reason.length > MAX_REASON) return 'verdict without a valid reason';
  if (typeof d.time !== 'string' || !Number.isFinite(Date.parse(d.time))) return 'verdict without a valid time';
  if (d.version !== undefined && (typeof d.version !== 'string' || d.version.length > 128)) return 'verdict with an invalid version';
  return { kind: d.kind as VerdictKind, subject, reason: d.reason, replica: d.replica, time: d.time, ...(typeof d.version === 'string' ? { version: d.version } : {}) };
}

/** A signature over the verdict's bytes: a prehashed .minisig (text) or a PEM key's base64. */
export function signVerdict(text: string, key: SigningKey, now = Date.now()): string {
  const bytes = Buffer.from(text, 'utf8');
  if (key.kind === 'pem') return signPem(key.key, bytes);
  return signMinisign(key.key, createHash('blake2b512').update(bytes).digest(), 'molt-verdict', now / 1000);
}

/** Who signed `text` among `keys` (a key id), or a reason it is not trusted. */
export function verifyVerdict(text: string, sig: string | undefined, keys: readonly TrustKey[]): { by: string } | string {
  if (!sig) return 'unsigned verdict';
  if (sig.length > MAX_SIG_BYTES) return 'verdict signature too large';
  const bytes = Buffer.from(text, 'utf8');
  const verdict = sig.startsWith('untrusted comment:')
    ? verifyMinisign(sig, keys, { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), blake2b512: createHash('blake2b512').update(bytes).digest(), ecdsa: [] })
    : verifyPemOverBytes(Buffer.from(sig, 'utf8'), keys, bytes);
  if (verdict.kind === 'valid') return { by: verdict.by };
  if (verdict.kind === 'unknown-key') return `verdict signed by untrusted key ${verdict.keyId}`;
  if (verdict.kind === 'bad') return `verdict signature does not verify (${verdict.detail})`;
  return 'verdict signature not trusted';
}

/** One verdict as read, with its signature: accepted (Verdict) or ignored (a reason). */
export function judgeVerdict(text: string | undefined, sig: string | undefined, subject: string, trust: { required: boolean; keys: readonly TrustKey[] }): Verdict | string {
  const v = parseVerdict(text, subject);
  if (typeof v === 'string') return v;
  if (!trust.required) return v;
  const by = verifyVerdict(text!, sig, trust.keys);
  return typeof by === 'string' ? by : v;
}

export interface FleetView {
  /** The newest block not lifted by a newer unblock: the release is never tried. */
  blocked?: Verdict;
  /** The newest unblock, when one is newer than every block (a local fleet block is lifted by it). */
  unblocked?: Verdict;
  /** Distinct replicas that committed the release. */
  commits: number;
}

/** Fold the accepted verdicts of one release. Time order decides block vs unblock; ties go to the block (the safe side). */
export function foldVerdicts(verdicts: readonly Verdict[]): FleetView {
  let block: Verdict | undefined;
  let unblock: Verdict | undefined;
  const committed = new Set<string>();
  const t = (v: Verdict) => Date.parse(v.time);
  for (const v of verdicts) {
    if (v.kind === 'blocked' && (!block || t(v) > t(block))) block = v;
    else if (v.kind === 'unblocked' && (!unblock || t(v) > t(unblock))) unblock = v;
    else if (v.kind === 'committed') committed.add(v.replica);
  }
  const lifted = block && unblock && t(unblock) > t(block);
  return {
    ...(block && !lifted ? { blocked: block } : {}),
    ...(unblock && (!block || lifted) ? { unblocked: unblock } : {}),
    commits: committed.size,
  };
}
