// PEM-key signatures as `cosign sign-blob --key` and openssl write them: a
// `.sig` file holding an ECDSA P-256 (SHA-256, DER) or Ed25519 signature over
// the signed file's bytes, base64 (cosign) or raw (`openssl dgst -sign`,
// `openssl pkeyutl -sign -rawin`). Such a signature names no file and carries
// no key id: each trusted PEM key is tried, and a valid one still needs a
// name binding (sign SHA256SUMS, which lists names: sums.ts).
//
// node:crypto cannot verify ECDSA from a precomputed digest, so a signature
// over a large artifact is checked by a streaming verifier that TrustHasher
// feeds with the same chunks (one read; one more SHA-256 pass per trusted
// P-256 key). Ed25519 signs the raw message (cosign's Ed25519ph is not in
// node), so it is bounded like minisign's legacy signatures.
import { sign as cryptoSign, verify as cryptoVerify, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import type { ArtifactDigests, HasherNeeds } from './hasher.js';
import type { SignatureVerdict } from './decide.js';
import { pemKeyId, type TrustKey } from './keys.js';

type PemKey = Extract<TrustKey, { kind: 'pem' }>;

const BASE64_RE = /^[A-Za-z0-9+/\r\n]+={0,2}\s*$/;

/** A .sig file's signature bytes: base64 text (cosign) or raw binary (openssl). */
export function parsePemSignature(file: Uint8Array): Buffer | string {
  const buf = Buffer.from(file);
  if (buf.length === 0) return 'empty signature file';
  const text = buf.toString('latin1');
  const sig = BASE64_RE.test(text) ? Buffer.from(text.replace(/\s+/g, ''), 'base64') : buf;
  // A DER ECDSA-P256 signature is a SEQUENCE of at most 72 bytes; Ed25519 is 64.
  if (sig.length === 64 || (sig.length >= 8 && sig.length <= 72 && sig[0] === 0x30)) return sig;
  return `not an ECDSA P-256 or Ed25519 signature (${sig.length} bytes)`;
}

function pemKeys(keys: readonly TrustKey[]): PemKey[] {
  return keys.filter((k): k is PemKey => k.kind === 'pem');
}

/** What the hasher must compute to check `sig` over the artifact itself. */
export function pemNeeds(sig: Buffer, keys: readonly TrustKey[]): HasherNeeds {
  const pem = pemKeys(keys);
  return {
    ecdsa: pem.filter((k) => k.algorithm === 'ecdsa-p256').map((k) => ({ key: k.publicKey, signature: sig })),
    bytes: pem.some((k) => k.algorithm === 'ed25519'),
  };
}

function verifyOne(key: PemKey, message: Uint8Array, sig: Buffer): boolean {
  try {
    return cryptoVerify(key.algorithm === 'ecdsa-p256' ? 'sha256' : null, message, key.publicKey, sig);
  } catch {
    return false;
  }
}

function noMatch(count: number): SignatureVerdict {
  if (count === 0) return { kind: 'unknown-key', keyId: '(pem: no PEM key is trusted)' };
  return { kind: 'bad', detail: `PEM signature matches none of the ${count} trusted PEM key(s)` };
}

/**
 * A .sig over the artifact, from the streamed digests: the ECDSA outcomes the
 * hasher computed (in pemNeeds order), or Ed25519 over the kept bytes.
 * `signedFor` is null: a bare signature does not name what it was made for.
 */
export function verifyPemOverArtifact(sigFile: Uint8Array, keys: readonly TrustKey[], artifact: ArtifactDigests, ecdsaOffset = 0): SignatureVerdict {
  const sig = parsePemSignature(sigFile);
  if (typeof sig === 'string') return { kind: 'bad', detail: sig };
  const pem = pemKeys(keys);
  const ecdsa = pem.filter((k) => k.algorithm === 'ecdsa-p256');
  const hit = ecdsa.findIndex((_, i) => artifact.ecdsa[ecdsaOffset + i] === true);
  if (hit >= 0) return { kind: 'valid', by: ecdsa[hit]!.id, signedFor: null };
  const ed = pem.filter((k) => k.algorithm === 'ed25519');
  if (ed.length > 0 && artifact.bytes === 'too-big') {
    return { kind: 'bad', detail: 'Ed25519 signature over more than 64 MiB; sign SHA256SUMS instead' };
  }
  if (ed.length > 0 && artifact.bytes) {
    const ok = ed.find((k) => verifyOne(k, artifact.bytes as Buffer, sig));
    if (ok) return { kind: 'valid', by: ok.id, signedFor: null };
  }
  return noMatch(pem.length);
}

/** A .sig over a small document in memory (SHA256SUMS); `signedFor` is null for the same reason. */
export function verifyPemOverBytes(sigFile: Uint8Array, keys: readonly TrustKey[], message: Uint8Array): SignatureVerdict {
  const sig = parsePemSignature(sigFile);
  if (typeof sig === 'string') return { kind: 'bad', detail: sig };
  const pem = pemKeys(keys);
  const ok = pem.find((k) => verifyOne(k, message, sig));
  return ok ? { kind: 'valid', by: ok.id, signedFor: null } : noMatch(pem.length);
}

/** A PEM private key (PKCS#8, or SEC1 for EC) for signing; refuses other key types. */
export function parsePemPrivateKey(text: string): { key: KeyObject; algorithm: 'ecdsa-p256' | 'ed25519'; keyId: string } | string {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: text, format: 'pem' });
  } catch (err) {
    return `not an unencrypted PEM private key (${(err as Error).message})`;
  }
  const keyId = pemKeyId(createPublicKey(key));
  if (key.asymmetricKeyType === 'ed25519') return { key, algorithm: 'ed25519', keyId };
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return { key, algorithm: 'ecdsa-p256', keyId };
  return `unsupported private key type ${key.asymmetricKeyType ?? 'unknown'} (want ECDSA P-256 or Ed25519)`;
}

/** The .sig content cosign writes: base64 of the DER (ECDSA) or raw (Ed25519) signature, no newline. */
export function signPem(key: { key: KeyObject; algorithm: 'ecdsa-p256' | 'ed25519' }, message: Uint8Array): string {
  return cryptoSign(key.algorithm === 'ecdsa-p256' ? 'sha256' : null, message, key.key).toString('base64');
}
