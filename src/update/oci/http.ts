// A small HTTP layer on node:http(s) for the registry client: exact bytes (no transparent
// decompression that would break digest checks), a deadline for the response headers, an idle
// timeout while a body streams (a 200 MB blob has no total deadline, a stalled one ends),
// manual redirects so that credentials never follow to another origin, and retry timing.
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { UpdateError } from '../types.js';
import { sendHttp1, type ResponseBody } from './http1.js';

export type { ResponseBody } from './http1.js';

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: URL;
  headers?: Record<string, string>;
  /** A Buffer, or a factory so a retry can send the body again. */
  body?: Buffer | (() => Readable);
  signal?: AbortSignal;
  /** Deadline for the response headers (AbortSignal.timeout). */
  timeoutMs: number;
  /** Longest silence on the socket, headers or body. */
  idleMs: number;
  /**
   * For large bodies (blobs): read the response through reused buffers on a connection of its
   * own (http1.ts), so a body chunk is valid only until the next one is asked for. GET/HEAD only.
   */
  reuseBuffer?: boolean;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  url: URL;
  body: ResponseBody;
}

const agentOpts = { keepAlive: true, maxSockets: 8 };
const httpAgent = new http.Agent(agentOpts);
const httpsAgent = new https.Agent(agentOpts);

function describe(req: HttpRequest): string {
  return `${req.method} ${req.url.origin}${req.url.pathname}`;
}

/** Send one request; resolve at the response headers. Network faults become UpdateError('network'). */
export function send(req: HttpRequest): Promise<HttpResponse> {
  if (req.reuseBuffer && req.body === undefined && (req.method === 'GET' || req.method === 'HEAD')) {
    const { method, url, signal, timeoutMs, idleMs } = req;
    return sendHttp1({ method, url, headers: { 'user-agent': 'molt', ...req.headers }, signal, timeoutMs, idleMs }).then((r) => ({ ...r, url }));
  }
  return new Promise<HttpResponse>((resolve, reject) => {
    if (req.signal?.aborted) {
      reject(new UpdateError(`${describe(req)}: aborted`, 'aborted'));
      return;
    }
    const mod = req.url.protocol === 'https:' ? https : http;
    const deadline = AbortSignal.timeout(req.timeoutMs);
    let settled = false;
    let fault: UpdateError | undefined;
    const headers: Record<string, string> = { 'user-agent': 'molt', ...req.headers };
    if (Buffer.isBuffer(req.body)) headers['content-length'] = String(req.body.length);
    const r = mod.request(req.url, { method: req.method, headers, agent: req.url.protocol === 'https:' ? httpsAgent : httpAgent });
    let response: http.IncomingMessage | undefined;
    const fail = (e: UpdateError) => {
      fault ??= e;
      // A body being read must end with this reason, not a bare "aborted".
      response?.destroy(fault);
      r.destroy(fault);
      if (!settled) {
        settled = true;
        cleanup();
        reject(fault);
      }
    };
    const onDeadline = () => fail(new UpdateError(`${describe(req)}: no response within ${Math.round(req.timeoutMs / 1000)}s`, 'network'));
    const onAbort = () => fail(new UpdateError(`${describe(req)}: aborted`, 'aborted'));
    const cleanup = () => deadline.removeEventListener('abort', onDeadline);
    deadline.addEventListener('abort', onDeadline, { once: true });
    req.signal?.addEventListener('abort', onAbort, { once: true });
    r.setTimeout(req.idleMs, () => fail(new UpdateError(`${describe(req)}: connection idle for ${Math.round(req.idleMs / 1000)}s`, 'network')));
    r.on('error', (err: Error) => {
      const e = err instanceof UpdateError ? err : new UpdateError(`${describe(req)}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, 'network');
      if (!settled) {
        settled = true;
        cleanup();
        req.signal?.removeEventListener('abort', onAbort);
        reject(e);
      }
    });
    r.on('response', (res) => {
      response = res;
      cleanup();
      res.on('close', () => req.signal?.removeEventListener('abort', onAbort));
      // A body that stops early or a socket reset surfaces as a stream error naming the request.
      res.on('aborted', () => res.destroy(fault ?? new UpdateError(`${describe(req)}: connection closed mid-body`, 'network')));
      if (settled) {
        res.destroy();
        return;
      }
      settled = true;
      resolve({ status: res.statusCode ?? 0, headers: res.headers, url: req.url, body: res });
    });
    if (req.body === undefined) r.end();
    else if (Buffer.isBuffer(req.body)) r.end(req.body);
    else {
      const src = req.body();
      src.on('error', (err) => fail(new UpdateError(`${describe(req)}: reading upload: ${err.message}`, 'network')));
      src.pipe(r);
    }
  });
}

/** Read a whole (small) body, refusing more than `limit` bytes. */
export async function readBody(res: HttpResponse, limit: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    res.body.destroy();
    throw new UpdateError(`${what}: ${declared} bytes is more than the ${limit} allowed`, 'bad-input');
  }
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of res.body as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > limit) {
        res.body.destroy();
        throw new UpdateError(`${what}: more than the ${limit} bytes allowed`, 'bad-input');
      }
      // A copy: a body read through reused buffers (reuseBuffer) overwrites its chunks later.
      chunks.push(Buffer.from(c));
    }
  } catch (err) {
    if (err instanceof UpdateError) throw err;
    throw new UpdateError(`${what}: ${(err as Error).message}`, 'network');
  }
  const buf = Buffer.concat(chunks);
  if (Number.isFinite(declared) && res.headers['content-length'] !== undefined && buf.length !== declared) {
    throw new UpdateError(`${what}: body truncated at ${buf.length} of ${declared} bytes`, 'network');
  }
  return buf;
}

/** Discard a body we do not need, so the socket goes back to the pool (or is closed). */
export function discard(res: HttpResponse): void {
  res.body.on('error', () => {});
  res.body.resume();
}

export function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - nowMs);
}

/**
 * Delay before retry number `attempt` (0-based): the server's Retry-After when given, else
 * exponential backoff with "equal jitter" (half fixed, half random) so that many hosts
 * polling one registry do not retry in lock-step.
 */
export function retryDelayMs(attempt: number, retryAfterMs: number | undefined, opts: { baseMs: number; maxMs: number }, rand: number): number {
  if (retryAfterMs !== undefined) return retryAfterMs;
  const d = Math.min(opts.maxMs, opts.baseMs * 2 ** attempt);
  return Math.round(d / 2 + rand * (d / 2));
}

/** The `rel="next"` target of a Link header (RFC 8288), resolved against the request URL. */
export function parseLinkNext(value: string | undefined, base: URL): URL | undefined {
  if (!value) return undefined;
  for (const part of value.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>\s*(.*)$/.exec(part);
    if (!m) continue;
    const rel = /(?:^|;)\s*rel\s*=\s*"?([^";]*)"?/i.exec(m[2]!);
    if (rel && rel[1]!.split(/\s+/).includes('next')) {
      try {
        return new URL(m[1]!, base);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new UpdateError('aborted while waiting to retry', 'aborted'));
      return;
    }
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new UpdateError('aborted while waiting to retry', 'aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
