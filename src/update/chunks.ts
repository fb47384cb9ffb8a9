// Archive bytes through reused buffers. A fresh Buffer per chunk (fs.ReadStream, a zlib
// stream) is freed only at V8's next young-generation GC, which external memory triggers after
// about 32 MiB of them: extracting a 200 MB release kept that much garbage in RSS. Here the
// file is read into one buffer and inflated into another, so each yielded chunk is a view
// that is valid until the next one is asked for (ByteSource in tarstream.ts and every writer
// in extract.ts use a chunk before they pull the next).
import fs from 'node:fs';
import zlib from 'node:zlib';
import { UpdateError } from './types.js';

export const READ_BYTES = 1024 * 1024;
export const INFLATE_BYTES = 1024 * 1024;

/**
 * The file's bytes as views of one buffer of `bufferBytes`, or, with `buffer`, of the buffer it gives
 * for each read (the signature check's ring: trust/offthread.ts reads there to copy nothing).
 */
export async function* fileChunks(file: string, opts: { bufferBytes?: number; signal?: AbortSignal; buffer?: () => Buffer | Promise<Buffer> } = {}): AsyncGenerator<Buffer> {
  const own = opts.buffer ? undefined : Buffer.allocUnsafe(opts.bufferBytes ?? READ_BYTES);
  const fh = await fs.promises.open(file, 'r');
  try {
    for (;;) {
      if (opts.signal?.aborted) throw new UpdateError(`reading ${file} aborted`, 'aborted');
      const buf = own ?? (await opts.buffer!());
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

/**
 * The synchronous entry point of a zlib stream's native handle, which inflates into a buffer
 * the caller owns. It is what zlib.gunzipSync() drives, but it is not public API: when a Node
 * release lacks it, gunzipChunks() falls back to a zlib stream (same bytes, fresh buffers).
 */
interface ZlibHandle {
  writeSync(flush: number, input: Buffer, inOff: number, inLen: number, out: Buffer, outOff: number, outLen: number): void;
}

function handleOf(z: zlib.Gunzip): { handle: ZlibHandle; state: Uint32Array } | undefined {
  const internals = z as unknown as { _handle?: Partial<ZlibHandle>; _writeState?: unknown };
  const handle = internals._handle;
  const state = internals._writeState;
  if (typeof handle?.writeSync !== 'function' || !(state instanceof Uint32Array) || state.length < 2) return undefined;
  return { handle: handle as ZlibHandle, state };
}

/** Which inflater gunzipChunks() uses on this Node: 'in-place' (no per-chunk Buffers) or 'stream'. */
export function inflaterKind(): 'in-place' | 'stream' {
  const z = zlib.createGunzip();
  try {
    return handleOf(z) ? 'in-place' : 'stream';
  } finally {
    z.close();
  }
}

/**
 * Gunzip `input` (whose chunks may share one buffer) into views of one output buffer. zlib's
 * own checks stand: a bad header, a corrupt block, a wrong CRC or length, or input that ends
 * mid-stream throw zlib's error (code Z_*). Concatenated members are read as one stream, and
 * what follows the end of the gzip data is ignored when it is zero padding, as with zlib.gunzip.
 * Inflating is synchronous, one output buffer (1 MiB) at a time: a few ms of the event loop.
 */
export async function* gunzipChunks(input: AsyncIterable<Buffer>, opts: { bufferBytes?: number; forceStream?: boolean } = {}): AsyncGenerator<Buffer> {
  const outBytes = opts.bufferBytes ?? INFLATE_BYTES;
  // Default chunkSize: the stream's own output buffer goes unused here.
  const z = zlib.createGunzip();
  const native = opts.forceStream ? undefined : handleOf(z);
  if (!native) {
    z.close();
    yield* gunzipStream(input, outBytes);
    return;
  }
  // Errors come back synchronously through z.errored; the 'error' event that follows is noise.
  z.on('error', () => undefined);
  const { handle, state } = native;
  const out = Buffer.allocUnsafe(outBytes);
  // Every writeSync is followed by this check: the handle must never be used once zlib failed.
  const step = (flush: number, chunk: Buffer, off: number, len: number): { produced: number; availIn: number; availOut: number } => {
    handle.writeSync(flush, chunk, off, len, out, 0, out.length);
    if (z.errored) throw z.errored;
    if (z.destroyed) throw new Error('zlib stream closed');
    const availOut = state[0]!;
    return { produced: out.length - availOut, availIn: state[1]!, availOut };
  };
  let ended = false;
  try {
    for await (const chunk of input) {
      let off = 0;
      let len = chunk.length;
      while (len > 0 && !ended) {
        const r = step(zlib.constants.Z_NO_FLUSH, chunk, off, len);
        off += len - r.availIn;
        len = r.availIn;
        if (r.produced > 0) yield out.subarray(0, r.produced);
        // Room left yet input refused: the gzip data ended (zlib stops at zero padding).
        if (r.availOut > 0 && r.availIn > 0) ended = true;
      }
      if (ended) return;
    }
    const empty = Buffer.alloc(0);
    for (;;) {
      // Z_FINISH on a stream that is not complete is zlib's "unexpected end of file".
      const r = step(zlib.constants.Z_FINISH, empty, 0, 0);
      if (r.produced > 0) yield out.subarray(0, r.produced);
      if (r.availOut > 0) return;
    }
  } finally {
    z.close();
  }
}

/** The fallback: a zlib stream fed one chunk at a time, each write awaited so the input buffer can be reused. */
async function* gunzipStream(input: AsyncIterable<Buffer>, outBytes: number): AsyncGenerator<Buffer> {
  const z = zlib.createGunzip({ chunkSize: Math.max(outBytes, zlib.constants.Z_MIN_CHUNK) });
  const feed = (async () => {
    for await (const chunk of input) {
      if (z.destroyed) return;
      // zlib fails a stream by destroying it, without calling back the write in progress.
      await new Promise<void>((resolve, reject) => {
        const onClose = () => reject(new Error('gunzip closed'));
        z.once('close', onClose);
        z.write(chunk, (err) => {
          z.off('close', onClose);
          if (err) reject(err);
          else resolve();
        });
      });
    }
    z.end();
  })().catch((err: unknown) => z.destroy(err as Error));
  try {
    for await (const c of z as AsyncIterable<Buffer>) yield c;
  } finally {
    z.destroy();
    await feed;
  }
}
