// Blob bodies through reused buffers. node:http copies every piece of a response body into a
// fresh Buffer (thousands for a 200 MB blob) and V8 gives that memory back only at its next
// young-generation GC, which external memory triggers after about 32 MiB: that garbage was
// most of molt's peak RSS while downloading. Here the socket reads straight into a few reused
// buffers (net/tls `onread`), the response is framed in place, and the socket is paused until
// the consumer has used the bytes: a body chunk is valid until the next one is asked for.
// One request per connection (Connection: close); GET and HEAD without a request body.
import net from 'node:net';
import tls from 'node:tls';
import type { IncomingHttpHeaders } from 'node:http';
import { UpdateError } from '../types.js';

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

const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
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

/** The parts of a response body the registry client uses; an http.IncomingMessage has them too. */
export interface ResponseBody extends AsyncIterable<Buffer> {
  readonly readableEnded: boolean;
  destroy(err?: Error): void;
  /** Let the rest of the body go (here: close the connection, which is never reused). */
  resume(): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

export interface Http1Request {
  method: 'GET' | 'HEAD';
  url: URL;
  headers: Record<string, string>;
  signal?: AbortSignal;
  /** Deadline for the response head. */
  timeoutMs: number;
  /** Longest silence on the socket. */
  idleMs: number;
  /** Size of a read slab (tests use small ones to split the framing). */
  bufferBytes?: number;
  /** Trust only these CAs (tests); otherwise Node's store and NODE_EXTRA_CA_CERTS, as for node:https. */
  ca?: string | Buffer;
}

export interface Http1Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: ResponseBody;
}

function describe(req: Http1Request): string {
  return `${req.method} ${req.url.origin}${req.url.pathname}`;
}

/** The request bytes; names and values that could split the head are refused. */
export function requestHead(req: Pick<Http1Request, 'method' | 'url' | 'headers'>): string {
  const lines = [`${req.method} ${req.url.pathname}${req.url.search} HTTP/1.1`, `host: ${req.url.host}`];
  const seen = new Set(['host', 'connection']);
  for (const [name, value] of Object.entries(req.headers)) {
    if (!TOKEN_RE.test(name) || /[\0\r\n]/.test(value)) throw new UpdateError(`${req.method} ${req.url.origin}${req.url.pathname}: refusing header ${JSON.stringify(name)}`, 'bad-input');
    if (seen.has(name.toLowerCase())) continue;
    seen.add(name.toLowerCase());
    lines.push(`${name}: ${value}`);
  }
  lines.push('connection: close', '', '');
  return lines.join('\r\n');
}

/**
 * Send one request on a new connection; resolve at the final response head. Faults are
 * UpdateError('network') naming the request, as with node:http in http.ts.
 */
