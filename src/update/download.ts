// Verified streaming downloads: bytes go to `<dest>.part` while they are hashed,
// and reach `dest` only after digest and size match and the file is fsynced.
// One chunk is in memory at a time, whatever the artifact size, and a chunk is hashed and
// written before the next is asked for, so a body may hand out views of reused buffers
// (the OCI client's blob bodies do: oci/http1.ts).
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { fsyncDir } from '../common/atomic.js';
import { fileChunks } from './chunks.js';
import { UpdateError } from './types.js';

export interface DownloadOptions {
  /** e.g. a fetch() Response.body via Readable.fromWeb, or an http.IncomingMessage. */
  body: AsyncIterable<Uint8Array> | NodeJS.ReadableStream;
  /** Final path of the file; written via dest + '.part', fsynced, renamed only when verified. */
  dest: string;
  /** 'sha256:<hex>'; a mismatch is UpdateError(..., 'integrity') and the partial file is removed. */
  expectedDigest?: string;
  /** A different byte count is UpdateError(..., 'integrity') (truncated or padded body). */
  expectedSize?: number;
  /** Abort with UpdateError(..., 'hostile-archive') past this many bytes. */
  maxBytes?: number;
  signal?: AbortSignal;
  onProgress?: (p: { bytes: number; total?: number }) => void;
  /**
   * Each chunk right after it is hashed (the signature check's hasher), which must be done with the
   * buffer when it returns or, when it returns a promise, when that settles: the promise is awaited
   * before the next chunk is asked for (the buffer may be reused then).
   */
  onChunk?: (chunk: Uint8Array) => Promise<void> | undefined | void;
  /**
   * false: no SHA-256 of the bytes (digest undefined), when nothing would compare it: the signature
   * check's own digest (minisign's BLAKE2b-512, via onChunk) is then the only one computed.
   */
  sha256?: false;
}

const DIGEST_RE = /^sha256:([0-9a-f]{64})$/;

/** Parse 'sha256:<hex>' (hex case-insensitive) to lowercase hex, or throw 'bad-input'. */
export function parseDigest(digest: string): string {
  const m = DIGEST_RE.exec(digest.trim().toLowerCase());
  if (!m || !m[1]) throw new UpdateError(`unsupported digest ${JSON.stringify(digest)} (want sha256:<64 hex>)`, 'bad-input');
  return m[1];
}

/** Node's errno codes that mean "no room left" on the target file system. */
export function isNoSpace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

function abortError(signal: AbortSignal | undefined, what: string): UpdateError {
  const reason = signal?.reason;
  const why = reason instanceof Error ? reason.message : reason !== undefined ? String(reason) : 'aborted';
  return new UpdateError(`${what} aborted: ${why}`, 'aborted');
}

/**
 * Pull the next chunk, giving up as soon as the signal fires: a stalled body
 * would otherwise hold the await forever.
 */
