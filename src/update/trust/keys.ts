// Trusted public keys (MOLT_TRUST_KEYS): minisign public keys (the file
// `minisign -G` writes, or the bare `RW...` string) and PEM SPKI keys (ECDSA
// P-256 or Ed25519, as openssl or `cosign generate-key-pair` write them).
// Parsing is pure; loadTrustKeys() is the one place that reads the files.
import fs from 'node:fs';
import path from 'node:path';
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';

export type TrustKey =
  | { kind: 'minisign'; id: string; keyNum: Buffer; publicKey: KeyObject; source: string }
  | { kind: 'pem'; algorithm: 'ecdsa-p256' | 'ed25519'; id: string; publicKey: KeyObject; source: string };

/** A bad trust setting: one line naming the variable and the file; the caller exits 2. */
export class TrustConfigError extends Error {
  override name = 'TrustConfigError';
}

/**
 * minisign's key number is 8 bytes, shown as a little-endian u64 in uppercase
 * hex; always 16 digits here (minisign drops leading zeros) so ids compare as strings.
 */
export function minisignKeyId(keyNum: Uint8Array): string {
  return Buffer.from(keyNum).reverse().toString('hex').toUpperCase();
}

/** First 16 hex digits of the sha256 of the key's SPKI DER: stable whatever the PEM's line breaks. */
export function pemKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

/** Strict base64 (Buffer.from ignores garbage); undefined when `text` is not base64 of `size` bytes. */
export function decodeBase64Exact(text: string, size: number): Buffer | undefined {
  if (!BASE64_RE.test(text) || text.length % 4 !== 0) return undefined;
  const buf = Buffer.from(text, 'base64');
  return buf.length === size ? buf : undefined;
}

/** A raw 32-byte Ed25519 public key as a KeyObject. */
export function ed25519PublicKey(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

/** "Ed" + key number (8) + Ed25519 public key (32), base64: minisign's public key line. */
function parseMinisignLine(line: string, source: string): TrustKey | string {
  const raw = decodeBase64Exact(line, 42);
  if (!raw) return 'not a minisign public key (want 56 base64 characters starting with RW)';
  if (raw.subarray(0, 2).toString('latin1') !== 'Ed') return 'unsupported minisign key algorithm';
  const keyNum = Buffer.from(raw.subarray(2, 10));
  return { kind: 'minisign', id: minisignKeyId(keyNum), keyNum, publicKey: ed25519PublicKey(raw.subarray(10)), source };
}

function parsePem(text: string, source: string): TrustKey | string {
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: text, format: 'pem' });
  } catch (err) {
    return `not a PEM public key (${(err as Error).message})`;
  }
  const type = publicKey.asymmetricKeyType;
  if (type === 'ed25519') return { kind: 'pem', algorithm: 'ed25519', id: pemKeyId(publicKey), publicKey, source };
  if (type === 'ec') {
    const curve = publicKey.asymmetricKeyDetails?.namedCurve;
    if (curve !== 'prime256v1') return `unsupported EC curve ${curve ?? 'unknown'} (want P-256)`;
    return { kind: 'pem', algorithm: 'ecdsa-p256', id: pemKeyId(publicKey), publicKey, source };
  }
  return `unsupported key type ${type ?? 'unknown'} (want ECDSA P-256, Ed25519 or minisign)`;
}

/**
 * One key file's text to a key, or a reason it is not one. Accepts the file
 * `minisign -G` writes (untrusted comment + key line), a bare key line, or a PEM
 * public key (a private key is refused: it does not belong in the image).
 */
export function parseTrustKey(text: string, source: string): TrustKey | string {
  const trimmed = text.trim();
  if (trimmed.includes('-----BEGIN')) {
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(trimmed)) return 'a private key; trust needs the public key only';
    return parsePem(trimmed, source);
  }
  const lines = trimmed.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  if (lines.length === 2 && lines[0]!.startsWith('untrusted comment:')) return parseMinisignLine(lines[1]!, source);
  if (lines.length === 1) return parseMinisignLine(lines[0]!, source);
  return 'not a minisign or PEM public key';
}

/** Every key in MOLT_TRUST_KEYS: a file, or a directory whose non-hidden files are each one key. */
export function loadTrustKeys(setting: string, varName = 'MOLT_TRUST_KEYS'): TrustKey[] {
  const fail = (file: string, why: string): never => {
    throw new TrustConfigError(`${varName}: ${file}: ${why.replace(/\s+/g, ' ')}`);
  };
  let stat: fs.Stats;
  try {
    stat = fs.statSync(setting);
  } catch (err) {
    return fail(setting, `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  // Hidden entries are skipped: a Kubernetes ConfigMap mount adds ..data links beside the keys.
  const files = stat.isDirectory()
    ? fs.readdirSync(setting).filter((n) => !n.startsWith('.')).sort().map((n) => path.join(setting, n))
    : [setting];
  const keys: TrustKey[] = [];
  for (const file of files) {
    let text: string;
    try {
      if (!fs.statSync(file).isFile()) continue;
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      return fail(file, `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    const key = parseTrustKey(text, file);
    if (typeof key === 'string') return fail(file, key);
    keys.push(key);
  }
  if (keys.length === 0) fail(setting, 'no public keys in this directory');
  return keys;
}
