// The trust decision for an OCI release (pure). What is signed is the release's manifest digest:
// the manifest binds its layers by digest, and molt verifies each layer against it. A signature
// binds a name too: cosign's docker-reference, the in-toto subject name, minisign's `file:`, each
// the repository (`registry/repository`). The version molt records comes from the tag, which no
// one signs, so it must equal the version the signed manifest states (its
// org.opencontainers.image.version annotation, else its digest's short form): a signed old
// release tagged as a higher version is `signed for <repo>:<old>, served as <repo>:<new>`.
import type { OciSignatureMaterial } from '../oci/signatures.js';
import { normalizeSignedName, parseSimpleSigning } from '../oci/referrers.js';
import type { TrustConfig } from './config.js';
import { decideTrust, type SignatureVerdict, type TrustDecision } from './decide.js';
import { digestsOf } from './hasher.js';
import type { TrustKey } from './keys.js';
import { verifyMinisign } from './minisign.js';
import { verifyPemOverBytes } from './pem.js';
import { verifySigstoreBundle } from './sigstore.js';

export interface OciSubject {
  /** The release manifest's (or index's) digest, and its bytes (already proven to hash to it). */
  digest: string;
  bytes: Uint8Array;
  /** The repository molt follows, as referrers.ts's repositoryName writes it. */
  name: string;
  /** The version molt would record (from the tag, or the annotation when following one tag). */
  version: string;
  /** The version the signed manifest states. */
  signedVersion: string;
}

/** A cosign simple-signing signature: the PEM key's signature over the payload, then the payload's claims. */
export function cosignVerdict(keys: readonly TrustKey[], sig: { payload: Uint8Array; signature: string }, digest: string): SignatureVerdict {
  const v = verifyPemOverBytes(Buffer.from(sig.signature, 'latin1'), keys, sig.payload);
  if (v.kind !== 'valid') return v;
  const p = parseSimpleSigning(sig.payload);
  if (typeof p === 'string') return { kind: 'bad', detail: p };
  if (p.digest !== digest) return { kind: 'bad', detail: `the signed payload is for ${p.digest}, the manifest is ${digest}` };
  return { kind: 'valid', by: v.by, signedFor: p.reference };
}

/** Every verdict the material gives, names not yet bound. */
export function ociVerdicts(config: TrustConfig, m: OciSignatureMaterial, s: Pick<OciSubject, 'digest' | 'bytes' | 'name'>): SignatureVerdict[] {
  const out: SignatureVerdict[] = [];
  for (const c of m.cosign) out.push(cosignVerdict(config.keys, c, s.digest));
  if (m.minisigs.length > 0) {
    const digests = digestsOf(s.bytes);
    for (const b of m.minisigs) out.push(verifyMinisign(b.toString('utf8'), config.keys, digests));
  }
  // Without a pinned identity a bundle is no evidence (as for files).
  if (config.keyless) for (const b of m.bundles) out.push(verifySigstoreBundle(b.toString('utf8'), config.keyless, s.name, s.digest.replace(/^sha256:/, '')));
  for (const detail of m.broken) out.push({ kind: 'bad', detail });
  return out;
}

/** `<repository>:<version>`: the name a signature is bound to, and the name molt serves. */
export function ociBoundName(name: string, version: string): string {
  return `${name}:${version}`;
}

/** Install only a release whose manifest a trusted key or identity signed for this repository and version. */
export function decideOciTrust(config: TrustConfig, m: OciSignatureMaterial, s: OciSubject): TrustDecision {
  const verdicts = ociVerdicts(config, m, s).map((v): SignatureVerdict =>
    v.kind === 'valid' && v.signedFor !== null ? { ...v, signedFor: ociBoundName(normalizeSignedName(v.signedFor), s.signedVersion) } : v,
  );
  return decideTrust(config, { servedAs: ociBoundName(s.name, s.version), verdicts });
}