function nextOrAbort<T>(it: AsyncIterator<T>, signal: AbortSignal | undefined): Promise<IteratorResult<T>> {
  if (!signal) return it.next();
  if (signal.aborted) return Promise.reject(signal.reason ?? new Error('aborted'));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason ?? new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    it.next().then(
      (r) => {
        signal.removeEventListener('abort', onAbort);
        resolve(r);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function releaseBody(body: DownloadOptions['body'], it: AsyncIterator<unknown> | undefined): void {
  const d = (body as { destroy?: (e?: Error) => void }).destroy;
  if (typeof d === 'function') {
    try {
      d.call(body);
    } catch {
      // Already destroyed.
    }
  }
  // A generator that is still suspended is finished; a pending next() is left to the GC.
  it?.return?.().catch(() => undefined);
}

/**
 * Stream `body` to `dest` through sha256, verifying digest and size before the
 * rename. Any failure removes `<dest>.part`; an existing `dest` is replaced only
 * by a verified file.
 */
export async function downloadVerified(opts: DownloadOptions & { sha256?: undefined }): Promise<{ digest: string; size: number }>;
export async function downloadVerified(opts: DownloadOptions): Promise<{ digest: string | undefined; size: number }>;
export async function downloadVerified(opts: DownloadOptions): Promise<{ digest: string | undefined; size: number }> {
  const { body, dest, signal, onProgress } = opts;
  const wantHex = opts.expectedDigest !== undefined ? parseDigest(opts.expectedDigest) : undefined;
  if (opts.sha256 === false && wantHex !== undefined) throw new Error('internal: an expected digest needs the download\'s sha256');
  const total = opts.expectedSize;
  if (total !== undefined && (!Number.isSafeInteger(total) || total < 0)) {
    throw new UpdateError(`bad expected size ${total} for ${dest}`, 'bad-input');
  }
  if (signal?.aborted) throw abortError(signal, `download of ${path.basename(dest)}`);

  const part = dest + '.part';
  // 'w' truncates a stale .part from an interrupted run: restart cleanly.
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(part, 'w', 0o644);
  } catch (err) {
    releaseBody(body, undefined);
    if (isNoSpace(err)) throw new UpdateError(`disk full creating ${part}`, 'disk-full');
    throw new UpdateError(`cannot create ${part}: ${(err as Error).message}`, 'bad-input');
  }
  const hash = opts.sha256 === false ? undefined : createHash('sha256');
  let bytes = 0;
  let it: AsyncIterator<Uint8Array> | undefined;
  let closed = false;
  try {
    it = (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    for (;;) {
      let r: IteratorResult<Uint8Array>;
      try {
        r = await nextOrAbort(it, signal);
      } catch (err) {
        if (signal?.aborted) throw abortError(signal, `download of ${path.basename(dest)}`);
        throw new UpdateError(`download of ${path.basename(dest)} interrupted after ${bytes} bytes: ${(err as Error).message}`, 'network');
      }
      if (r.done) break;
      const chunk = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
      bytes += chunk.length;
      if (total !== undefined && bytes > total) {
        throw new UpdateError(`download of ${path.basename(dest)} is longer than the expected ${total} bytes`, 'integrity');
      }
      // The release's own size, not a fault of the way: the same refusal as an archive over its limits.
      if (opts.maxBytes !== undefined && bytes > opts.maxBytes) {
        throw new UpdateError(`download of ${path.basename(dest)} exceeds the limit of ${opts.maxBytes} bytes`, 'hostile-archive');
      }
      hash?.update(chunk);
      const wait = opts.onChunk?.(chunk);
      let off = 0;
      while (off < chunk.length) {
        const { bytesWritten } = await fh.write(chunk, off, chunk.length - off);
        off += bytesWritten;
      }
      onProgress?.({ bytes, total });
      // The check's other thread is behind: let it catch up (the write above already went out).
      if (wait) await wait;
    }
    if (signal?.aborted) throw abortError(signal, `download of ${path.basename(dest)}`);
    if (total !== undefined && bytes !== total) {
      throw new UpdateError(`download of ${path.basename(dest)} truncated: got ${bytes} of ${total} bytes`, 'integrity');
    }
    const hex = hash?.digest('hex');
    if (wantHex !== undefined && hex !== wantHex) {
      throw new UpdateError(`digest mismatch for ${path.basename(dest)}: expected sha256:${wantHex}, got sha256:${hex}`, 'integrity');
    }
    await fh.sync();
    closed = true;
    await fh.close();
    await fs.promises.rename(part, dest);
    fsyncDir(path.dirname(dest));
    return { digest: hex !== undefined ? `sha256:${hex}` : undefined, size: bytes };
  } catch (err) {
    releaseBody(body, it);
    if (!closed) await fh.close().catch(() => undefined);
    await fs.promises.rm(part, { force: true }).catch(() => undefined);
    if (err instanceof UpdateError) throw err;
    if (isNoSpace(err)) {
      throw new UpdateError(`disk full writing ${dest} after ${bytes} bytes (${(err as NodeJS.ErrnoException).code})`, 'disk-full');
    }
    throw new UpdateError(`cannot write ${dest}: ${(err as Error).message}`, 'bad-input');
  }
}

/** Free bytes for an unprivileged writer on the file system holding `dir` (or its nearest existing ancestor). */
export async function freeSpace(dir: string): Promise<number> {
  let p = path.resolve(dir);
  for (;;) {
    try {
      const s = await fs.promises.statfs(p);
      return s.bavail * s.bsize;
    } catch (err) {
      const parent = path.dirname(p);
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === p) throw err;
      p = parent;
    }
  }
}

/** Refuse early, before a byte is downloaded, when `dir` cannot hold `needBytes` more. */
export async function ensureFreeSpace(dir: string, needBytes: number): Promise<void> {
  const free = await freeSpace(dir);
  if (free < needBytes) {
    throw new UpdateError(`not enough free space in ${dir}: need ${needBytes} bytes, ${free} free`, 'disk-full');
  }
}

/** sha256:<hex> of a file's content, read through one reused buffer (no garbage per chunk). */
export async function sha256File(file: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fileChunks(file, { signal })) hash.update(chunk);
  return `sha256:${hash.digest('hex')}`;
}
