// HTTP/1.1 response framing for http1.ts, as pure parts: the head parser, body framing (length,
// chunked, close), the chunked decoder, and the reused read slabs a connection reads into.
import type { IncomingHttpHeaders } from 'node:http';

/** Status line and headers together; a registry sends a few hundred bytes. */
export const MAX_HEAD_BYTES = 64 * 1024;
/** A chunk-size line with its extensions, and the trailer section. */
const MAX_CHUNK_LINE = 4096;
const MAX_TRAILER_BYTES = 64 * 1024;
/** Size of one read slab (reads land in its unused tail; see ReadSlabs). */
export const READ_BUFFER_BYTES = 256 * 1024;
/** Body bytes read ahead of the consumer before the socket is paused. */
export const READ_AHEAD_BYTES = 512 * 1024;

/** A malformed response: the caller turns it into a network error naming the request. */
export class HttpFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HttpFormatError';
  }
}

export interface ResponseHead {
  status: number;
  headers: IncomingHttpHeaders;
  /** Bytes of the head, the blank line included. */
  length: number;
}

export const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Duplicates of these keep the first value, as node:http does; content-length is checked apart.
const SINGLE = new Set([
  'age', 'authorization', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer',
  'retry-after', 'server', 'user-agent',
]);

/**
 * The response head at the start of `buf`: undefined while the blank line has not arrived.
 * Throws HttpFormatError for anything but a plain HTTP/1.x head (obsolete line folding, a bad
 * name, conflicting Content-Length values, an oversized head).
 */
