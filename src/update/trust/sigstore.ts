// Keyless trust: a Sigstore bundle (`<file>.sigstore.json`, or a GitHub
// artifact attestation) verified by @sigstore/verify against a trusted root:
// certificate chain, transparency log entry and signature are the library's
// job; molt checks what they prove against MOLT_TRUST_IDENTITY/ISSUER, and
// that the in-toto statement names the artifact's sha256 under the file name
// molt is about to install.
//
// Only DSSE (in-toto) bundles are accepted: their signature covers the small
// statement, and the statement carries the artifact's sha256, which the
// download computed while streaming. A message-signature bundle
// (`cosign sign-blob --bundle`) signs the raw bytes and would need the whole
// artifact a second time, and names no file.
import { createRequire } from 'node:module';
import type * as BundleLib from '@sigstore/bundle';
import type * as SpecsLib from '@sigstore/protobuf-specs';
import type * as VerifyLib from '@sigstore/verify';
import type { Verifier } from '@sigstore/verify';
import type { SignatureVerdict } from './decide.js';

// The @sigstore packages (CommonJS) take ~180 ms to load: only a keyless
// setting pays for them, on first use, not every updater that pins keys.
const requireCjs = createRequire(import.meta.url);
let libs: { bundle: typeof BundleLib; specs: typeof SpecsLib; verify: typeof VerifyLib } | undefined;
function sigstore(): NonNullable<typeof libs> {
  libs ??= {
    bundle: requireCjs('@sigstore/bundle') as typeof BundleLib,
    specs: requireCjs('@sigstore/protobuf-specs') as typeof SpecsLib,
    verify: requireCjs('@sigstore/verify') as typeof VerifyLib,
  };
  return libs;
}

export interface KeylessPolicy {
  /** The certificate's SAN (e.g. a workflow URI); `*` matches any run of characters. */
  identity: string;
  /** The Fulcio OIDC issuer extension (1.3.6.1.4.1.57264.1.8, or the older .1.1), exact. */
  issuer: string;
}

export interface KeylessTrust {
  verifier: Verifier;
  policy: KeylessPolicy;
}

const IN_TOTO = 'application/vnd.in-toto+json';

/**
 * The trusted root JSON (MOLT_TRUST_ROOT, or the TUF-refreshed public-good
 * one) to a verifier. SCTs are required when the root lists CT logs (the
 * public good instance does); a private root without CT logs needs none.
 * Throws on a malformed root: a configuration error for the caller.
 */
export function keylessTrust(trustedRootJson: unknown, policy: KeylessPolicy): KeylessTrust {
  const { specs, verify } = sigstore();
  const root = specs.TrustedRoot.fromJSON(trustedRootJson);
  const material = verify.toTrustMaterial(root);
  if (material.certificateAuthorities.length === 0) throw new Error('trusted root has no certificate authority');
  const verifier = new verify.Verifier(material, { ctlogThreshold: root.ctlogs.length > 0 ? 1 : 0, tlogThreshold: 1, timestampThreshold: 1 });
  return { verifier, policy };
}

/**
 * `*` in a pinned identity matches any run of characters other than `/` and
 * `@`; everything else is literal and the whole identity must match. So
 * `.../release.yml@refs/tags/v*` takes every v tag of that workflow, and a `*`
 * can never reach across a path segment or into the `@ref` part: a branch
 * named `x.yml@refs/tags/v1` does not pass for a tag, nor `acme/*` for a
 * workflow of a nested path.
 */
export function identityMatches(pattern: string, identity: string): boolean {
  const re = new RegExp('^' + pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[^/@]*') + '$');
  return re.test(identity);
}

interface Subject {
  name?: unknown;
  digest?: { sha256?: unknown };
}

/**
 * Check one bundle for the artifact `servedAs` whose sha256 (lowercase hex)
 * the download computed. The identity check comes after the library's
 * verification, so a forged bundle is 'bad', and only a genuine bundle from
 * someone else is 'identity <x> not trusted'.
 */
export function verifySigstoreBundle(bundleText: string, trust: KeylessTrust, servedAs: string, sha256: string): SignatureVerdict {
  let statement: { subject?: Subject[] };
  let identity: string;
  let issuer: string | undefined;
  try {
    const { bundle: bundleLib, verify } = sigstore();
    const bundle = bundleLib.bundleFromJSON(JSON.parse(bundleText));
    const assertBundle: typeof BundleLib.assertBundle = bundleLib.assertBundle;
    assertBundle(bundle);
    if (bundle.content.$case !== 'dsseEnvelope') return { kind: 'bad', detail: 'a message-signature bundle; molt accepts in-toto attestations (DSSE bundles)' };
    const env = bundle.content.dsseEnvelope;
    if (env.payloadType !== IN_TOTO) return { kind: 'bad', detail: `bundle payload type ${env.payloadType}, not an in-toto statement` };
    const signer = trust.verifier.verify(verify.toSignedEntity(bundle));
    identity = signer.identity?.subjectAlternativeName ?? '';
    issuer = signer.identity?.extensions?.issuer;
    statement = JSON.parse(Buffer.from(env.payload).toString('utf8')) as { subject?: Subject[] };
  } catch (err) {
    // @sigstore/bundle's ValidationError lists the offending fields; @sigstore/verify's errors carry a code.
    const e = err as Error & { fields?: string[]; code?: string; cause?: unknown };
    const cause = e.cause instanceof Error ? `: ${e.cause.message}` : '';
    const extra = e.fields?.length ? ` (${e.fields.join(', ')})` : e.code ? ` (${e.code}${cause})` : '';
    return { kind: 'bad', detail: `sigstore bundle: ${e.message}${extra}`.replace(/\s+/g, ' ') };
  }
  if (!identity) return { kind: 'bad', detail: 'sigstore bundle signed by a key, not a certificate identity' };
  if (!identityMatches(trust.policy.identity, identity)) return { kind: 'untrusted-identity', identity };
  if (issuer !== trust.policy.issuer) return { kind: 'untrusted-identity', identity: `${identity} (issuer ${issuer ?? 'none'})` };
  const subjects = Array.isArray(statement.subject) ? statement.subject : [];
  const named = (s: Subject) => (typeof s.name === 'string' ? s.name : null);
  const exact = subjects.find((s) => s.digest?.sha256 === sha256 && named(s) === servedAs);
  if (exact) return { kind: 'valid', by: identity, signedFor: servedAs };
  const sameBytes = subjects.find((s) => s.digest?.sha256 === sha256);
  if (sameBytes) return { kind: 'valid', by: identity, signedFor: named(sameBytes) };
  if (subjects.some((s) => named(s) === servedAs)) return { kind: 'bad', detail: `${servedAs}: sha256 ${sha256} is not the attested digest` };
  return { kind: 'absent' };
}
