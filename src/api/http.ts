// Small HTTP helpers of the API: bounded bodies, JSON answers, one-line errors.
import type { IncomingMessage, ServerResponse } from 'node:http';

/** An answer that ends a request early: status and a one-line message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export const BODY_LIMIT = 64 * 1024;

/** Read the body, refusing more than `limit` bytes with 413 (from Content-Length before
 *  reading anything, or as soon as a chunked body passes the limit). */
export function readBody(req: IncomingMessage, limit = BODY_LIMIT): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    return Promise.reject(new ApiError(413, `request body larger than ${limit} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        req.pause();
        reject(new ApiError(413, `request body larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => {
      if (done) return;
      done = true;
      resolve(Buffer.concat(chunks));
    });
    req.once('error', (err) => {
      if (done) return;
      done = true;
      reject(new ApiError(400, `request body unreadable: ${err.message}`));
    });
  });
}

const COMMON_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
};

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, {
    ...COMMON_HEADERS,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, contentType: string, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    ...COMMON_HEADERS,
    'content-type': contentType,
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

/** `{ "error": "one line" }`: messages are made single-line and bounded. */
export function sendError(res: ServerResponse, status: number, message: string, extra?: Record<string, unknown>, headers: Record<string, string> = {}): void {
  const line = message.replace(/[\r\n]+/g, ' ').slice(0, 500);
  sendJson(res, status, { error: line, ...extra }, headers);
}