export function parseResponseHead(buf: Buffer): ResponseHead | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) {
    if (buf.length > MAX_HEAD_BYTES) throw new HttpFormatError(`response head larger than ${MAX_HEAD_BYTES} bytes`);
    return undefined;
  }
  if (end + 4 > MAX_HEAD_BYTES) throw new HttpFormatError(`response head larger than ${MAX_HEAD_BYTES} bytes`);
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  const m = /^HTTP\/1\.[01] ([1-9][0-9]{2})(?: [^\r\n]*)?$/.exec(lines[0] ?? '');
  if (!m) throw new HttpFormatError(`bad status line ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  const headers: IncomingHttpHeaders = {};
  const h = headers as Record<string, string | string[]>;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!TOKEN_RE.test(name)) throw new HttpFormatError(`bad header line ${JSON.stringify(line.slice(0, 80))}`);
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (/[\0\r\n]/.test(value)) throw new HttpFormatError(`bad header value for ${name}`);
    const key = name.toLowerCase();
    const prev = h[key];
    if (key === 'set-cookie') h[key] = [...((prev as string[] | undefined) ?? []), value];
    else if (prev === undefined) h[key] = value;
    else if (key === 'content-length') {
      if (prev !== value) throw new HttpFormatError('conflicting Content-Length headers');
    } else if (!SINGLE.has(key)) h[key] = `${prev as string}, ${value}`;
  }
  return { status: Number(m[1]), headers, length: end + 4 };
}

export type Framing = { kind: 'none' } | { kind: 'length'; bytes: number } | { kind: 'chunked' } | { kind: 'close' };

/** How the body of this response is delimited (RFC 9112 section 6.3), refusing what molt does not speak. */
export function bodyFraming(method: string, head: ResponseHead): Framing {
  if (method === 'HEAD' || head.status === 204 || head.status === 304 || head.status < 200) return { kind: 'none' };
  const te = head.headers['transfer-encoding'];
  const cl = head.headers['content-length'];
  if (te !== undefined) {
    // A length next to a transfer coding is how responses are smuggled: refuse it.
    if (cl !== undefined) throw new HttpFormatError('both Transfer-Encoding and Content-Length');
    if (te.trim().toLowerCase() !== 'chunked') throw new HttpFormatError(`unsupported Transfer-Encoding ${JSON.stringify(te)}`);
    return { kind: 'chunked' };
  }
  if (cl !== undefined) {
    if (!/^[0-9]{1,16}$/.test(cl) || !Number.isSafeInteger(Number(cl))) throw new HttpFormatError(`bad Content-Length ${JSON.stringify(cl)}`);
    return { kind: 'length', bytes: Number(cl) };
  }
  return { kind: 'close' };
}

/**
 * Decodes `Transfer-Encoding: chunked` in place: data comes out as views of the input, so
 * nothing is copied. Extensions are ignored and trailers skipped, both bounded.
 */
export class ChunkedDecoder {
  private state: 'size' | 'data' | 'data-cr' | 'data-lf' | 'trailer' | 'done' = 'size';
  private line = '';
  private left = 0;
  private trailerBytes = 0;

  get done(): boolean {
    return this.state === 'done';
  }

  /** Feed bytes; `onData` gets each piece of body. Bytes after the last chunk are an error. */
  feed(buf: Buffer, onData: (piece: Buffer) => void): void {
    let i = 0;
    while (i < buf.length) {
      switch (this.state) {
        case 'size':
        case 'trailer': {
          const nl = buf.indexOf(0x0a, i);
          const stop = nl === -1 ? buf.length : nl + 1;
          this.line += buf.toString('latin1', i, stop);
          if (this.state === 'trailer') {
            this.trailerBytes += stop - i;
            if (this.trailerBytes > MAX_TRAILER_BYTES) throw new HttpFormatError('chunked trailer too large');
          } else if (this.line.length > MAX_CHUNK_LINE) throw new HttpFormatError('chunk-size line too long');
          i = stop;
          if (nl === -1) break;
          if (!this.line.endsWith('\r\n')) throw new HttpFormatError('bare LF in chunked framing');
          const line = this.line.slice(0, -2);
          this.line = '';
          if (this.state === 'trailer') {
            if (line === '') this.state = 'done';
            break;
          }
          const m = /^([0-9A-Fa-f]{1,13})[ \t]*(?:;.*)?$/.exec(line);
          if (!m) throw new HttpFormatError(`bad chunk size ${JSON.stringify(line.slice(0, 40))}`);
          this.left = parseInt(m[1]!, 16);
          this.state = this.left === 0 ? 'trailer' : 'data';
          break;
        }
        case 'data': {
          const take = Math.min(this.left, buf.length - i);
          onData(buf.subarray(i, i + take));
          i += take;
          this.left -= take;
          if (this.left === 0) this.state = 'data-cr';
          break;
        }
        case 'data-cr':
        case 'data-lf': {
          const want = this.state === 'data-cr' ? 0x0d : 0x0a;
          if (buf[i] !== want) throw new HttpFormatError('chunk data not followed by CRLF');
          i++;
          this.state = this.state === 'data-cr' ? 'data-lf' : 'size';
          break;
        }
        case 'done':
          throw new HttpFormatError('bytes after the last chunk');
      }
    }
  }
}

/**
 * The read buffers of one connection: slabs filled front to back, each read landing in the
 * unused tail of the current slab (or a fresh slab when the tail is short). A region is
 * never read into twice while any piece of it may be in use: the slab is reused only once
 * every piece cut from it has been used and reads have moved on to another slab. That also
 * covers TLS, which hands over everything it has decrypted even after the socket is paused.
 */
export class ReadSlabs {
  private readonly free: Buffer[] = [];
  /** Pieces in use per slab (keyed by the slab's memory). */
  private readonly held = new Map<ArrayBufferLike, number>();
  private current: Buffer;
  private used = 0;
  private region: Buffer | undefined;

  constructor(
    readonly slabBytes: number,
    /** A tail shorter than this is left unused: small reads cost a round trip each. */
    private readonly minRead: number = Math.min(slabBytes, 64 * 1024),
    private readonly keep: number = 4,
  ) {
    this.current = Buffer.allocUnsafeSlow(slabBytes);
  }

  /** Where the next read goes (Node asks right after each read callback). */
  nextRegion(): Buffer {
    if (this.slabBytes - this.used < this.minRead) {
      const old = this.current;
      this.current = this.free.pop() ?? Buffer.allocUnsafeSlow(this.slabBytes);
      this.used = 0;
      if (!this.held.has(old.buffer)) this.recycle(old);
    }
    this.region = this.current.subarray(this.used);
    return this.region;
  }

  /** `n` bytes were read into `buf`, which must be the region last given out. */
  landed(buf: Buffer, n: number): void {
    if (buf !== this.region || n > buf.length) throw new Error('internal: a read landed outside the region it was given');
    this.region = undefined;
    this.used += n;
  }

  /** True when `piece` is a view of a slab (not a copy of ours). */
  owns(piece: Buffer): boolean {
    return piece.buffer === this.current.buffer;
  }

  /** A piece of the current slab was handed out. */
  hold(piece: Buffer): void {
    this.held.set(piece.buffer, (this.held.get(piece.buffer) ?? 0) + 1);
  }

  /** A piece handed out earlier is used. */
  release(piece: Buffer): void {
    const key = piece.buffer;
    const n = (this.held.get(key) ?? 1) - 1;
    if (n > 0) {
      this.held.set(key, n);
      return;
    }
    this.held.delete(key);
    // The current slab is still being filled: it is recycled when reads move past it.
    if (key !== this.current.buffer) this.recycle(Buffer.from(key));
  }

  /** Slabs waiting for reuse (for tests). */
  get spare(): number {
    return this.free.length;
  }

  private recycle(slab: Buffer): void {
    if (this.free.length < this.keep && !this.free.some((f) => f.buffer === slab.buffer)) this.free.push(slab);
  }
}
