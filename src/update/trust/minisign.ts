// minisign signatures with node:crypto only (Ed25519, BLAKE2b-512), in the
// exact format of jedisct1/minisign, so `minisign -S` output verifies here and
// molt's signatures verify with `minisign -V`:
//
//   untrusted comment: <anything>
//   base64( alg(2) || key number(8) || ed25519 signature(64) )
//   trusted comment: timestamp:<unix>\tfile:<name>\thashed
//   base64( ed25519 signature over (signature(64) || trusted comment) )
//
// alg "ED" (the default since 0.8) signs BLAKE2b-512 of the file, so the
// caller's streaming hasher supplies the digest; "Ed" (legacy, `-l`) signs the
// raw bytes, which must be in memory (bounded by the hasher).
import { createPrivateKey, createPublicKey, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import type { ArtifactDigests } from './hasher.js';
import type { SignatureVerdict } from './decide.js';
import { decodeBase64Exact, minisignKeyId, type TrustKey } from './keys.js';

export interface MinisignSignature {
  algorithm: 'prehashed' | 'legacy';
  keyNum: Buffer;
  keyId: string;
  signature: Buffer;
  trustedComment: string;
  globalSignature: Buffer;
}

const UNTRUSTED = 'untrusted comment:';
const TRUSTED = 'trusted comment: ';

/** A .minisig file's text to its parts, or a reason it is not one (truncated, garbage). */
export function parseMinisignSignature(text: string): MinisignSignature | string {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  const [untrusted, sigLine, trusted, globalLine] = lines;
  if (untrusted === undefined || !untrusted.startsWith(UNTRUSTED)) return 'not a minisign signature (no untrusted comment line)';
  if (sigLine === undefined || trusted === undefined || globalLine === undefined) return 'truncated minisign signature';
  const raw = decodeBase64Exact(sigLine.trim(), 74);
  if (!raw) return 'malformed minisign signature line';
  const alg = raw.subarray(0, 2).toString('latin1');
  if (alg !== 'ED' && alg !== 'Ed') return `unsupported minisign signature algorithm ${JSON.stringify(alg)}`;
  if (!trusted.startsWith(TRUSTED)) return 'minisign signature without a trusted comment';
  const globalSignature = decodeBase64Exact(globalLine.trim(), 64);
  if (!globalSignature) return 'malformed minisign global signature';
  const keyNum = Buffer.from(raw.subarray(2, 10));
  return {
    algorithm: alg === 'ED' ? 'prehashed' : 'legacy',
    keyNum,
    keyId: minisignKeyId(keyNum),
    signature: Buffer.from(raw.subarray(10)),
    trustedComment: trusted.slice(TRUSTED.length),
    globalSignature,
  };
}

/** The `file:` field of minisign's tab-separated trusted comment, or null when it has none (a custom -t comment). */
export function signedFileName(trustedComment: string): string | null {
  for (const field of trustedComment.split('\t')) {
    if (field.startsWith('file:')) return field.slice('file:'.length);
  }
  return null;
}

/** What the hasher must compute for this signature: its digest, or the bytes for legacy. */
export function minisignNeeds(sig: MinisignSignature): { blake2b512?: boolean; bytes?: boolean } {
  return sig.algorithm === 'prehashed' ? { blake2b512: true } : { bytes: true };
}

function ed25519Ok(key: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    return edVerify(null, message, key, signature);
  } catch {
    return false;
  }
}

/**
 * Check a .minisig against the trusted keys and the artifact's digests. Both
 * the signature over the file and the global signature over the trusted
 * comment must verify: the comment carries the file name that binds it.
 */
