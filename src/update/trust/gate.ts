// The trust check as a source runs it around one artifact: gather the small
// signature files beside it (each bounded), feed the download's chunks to the
// hasher, and before anything is extracted either name what verified it or
// throw a TrustRefusal, which the updater blocks like a hostile archive.
import fs from 'node:fs';
import path from 'node:path';
import { UpdateError } from '../../common/errors.js';
import { fileChunks } from '../chunks.js';
import type { TrustConfig } from './config.js';
import type { TrustReason } from './decide.js';
import { startTrustCheck, type ReleaseSignatures } from './release.js';

/** A signature file, checksum list or bundle larger than this is refused, not read. */
export const SIGNATURE_MAX_BYTES = 1 << 20;

/** The names a signature for `name` is published under, beside it (MOLT_DIR) or as release assets (GitHub). */
export function signatureFileNames(name: string): { minisig: string; sig: string; bundle: string; sums: string; sumsMinisig: string; sumsSig: string } {
  return { minisig: `${name}.minisig`, sig: `${name}.sig`, bundle: `${name}.sigstore.json`, sums: 'SHA256SUMS', sumsMinisig: 'SHA256SUMS.minisig', sumsSig: 'SHA256SUMS.sig' };
}

/**
 * A release refused for its signature: `reason` is one of the closed set (decide.ts), `detail` is for the log.
 * `transient`: the fault is molt's, not the release's (no Sigstore trusted root yet): retried, never blocked.
 */
export class TrustRefusal extends UpdateError {
  constructor(
    readonly reason: TrustReason,
    readonly detail?: string,
    readonly transient = false,
  ) {
    super(transient && detail ? `${reason} (${detail})` : reason, 'untrusted');
    this.name = 'TrustRefusal';
  }
}

/** Why a keyless signature cannot be checked yet: TUF has not answered once and nothing is cached. */
export const NO_TRUSTED_ROOT = 'no Sigstore trusted root: TUF repository unreachable';

/** Keyless trust pinned, but no trusted root to check bundles against yet (tuf.ts sets it). */
export function keylessPending(trust: TrustConfig | undefined): boolean {
  return Boolean(trust?.required && trust.identity && !trust.keyless);
}

/** Before downloading: only a keyless signature could vouch for a release, and none can be checked yet. */
export function refuseWithoutRoot(trust: TrustConfig | undefined): void {
  if (keylessPending(trust) && trust!.keys.length === 0) throw new TrustRefusal('no signature', NO_TRUSTED_ROOT, true);
}

export interface ArtifactGate {
  /**
   * Feed each chunk of the artifact, in order, once. The chunk must stay as it is until this returns or,
   * when it returns a promise, until that settles; the download waits for it before the next chunk.
   */
  onChunk?: (chunk: Uint8Array) => Promise<void> | undefined;
  /** A buffer for a file reader to read the next chunk into (fileChunks' `buffer`): onChunk then copies nothing. */
  readBuffer?: () => Buffer | Promise<Buffer>;
  /**
   * What verified the artifact (null: no trust setting); rejects with a TrustRefusal. Call before extracting,
   * with the digest (sha256:<hex>) the download computed over the same chunks: it is not hashed again.
   * Without needsSha256 the download need not compute one (undefined).
   */
  finish(digest: string | undefined): Promise<string | null>;
  /** Whether finish() needs the artifact's SHA-256: a signature compares it (a signed SHA256SUMS, a Sigstore subject). */
  needsSha256: boolean;
  /** Release what a gate that will not be finished holds (a failed download); idempotent. */
  close(): void;
}

// Nothing is checked: the caller's SHA-256 is its own business (a logged digest, a checksum).
const OPEN: ArtifactGate = { finish: async () => null, close: () => undefined, needsSha256: false };

/**
 * Start the check of `servedAs` (the file name molt is about to install, recorded as `version`).
 * Without a trust setting it is a no-op that lets everything through.
 */
