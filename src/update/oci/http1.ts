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

import {
  ChunkedDecoder,
  HttpFormatError,
  READ_AHEAD_BYTES,
  READ_BUFFER_BYTES,
  ReadSlabs,
  TOKEN_RE,
  bodyFraming,
  parseResponseHead,
  type Framing,
} from './http1-frame.js';

export { ChunkedDecoder, HttpFormatError, MAX_HEAD_BYTES, READ_AHEAD_BYTES, READ_BUFFER_BYTES, ReadSlabs, bodyFraming, parseResponseHead, type Framing, type ResponseHead } from './http1-frame.js';

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
