// The OCI client's error vocabulary: an UpdateError carrying the HTTP status, the registry's own
// error text for messages, which failures are worth trying again, and the digest of bytes.
import crypto from 'node:crypto';
import { UpdateError } from '../types.js';

export function sha256Hex(data: Uint8Array): string {
  return 'sha256:' + crypto.createHash('sha256').update(data).digest('hex');
}

/** Pull the registry's error code/message out of `{"errors":[{code,message}]}` for a one-line message. */
export function registryErrorText(body: Buffer): string {
  try {
    const doc = JSON.parse(body.toString('utf8')) as { errors?: { code?: unknown; message?: unknown }[] };
    const e = doc.errors?.[0];
    if (e && typeof e.code === 'string') return typeof e.message === 'string' && e.message ? `${e.code}: ${e.message}` : e.code;
  } catch {
    // not JSON: say nothing rather than echo arbitrary bytes
  }
  return '';
}

/** An UpdateError that remembers the HTTP status, so callers can tell a 5xx worth retrying from a 4xx. */
export function httpError(message: string, status: number, retryAfterMs?: number): UpdateError {
  // A 503 that says when to come back is a rate limit too (the client holds off until then).
  const code = status === 429 || (status >= 500 && retryAfterMs !== undefined) ? 'rate-limited' : status === 404 ? 'not-found' : 'http';
  return Object.assign(new UpdateError(message, code, retryAfterMs), { status });
}

export function statusOf(err: unknown): number | undefined {
  const s = (err as { status?: unknown } | null)?.status;
  return typeof s === 'number' ? s : undefined;
}

/** Worth trying again later: a network fault, 429, or a 5xx. */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof UpdateError)) return false;
  if (err.code === 'network' || err.code === 'rate-limited') return true;
  const s = statusOf(err);
  return s !== undefined && s >= 500;
}
