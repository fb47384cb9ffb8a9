// Everything signature checks need from an artifact, computed while it streams
// in: the download loop feeds each chunk once (synchronously: the chunk's
// buffer may be reused after the call returns), so a 200 MB blob is read once.
// Only what the release's signatures need is computed: BLAKE2b-512 for
// minisign's default (prehashed) signatures, a streaming ECDSA verifier per
// trusted P-256 key for a PEM signature over the artifact itself, and the
// bytes themselves (bounded) for signatures over the raw message (minisign
// legacy, Ed25519 PEM) which node:crypto cannot verify in a stream.
import { createHash, createVerify, type Hash, type KeyObject, type Verify } from 'node:crypto';

/** Raw-message signatures (minisign legacy, Ed25519) over more than this are refused, not buffered. */
export const MAX_RAW_SIGNED_BYTES = 64 * 1024 * 1024;

export interface HasherNeeds {
  /**
   * false: the caller hashes the stream with SHA-256 already (downloadVerified
   * does) and hands the digest to finish(); the bytes are not hashed twice.
   */
  sha256?: boolean;
  blake2b512?: boolean;
  /** Keep the bytes (up to MAX_RAW_SIGNED_BYTES) for a raw-message signature. */
  bytes?: boolean;
  /** (key, DER signature) pairs to verify as ECDSA-SHA256 over the stream. */
  ecdsa?: Array<{ key: KeyObject; signature: Buffer }>;
}

export interface ArtifactDigests {
  size: number;
  /** lowercase hex; absent when no signature of the release needed it and the caller did not hash (hashedBy: 'none'). */
  sha256?: string;
  blake2b512?: Buffer;
  /** The bytes, or 'too-big' when they were needed but exceeded MAX_RAW_SIGNED_BYTES. */
  bytes?: Buffer | 'too-big';
  /** Outcome per `needs.ecdsa` entry, same order. */
  ecdsa: boolean[];
}

export class TrustHasher {
  private readonly sha256?: Hash;
  private readonly blake?: Hash;
  private readonly verifiers: Array<{ verify: Verify; key: KeyObject; signature: Buffer }>;
  private chunks?: Buffer[];
  private size = 0;
  private tooBig = false;
  private finished = false;

  constructor(needs: HasherNeeds = {}, private readonly maxRawBytes = MAX_RAW_SIGNED_BYTES) {
    if (needs.sha256 !== false) this.sha256 = createHash('sha256');
    if (needs.blake2b512) this.blake = createHash('blake2b512');
    if (needs.bytes) this.chunks = [];
    this.verifiers = (needs.ecdsa ?? []).map(({ key, signature }) => ({ verify: createVerify('sha256'), key, signature }));
  }

  update(chunk: Uint8Array): void {
    if (this.finished) throw new Error('TrustHasher: update after finish');
    this.size += chunk.length;
    this.sha256?.update(chunk);
    this.blake?.update(chunk);
    for (const v of this.verifiers) v.verify.update(chunk);
    if (this.chunks && !this.tooBig) {
      if (this.size > this.maxRawBytes) {
        this.tooBig = true;
        this.chunks = [];
      } else {
        this.chunks.push(Buffer.from(chunk)); // a copy: the caller may reuse its buffer
      }
    }
  }

  /**
   * `sha256`: the stream's digest (lowercase hex) as the caller computed it, when the hasher was told not
   * to; undefined when nothing needs it (a check whose needsSha256 is false).
   */
  finish(sha256?: string): ArtifactDigests {
    if (this.finished) throw new Error('TrustHasher: finish called twice');
    this.finished = true;
    const hex = this.sha256 ? this.sha256.digest('hex') : sha256;
    if (hex !== undefined && !/^[0-9a-f]{64}$/.test(hex)) throw new Error(`internal: not a sha256 digest: ${hex}`);
    const out: ArtifactDigests = {
      size: this.size,
      ...(hex !== undefined ? { sha256: hex } : {}),
      ecdsa: this.verifiers.map((v) => {
        try {
          return v.verify.verify(v.key, v.signature);
        } catch {
          return false; // malformed DER: a bad signature, not a crash
        }
      }),
    };
    if (this.blake) out.blake2b512 = this.blake.digest();
    if (this.chunks) out.bytes = this.tooBig ? 'too-big' : Buffer.concat(this.chunks);
    return out;
  }
}

/** The digests of a small in-memory document (a signature's subject such as SHA256SUMS). */
export function digestsOf(bytes: Uint8Array, needs: HasherNeeds = {}): ArtifactDigests {
  const h = new TrustHasher({ ...needs, blake2b512: true, bytes: true });
  h.update(bytes);
  return h.finish();
}