export function trustGate(trust: TrustConfig | undefined, servedAs: string, version: string, signatures: ReleaseSignatures): ArtifactGate {
  if (!trust?.required) return OPEN;
  const check = startTrustCheck(trust, servedAs, signatures, { version, callerHashes: true, offThread: true });
  return {
    needsSha256: check.needsSha256,
    onChunk: (chunk) => check.feed(chunk),
    ...(check.readBuffer ? { readBuffer: check.readBuffer } : {}),
    async finish(digest) {
      const { decision } = await check.finishAsync(digest?.replace(/^sha256:/, '').toLowerCase());
      // Bundles that could not be checked for want of a root may be valid: try again later, do not block.
      if (!decision.ok && decision.reason === 'no signature' && keylessPending(trust) && signatures.bundles?.length) throw new TrustRefusal('no signature', NO_TRUSTED_ROOT, true);
      if (!decision.ok) throw new TrustRefusal(decision.reason, decision.detail);
      return decision.by;
    },
    close: () => check.close(),
  };
}

/** Feed a file already on disk (a cached blob, verified by its digest when stored) through the gate. */
export async function feedFile(gate: ArtifactGate, file: string, signal?: AbortSignal): Promise<void> {
  if (!gate.onChunk) return;
  for await (const chunk of fileChunks(file, { signal, ...(gate.readBuffer ? { buffer: gate.readBuffer } : {}) })) {
    const wait = gate.onChunk(chunk);
    if (wait) await wait;
  }
}

/** A release that cannot carry a signature (a MOLT_DIR directory, a source without signature support) while one is required. */
export function refuseUnsignable(trust: TrustConfig | undefined, why: string): void {
  if (trust?.required) throw new TrustRefusal('no signature', why);
}

/** A bounded signature file: undefined when absent; a TrustRefusal when over SIGNATURE_MAX_BYTES. */
export async function readSignatureFile(file: string): Promise<Uint8Array | undefined> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UpdateError(`cannot read ${file}: ${(err as Error).message}`, 'bad-input');
  }
  try {
    // Not zero-filled (only what was read is kept), and sized to the file when it says it is small.
    const { size } = await fh.stat();
    let buf = Buffer.allocUnsafe(Math.min(size, SIGNATURE_MAX_BYTES) + 1);
    let n = 0;
    for (;;) {
      // A file that grew since fstat: read on into a larger buffer, up to the limit.
      if (n === buf.length) buf = Buffer.concat([buf, Buffer.allocUnsafe(SIGNATURE_MAX_BYTES + 1 - n)]);
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > SIGNATURE_MAX_BYTES) throw new TrustRefusal('bad signature', `${file} is larger than ${SIGNATURE_MAX_BYTES} bytes`);
    }
    return Buffer.from(buf.subarray(0, n));
  } finally {
    await fh.close();
  }
}

/** The signatures for `name` found beside it in `dir` (MOLT_DIR): `<name>.minisig`, `.sig`, `.sigstore.json`, a signed SHA256SUMS. */
export async function localSignatures(dir: string, name: string): Promise<ReleaseSignatures> {
  const n = signatureFileNames(name);
  const read = (f: string) => readSignatureFile(path.join(dir, f));
  const [minisig, sig, bundle, sums, sumsMinisig, sumsSig] = await Promise.all([read(n.minisig), read(n.sig), read(n.bundle), read(n.sums), read(n.sumsMinisig), read(n.sumsSig)]);
  const out: ReleaseSignatures = {};
  if (minisig) out.minisig = minisig;
  if (sig) out.sig = sig;
  if (bundle) out.bundles = [bundle];
  if (sums && (sumsMinisig || sumsSig)) out.sums = { name: n.sums, content: sums, ...(sumsMinisig ? { minisig: sumsMinisig } : {}), ...(sumsSig ? { sig: sumsSig } : {}) };
  return out;
}