export function verifyMinisign(sigText: string, keys: readonly TrustKey[], artifact: ArtifactDigests): SignatureVerdict {
  const sig = parseMinisignSignature(sigText);
  if (typeof sig === 'string') return { kind: 'bad', detail: sig };
  const key = keys.find((k) => k.kind === 'minisign' && k.keyNum.equals(sig.keyNum));
  if (!key) return { kind: 'unknown-key', keyId: sig.keyId };
  let message: Uint8Array;
  if (sig.algorithm === 'prehashed') {
    if (!artifact.blake2b512) return { kind: 'bad', detail: 'artifact digest for a prehashed minisign signature was not computed' };
    message = artifact.blake2b512;
  } else {
    if (artifact.bytes === 'too-big') {
      return { kind: 'bad', detail: `legacy minisign signature over more than 64 MiB; sign with minisign's default (prehashed)` };
    }
    if (!artifact.bytes) return { kind: 'bad', detail: 'artifact bytes for a legacy minisign signature were not kept' };
    message = artifact.bytes;
  }
  if (!ed25519Ok(key.publicKey, message, sig.signature)) return { kind: 'bad', detail: `minisign signature by key ${sig.keyId} does not match the file` };
  const global = Buffer.concat([sig.signature, Buffer.from(sig.trustedComment, 'utf8')]);
  if (!ed25519Ok(key.publicKey, global, sig.globalSignature)) return { kind: 'bad', detail: 'minisign trusted comment signature does not verify' };
  return { kind: 'valid', by: key.id, signedFor: signedFileName(sig.trustedComment) };
}

export interface MinisignSecretKey {
  keyNum: Buffer;
  keyId: string;
  privateKey: KeyObject;
}

/**
 * An unencrypted minisign secret key (`minisign -G -W`): alg "Ed", kdf "\0\0",
 * checksum alg "B2", salt(32), opslimit(8), memlimit(8), then key number(8),
 * Ed25519 seed(32) || public key(32), checksum(32). Encrypted keys are refused
 * with how to remove the password; the seed is checked against the embedded
 * public key instead of the checksum.
 */
export function parseMinisignSecretKey(text: string): MinisignSecretKey | string {
  const lines = text.trim().split(/\r?\n/).map((l) => l.trim());
  const line = lines.length === 2 && lines[0]!.startsWith(UNTRUSTED) ? lines[1]! : lines.length === 1 ? lines[0]! : '';
  const raw = decodeBase64Exact(line, 158);
  if (!raw) return 'not a minisign secret key';
  if (raw.subarray(0, 2).toString('latin1') !== 'Ed') return 'unsupported minisign secret key algorithm';
  const kdf = raw.subarray(2, 4);
  if (kdf[0] !== 0 || kdf[1] !== 0) {
    return 'an encrypted minisign secret key: molt signs with unencrypted keys (minisign -G -W, or remove the password with minisign -C -W)';
  }
  const keyNum = Buffer.from(raw.subarray(54, 62));
  const seed = raw.subarray(62, 94);
  const pub = raw.subarray(94, 126);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({
      key: { kty: 'OKP', crv: 'Ed25519', d: Buffer.from(seed).toString('base64url'), x: Buffer.from(pub).toString('base64url') },
      format: 'jwk',
    });
  } catch (err) {
    return `not a minisign secret key (${(err as Error).message})`;
  }
  const derived = createPublicKey(privateKey).export({ format: 'jwk' }).x;
  if (derived !== Buffer.from(pub).toString('base64url')) return 'corrupt minisign secret key (seed and public key differ)';
  return { keyNum, keyId: minisignKeyId(keyNum), privateKey };
}

/** A prehashed minisign signature for `fileName` with the trusted comment `minisign -S` writes. */
export function signMinisign(key: MinisignSecretKey, blake2b512: Uint8Array, fileName: string, unixTime: number): string {
  if (/[\t\r\n]/.test(fileName)) throw new Error(`cannot sign a file name with a tab or newline: ${JSON.stringify(fileName)}`);
  const signature = edSign(null, blake2b512, key.privateKey);
  const trustedComment = `timestamp:${Math.floor(unixTime)}\tfile:${fileName}\thashed`;
  const global = edSign(null, Buffer.concat([signature, Buffer.from(trustedComment, 'utf8')]), key.privateKey);
  const sigLine = Buffer.concat([Buffer.from('ED', 'latin1'), key.keyNum, signature]).toString('base64');
  return `untrusted comment: signature from molt, key ${key.keyId}\n${sigLine}\n${TRUSTED}${trustedComment}\n${global.toString('base64')}\n`;
}