export function sendHttp1(req: Http1Request): Promise<Http1Response> {
  return new Promise<Http1Response>((resolve, reject) => {
    const what = describe(req);
    if (req.signal?.aborted) {
      reject(new UpdateError(`${what}: aborted`, 'aborted'));
      return;
    }
    let head: string;
    try {
      head = requestHead(req);
    } catch (err) {
      reject(err);
      return;
    }
    const slabBytes = req.bufferBytes ?? READ_BUFFER_BYTES;
    const readAhead = Math.max(READ_AHEAD_BYTES, 2 * slabBytes);
    // Enough spare slabs for the read-ahead, the one being filled and the one lent out.
    const slabs = new ReadSlabs(slabBytes, Math.min(slabBytes, 64 * 1024), Math.ceil(readAhead / slabBytes) + 3);
    const https = req.url.protocol === 'https:';
    const host = req.url.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = Number(req.url.port) || (https ? 443 : 80);

    // Head bytes are copied (they are few); body bytes are handed out as views of the read buffers.
    let headBuf: Buffer | undefined = Buffer.alloc(0);
    let framing: Framing | undefined;
    let chunked: ChunkedDecoder | undefined;
    let left = 0;
    let settled = false;
    let ended = false;
    let fault: Error | undefined;
    // Pieces not yet handed out (views of a slab, or of our copy of the head), and their bytes.
    const pending: { piece: Buffer; held: boolean }[] = [];
    let pendingBytes = 0;
    let paused = false;
    // The piece the consumer has now: its bytes may be overwritten once it asks for the next.
    let lent: Buffer | undefined;
    let waiter: { resolve: (r: IteratorResult<Buffer>) => void; reject: (e: Error) => void } | undefined;
    const errorListeners: ((err: Error) => void)[] = [];

    const lend = (): Buffer => {
      const p = pending.shift()!;
      pendingBytes -= p.piece.length;
      lent = p.held ? p.piece : undefined;
      return p.piece;
    };
    const giveBack = () => {
      if (lent) slabs.release(lent);
      lent = undefined;
    };
    const wake = () => {
      if (!waiter) return;
      const w = waiter;
      if (pending.length > 0) {
        waiter = undefined;
        w.resolve({ value: lend(), done: false });
      } else if (fault) {
        waiter = undefined;
        w.reject(fault);
      } else if (ended) {
        waiter = undefined;
        w.resolve({ value: undefined, done: true });
      }
    };
    const fail = (err: Error) => {
      if (fault || ended) return;
      fault = err;
      pending.length = 0;
      clearTimeout(deadline);
      req.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (!settled) {
        settled = true;
        reject(err);
        return;
      }
      for (const l of errorListeners) l(err);
      wake();
    };
    const finish = () => {
      if (ended || fault) return;
      ended = true;
      req.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      wake();
    };
    const netError = (msg: string) => new UpdateError(`${what}: ${msg}`, 'network');

    const body: ResponseBody = {
      get readableEnded() {
        return ended && pending.length === 0;
      },
      destroy(err?: Error) {
        fail(err ?? new UpdateError(`${what}: body abandoned`, 'aborted'));
      },
      resume() {
        // Nothing more is wanted and the connection is not reused.
        if (!ended && !fault) fail(new UpdateError(`${what}: body discarded`, 'aborted'));
      },
      on(event: 'error', listener: (err: Error) => void) {
        if (event === 'error') errorListeners.push(listener);
        return body;
      },
      [Symbol.asyncIterator](): AsyncIterator<Buffer> {
        return {
          next: () => {
            if (waiter) return Promise.reject(new Error('concurrent next() on a response body'));
            // Asking for more means the last piece is used: its bytes may take a read again.
            giveBack();
            if (paused && pendingBytes < readAhead && !socket.destroyed) {
              paused = false;
              socket.resume();
            }
            if (pending.length > 0) return Promise.resolve({ value: lend(), done: false });
            if (fault) return Promise.reject(fault);
            if (ended) return Promise.resolve({ value: undefined, done: true });
            return new Promise<IteratorResult<Buffer>>((res, rej) => {
              waiter = { resolve: res, reject: rej };
            });
          },
          return: () => {
            if (!ended && !fault) fail(new UpdateError(`${what}: body abandoned`, 'aborted'));
            return Promise.resolve({ value: undefined, done: true });
          },
        };
      },
    };

    const onBody = (piece: Buffer) => {
      if (piece.length === 0) return;
      const held = slabs.owns(piece);
      if (held) slabs.hold(piece);
      pending.push({ piece, held });
      pendingBytes += piece.length;
    };
    const takeBody = (data: Buffer) => {
      if (!framing || framing.kind === 'none') {
        if (data.length > 0) throw new HttpFormatError('bytes after a response without a body');
        return;
      }
      if (framing.kind === 'chunked') {
        chunked!.feed(data, onBody);
        if (chunked!.done) finish();
      } else if (framing.kind === 'length') {
        if (data.length > left) throw new HttpFormatError(`more than the ${framing.bytes} bytes of Content-Length`);
        left -= data.length;
        onBody(data);
        if (left === 0) finish();
      } else onBody(data);
    };
    /** Parse what arrived before the final response head; returns the body bytes that followed it, if any. */
    const takeHead = (data: Buffer): Buffer | undefined => {
      while (headBuf !== undefined) {
        headBuf = Buffer.concat([headBuf, data]);
        const h = parseResponseHead(headBuf);
        if (!h) return undefined;
        // The rest lives in the head's own copy, not in a read slab.
        data = headBuf.subarray(h.length);
        if (h.status < 200) {
          // An interim answer (100, 103): the real one follows.
          headBuf = Buffer.alloc(0);
          continue;
        }
        headBuf = undefined;
        clearTimeout(deadline);
        framing = bodyFraming(req.method, h);
        if (framing.kind === 'chunked') chunked = new ChunkedDecoder();
        if (framing.kind === 'length') left = framing.bytes;
        if (framing.kind === 'none' || (framing.kind === 'length' && left === 0)) finish();
        settled = true;
        resolve({ status: h.status, headers: h.headers, body });
      }
      return data;
    };
    const onRead = (n: number, buf: Buffer): boolean => {
      if (fault || ended) return false;
      try {
        slabs.landed(buf, n);
        const data = headBuf !== undefined ? takeHead(buf.subarray(0, n)) : buf.subarray(0, n);
        if (data !== undefined && !ended) takeBody(data);
      } catch (err) {
        fail(netError(err instanceof HttpFormatError ? `malformed response: ${err.message}` : (err as Error).message));
        return false;
      }
      wake();
      // Read ahead of the consumer up to a bound; past it, wait until it has used some.
      paused = pendingBytes >= readAhead && !ended;
      return !paused && !ended;
    };

    let deadline: NodeJS.Timeout | undefined;
    // A function: Node asks it where the next read goes right after each callback.
    const onread = { buffer: () => slabs.nextRegion(), callback: onRead };
    const socket: net.Socket = https
      ? // tls.connect takes onread too (Node docs); @types/node leaves it out of ConnectionOptions.
        tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'], ...(req.ca ? { ca: req.ca } : {}), onread } as tls.ConnectionOptions)
      : net.connect({ host, port, onread });
    deadline = setTimeout(() => fail(netError(`no response within ${Math.round(req.timeoutMs / 1000)}s`)), req.timeoutMs);
    const onAbort = () => fail(new UpdateError(`${what}: aborted`, 'aborted'));
    req.signal?.addEventListener('abort', onAbort, { once: true });
    socket.setTimeout(req.idleMs, () => fail(netError(`connection idle for ${Math.round(req.idleMs / 1000)}s`)));
    socket.on('error', (err: NodeJS.ErrnoException) => fail(netError(err.code ?? err.message)));
    const onEnd = () => {
      if (ended || fault) return;
      if (headBuf !== undefined) fail(netError('connection closed before a response'));
      else if (framing?.kind === 'close') finish();
      else fail(netError('connection closed mid-body'));
    };
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    // Flowing, so that 'end' is seen; the data itself only ever goes through onRead.
    socket.resume();
    socket.write(head, 'latin1');
  });
}
