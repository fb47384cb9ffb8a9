// The API the updater calls for one artifact: hand over the (small) signature
// files the source found beside it, feed the hasher while downloading, then
// ask for the decision. The artifact is read once; the signatures are parsed
// before its first byte so the hasher computes only what they need.
//
//   const check = startTrustCheck(trust, 'app-1.2.tar.gz', { minisig, sig, sums, bundles }, { version: '1.2' });
//   ... for each downloaded chunk: check.hasher.update(chunk)
//   const { decision, digests } = check.finish();
//   if (!decision.ok) block the release with decision.reason
import type { TrustConfig } from './config.js';
import { decideTrust, type SignatureVerdict, type TrustDecision } from './decide.js';
import { digestsOf, TrustHasher, type ArtifactDigests, type HasherNeeds } from './hasher.js';
import { minisignNeeds, parseMinisignSignature, verifyMinisign } from './minisign.js';
import { parsePemSignature, pemNeeds, verifyPemOverArtifact, verifyPemOverBytes } from './pem.js';
import { verifySigstoreBundle } from './sigstore.js';
import { verdictFromSignedSums } from './sums.js';
import { OffThreadBlake2b } from './offthread.js';

/** What a source found beside the artifact; each absent one is simply not there. */
export interface ReleaseSignatures {
  /** `<name>.minisig` */
  minisig?: Uint8Array;
  /** `<name>.sig`: a PEM-key signature (cosign sign-blob --key, openssl) */
  sig?: Uint8Array;
  /** A checksum list that names the artifact (`SHA256SUMS`) and its signatures. */
  sums?: { name: string; content: Uint8Array; minisig?: Uint8Array; sig?: Uint8Array };
  /** Sigstore bundles: `<name>.sigstore.json`, GitHub artifact attestations for the digest, OCI referrers. */
  bundles?: Uint8Array[];
}

export interface TrustCheck {
  /** Feed every chunk of the artifact, in order, exactly once. */
  readonly hasher: TrustHasher;
  /**
   * With opts.offThread: feed each chunk here instead of to the hasher; a promise
   * means "wait before the next chunk" (the other thread is behind).
   */
  feed(chunk: Uint8Array): Promise<void> | undefined;
  /**
   * Whether a signature of this release compares the artifact's SHA-256 (a checksum list, a Sigstore
   * subject): when not, a caller that hashes only for the check may skip it (opts.callerHashes).
   */
  readonly needsSha256: boolean;
  /** With the other thread: a buffer to read the next chunk into, then feed() a view of it (nothing copied). */
  readBuffer?: () => Buffer | Promise<Buffer>;
  /** finish() for a check fed through feed(): waits for the other thread's digest. */
  finishAsync(sha256?: string): Promise<{ decision: TrustDecision; digests: ArtifactDigests }>;
  /** Stop the other thread of a check that will not be finished (a failed download). */
  close(): void;
  /** `sha256`: the artifact's digest (hex) when the caller computed it (opts.callerHashes). */
  finish(sha256?: string): { decision: TrustDecision; digests: ArtifactDigests };
}

const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');

function mergeNeeds(a: HasherNeeds, b: HasherNeeds): HasherNeeds {
  return {
    ...(a.sha256 === false || b.sha256 === false ? { sha256: false } : {}),
    blake2b512: Boolean(a.blake2b512 || b.blake2b512),
    bytes: Boolean(a.bytes || b.bytes),
    ecdsa: [...(a.ecdsa ?? []), ...(b.ecdsa ?? [])],
  };
}

/** The verdicts a signed checksum list gives, from both its signature kinds. */
function sumsVerdicts(config: TrustConfig, sums: NonNullable<ReleaseSignatures['sums']>, servedAs: string, digests: ArtifactDigests): SignatureVerdict[] {
  const out: SignatureVerdict[] = [];
  if (sums.minisig) {
    const v = verifyMinisign(text(sums.minisig), config.keys, digestsOf(sums.content));
    out.push(verdictFromSignedSums(v, sums, servedAs, digests));
  }
  if (sums.sig) out.push(verdictFromSignedSums(verifyPemOverBytes(sums.sig, config.keys, sums.content), sums, servedAs, digests));
  return out;
}

/**
 * Start checking the artifact `servedAs` (the file name molt will install).
 * `version`: the version molt will record for it, which the signed name must carry.
 */
export function startTrustCheck(config: TrustConfig, servedAs: string, signatures: ReleaseSignatures, opts: { version?: string; callerHashes?: boolean; offThread?: boolean } = {}): TrustCheck {
  // The download already hashes every byte with SHA-256: its digest is reused, never computed twice.
  let needs: HasherNeeds = opts.callerHashes ? { sha256: false } : {};
  if (config.required && signatures.minisig) {
    const parsed = parseMinisignSignature(text(signatures.minisig));
    if (typeof parsed !== 'string') needs = mergeNeeds(needs, minisignNeeds(parsed));
  }
  // A bare .sig over the artifact names no file, so it can only ever explain a
  // refusal; it costs a SHA-256 pass per trusted P-256 key (or the bytes for
  // Ed25519), so it is checked only when nothing else could vouch for the file.
  const bareSigOnly = Boolean(signatures.sig && !signatures.minisig && !signatures.sums && !(signatures.bundles?.length && config.keyless));
  // ECDSA verifiers come first in the hasher's list: verifyPemOverArtifact reads them from offset 0.
  if (config.required && bareSigOnly && signatures.sig) {
    const sig = parsePemSignature(signatures.sig);
    if (typeof sig !== 'string') needs = mergeNeeds(pemNeeds(sig, config.keys), needs);
  }
  // BLAKE2b-512 (minisign's prehash) on another core, beside the download's own SHA-256.
  const blake = opts.offThread && needs.blake2b512 ? new OffThreadBlake2b() : undefined;
  if (blake) needs = { ...needs, blake2b512: false };
  const hasher = new TrustHasher(needs);
  const needsSha256 = Boolean(config.required && (signatures.sums || signatures.bundles?.length));
  const decideWith = (digests: ArtifactDigests) => {
    const verdicts: SignatureVerdict[] = [];
    if (needsSha256 && digests.sha256 === undefined) throw new Error('internal: this release\'s signatures need the artifact\'s sha256');
    if (config.required) {
      if (signatures.minisig) verdicts.push(verifyMinisign(text(signatures.minisig), config.keys, digests));
      if (bareSigOnly && signatures.sig) verdicts.push(verifyPemOverArtifact(signatures.sig, config.keys, digests));
      if (signatures.sums) verdicts.push(...sumsVerdicts(config, signatures.sums, servedAs, digests));
      // Without a pinned identity there is no root to check a bundle against: it is no evidence.
      const keyless = config.keyless;
      if (keyless) for (const b of signatures.bundles ?? []) verdicts.push(verifySigstoreBundle(text(b), keyless, servedAs, digests.sha256!));
    }
    return { decision: decideTrust(config, { servedAs, verdicts, ...(opts.version !== undefined ? { version: opts.version } : {}) }), digests };
  };
  return {
    hasher,
    needsSha256,
    feed(chunk) {
      hasher.update(chunk);
      return blake?.update(chunk);
    },
    ...(blake ? { readBuffer: () => blake.readBuffer() } : {}),
    finish(sha256) {
      if (blake) throw new Error('internal: an off-thread check ends with finishAsync');
      return decideWith(hasher.finish(sha256));
    },
    async finishAsync(sha256) {
      const digests = hasher.finish(sha256);
      if (blake) digests.blake2b512 = await blake.digest();
      return decideWith(digests);
    },
    close() {
      blake?.close();
    },
  };
}
