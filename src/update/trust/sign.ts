// `molt sign [--sums] FILE... --key KEY`: sign release files for MOLT_DIR (or
// as release assets) without installing minisign or cosign; --sums writes
// SHA256SUMS for the files and signs that (the way for PEM keys: it names them). An unencrypted
// minisign secret key writes FILE.minisig (prehashed, with the trusted comment
// `minisign -S` writes, so `minisign -V` verifies it); a PEM private key
// (P-256 or Ed25519) writes FILE.sig as cosign does. Each file is read once.
import path from 'node:path';
import fs from 'node:fs';
import { createHash, createSign } from 'node:crypto';
import { writeFileAtomicSync } from '../../common/atomic.js';
import { fileChunks } from '../chunks.js';
import { MAX_RAW_SIGNED_BYTES } from './hasher.js';
import { parseMinisignSecretKey, signMinisign } from './minisign.js';
import { parsePemPrivateKey, signPem } from './pem.js';

export type SigningKey =
  | { kind: 'minisign'; keyId: string; key: Exclude<ReturnType<typeof parseMinisignSecretKey>, string> }
  | { kind: 'pem'; keyId: string; key: Exclude<ReturnType<typeof parsePemPrivateKey>, string> };

/** A secret key file's text to a signing key, or a one-line reason. */
export function parseSigningKey(text: string): SigningKey | string {
  if (text.includes('-----BEGIN')) {
    const pem = parsePemPrivateKey(text);
    return typeof pem === 'string' ? pem : { kind: 'pem', keyId: pem.keyId, key: pem };
  }
  const mini = parseMinisignSecretKey(text);
  return typeof mini === 'string' ? mini : { kind: 'minisign', keyId: mini.keyId, key: mini };
}

/** Sign one file; returns the signature file's path. `now` is unix seconds for the trusted comment. */
export async function signFile(file: string, key: SigningKey, now = Date.now() / 1000): Promise<string> {
  const name = path.basename(file);
  if (key.kind === 'minisign') {
    const blake = createHash('blake2b512');
    for await (const chunk of fileChunks(file)) blake.update(chunk);
    const out = `${file}.minisig`;
    writeFileAtomicSync(out, signMinisign(key.key, blake.digest(), name, now));
    return out;
  }
  let sig: string;
  if (key.key.algorithm === 'ecdsa-p256') {
    const signer = createSign('sha256');
    for await (const chunk of fileChunks(file)) signer.update(chunk);
    sig = signer.sign(key.key.key).toString('base64');
  } else {
    // Ed25519 signs the whole message at once: bounded, like the verifier.
    const size = (await fs.promises.stat(file)).size;
    if (size > MAX_RAW_SIGNED_BYTES) throw new Error(`${name}: Ed25519 signs files up to 64 MiB; sign SHA256SUMS instead`);
    sig = signPem(key.key, await fs.promises.readFile(file));
  }
  const out = `${file}.sig`;
  writeFileAtomicSync(out, sig);
  return out;
}

/**
 * `sha256sum` output for files of one directory, written as `<dir>/SHA256SUMS`:
 * the list names each file, so one signature over it binds every name.
 */
export async function writeSha256Sums(files: string[]): Promise<string> {
  const dirs = new Set(files.map((f) => path.dirname(path.resolve(f))));
  if (dirs.size !== 1) throw new UsageError('--sums: the files must be in one directory (SHA256SUMS names them without a path)');
  const lines: string[] = [];
  for (const file of files) {
    const hash = createHash('sha256');
    for await (const chunk of fileChunks(file)) hash.update(chunk);
    lines.push(`${hash.digest('hex')}  ${path.basename(file)}\n`);
  }
  const out = path.join([...dirs][0]!, 'SHA256SUMS');
  writeFileAtomicSync(out, lines.join(''));
  return out;
}

class UsageError extends Error {}

const USAGE = 'usage: molt sign [--sums] FILE... --key KEY   (KEY: an unencrypted minisign secret key, or a PEM P-256/Ed25519 private key; --sums: write and sign SHA256SUMS for the files instead)';

export async function main(argv: string[]): Promise<number> {
  const files: string[] = [];
  let keyFile: string | undefined;
  let sums = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--sums') sums = true;
    else if (a === '--key') keyFile = argv[++i];
    else if (a.startsWith('--key=')) keyFile = a.slice('--key='.length);
    else if (a === '-h' || a === '--help') {
      process.stdout.write(USAGE + '\n');
      return 0;
    } else if (a.startsWith('-')) {
      process.stderr.write(`molt sign: unknown option ${a}\n${USAGE}\n`);
      return 2;
    } else files.push(a);
  }
  if (!keyFile || files.length === 0) {
    process.stderr.write(`molt sign: ${!keyFile ? '--key KEY is required' : 'no FILE to sign'}\n${USAGE}\n`);
    return 2;
  }
  let keyText: string;
  try {
    keyText = fs.readFileSync(keyFile, 'utf8');
  } catch (err) {
    process.stderr.write(`molt sign: --key ${keyFile}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})\n`);
    return 2;
  }
  const key = parseSigningKey(keyText);
  if (typeof key === 'string') {
    process.stderr.write(`molt sign: --key ${keyFile}: ${key}\n`);
    return 2;
  }
  let targets = files;
  if (sums) {
    try {
      targets = [await writeSha256Sums(files)];
    } catch (err) {
      process.stderr.write(`molt sign: ${(err as Error).message}\n`);
      return err instanceof UsageError ? 2 : 1;
    }
  }
  for (const file of targets) {
    try {
      const out = await signFile(file, key);
      process.stdout.write(`${out} (key ${key.keyId})\n`);
    } catch (err) {
      process.stderr.write(`molt sign: ${file}: ${(err as Error).message}\n`);
      return 1;
    }
  }
  return 0;
}
