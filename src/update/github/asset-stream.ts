// Asset bytes from GitHub: the API URL with Accept: application/octet-stream, the storage
// redirect followed by hand (the token stays on the API's origin), an idle time-out on the body,
// retries and the rate-limit gate as for API calls.
import { createHash } from 'node:crypto';
import { logger } from '../../common/log.js';
import { moltVersion } from '../../common/version.js';
import { UpdateError } from '../types.js';
import type { AssetInfo } from './assets.js';
import { headersOf, messageOf, nowMs, type RateGate } from './gate.js';
import { decide, type Headers, type RetryPolicy } from './ratelimit.js';

const log = logger('github');
export const CHECKSUM_MAX_BYTES = 1 << 20;
/**
 * Slow retrieval: a body that trickles a byte just inside each idle time-out
 * never stalls, so a download must also average at least this rate. It gets
 * the answer's and the idle time-out plus its size at this rate in all (200 MB: under two hours).
 */
export const MIN_DOWNLOAD_RATE = 32 * 1024;

export interface AssetContext {
  repo: string;
  apiOrigin: string;
  token?: string;
  timeoutMs: number;
  idleTimeoutMs: number;
  retry: RetryPolicy;
  random: () => number;
  gate: RateGate;
}

/**
 * GET the asset's API URL with Accept: application/octet-stream; GitHub answers 302 to a
 * storage host (or 200 with the bytes). Redirects are followed here so that the token is sent
 * only to the API's own origin, and never over a downgrade from https to http.
 * Returns the body, guarded by an idle time-out, and `done(err?)` which stops the guard and
 * turns an abort caused by the guard into a clear time-out error.
 */
export async function openAsset(ctx: AssetContext, a: AssetInfo, tag: string, signal?: AbortSignal): Promise<{ body: AsyncIterable<Uint8Array>; done: (e?: unknown) => unknown }> {
  const what = `asset ${a.name} of release ${tag}`;
  for (let attempt = 0; ; attempt++) {
    ctx.gate.gate();
    const guard = new AbortController();
    const both = signal ? AbortSignal.any([signal, guard.signal]) : guard.signal;
    let stalled = false;
    let slow: { budgetMs: number; bytes: number } | undefined;
    let deadline: NodeJS.Timeout | undefined;
    let timer = setTimeout(() => {
      stalled = true;
      guard.abort(new Error('time-out'));
    }, ctx.timeoutMs);
    const done = (e?: unknown): unknown => {
      clearTimeout(timer);
      clearTimeout(deadline);
      if (e === undefined) return undefined;
      if (signal?.aborted) return new UpdateError(`download of ${what} aborted`, 'aborted');
      if (slow) return new UpdateError(`download of ${what} too slow: ${slow.bytes} of ${a.size} bytes in ${slow.budgetMs}ms (under ${MIN_DOWNLOAD_RATE} bytes/s)`, 'network');
      if (stalled) return new UpdateError(`download of ${what} stalled: no data for ${ctx.idleTimeoutMs}ms`, 'network');
      return e;
    };
    let status = 0;
    let rh: Headers = {};
    let body = '';
    try {
      let url = new URL(a.url);
      for (let hop = 0; ; hop++) {
        const headers: Record<string, string> = { accept: 'application/octet-stream', 'user-agent': `molt/${moltVersion()}` };
        const api = url.origin === ctx.apiOrigin;
        if (api && ctx.token) headers.authorization = `Bearer ${ctx.token}`;
        if (api) headers['x-github-api-version'] = '2022-11-28';
        const res = await fetch(url, { headers, redirect: 'manual', signal: both });
        if (api) ctx.gate.note(headersOf(res.headers));
        if ([301, 302, 303, 307, 308].includes(res.status)) {
          await res.body?.cancel();
          const loc2 = res.headers.get('location');
          if (!loc2) throw new UpdateError(`${what}: redirect without a Location`, 'http');
          const next = new URL(loc2, url);
          if (url.protocol === 'https:' && next.protocol !== 'https:') throw new UpdateError(`${what}: refusing a redirect from https to ${next.protocol}`, 'http');
          if (hop >= 5) throw new UpdateError(`${what}: too many redirects`, 'http');
          url = next;
          continue;
        }
        if (res.ok && res.body) {
          // From here the time-out measures silence between chunks.
          clearTimeout(timer);
          timer = setTimeout(() => {
            stalled = true;
            guard.abort(new Error('stalled'));
          }, ctx.idleTimeoutMs);
          const t = timer;
          const stream = res.body;
          let got = 0;
          // Beyond the idle time-out too: a body that simply stops is reported as stalled, not as slow.
          const budgetMs = ctx.timeoutMs + ctx.idleTimeoutMs + Math.ceil((Math.max(0, a.size) / MIN_DOWNLOAD_RATE) * 1000);
          deadline = setTimeout(() => {
            slow = { budgetMs, bytes: got };
            guard.abort(new Error('too slow'));
          }, budgetMs);
          async function* guarded(): AsyncIterable<Uint8Array> {
            for await (const chunk of stream) {
              t.refresh();
              got += chunk.byteLength;
              yield chunk;
            }
          }
          return { body: guarded(), done };
        }
        status = res.status;
        rh = headersOf(res.headers);
        body = messageOf(await res.json().catch(() => ''));
        // A storage 5xx is retried from the API URL (a fresh signed redirect); a storage 4xx is final.
        if (api || res.status >= 500) break;
        throw new UpdateError(`${what}: storage host ${url.host} answered ${res.status}`, 'http');
      }
    } catch (e) {
      clearTimeout(timer);
      if (e instanceof UpdateError) throw e;
      if (signal?.aborted) throw new UpdateError(`download of ${what} aborted`, 'aborted');
      status = 0;
      if (!stalled) body = (e as Error).message;
    }
    clearTimeout(timer);
    const d = decide(status, rh, body, attempt, ctx.retry, nowMs(), ctx.random());
    if (d.action === 'retry') {
      log.info('retrying', { repo: ctx.repo, request: what, status: status || (stalled ? 'timeout' : 'network'), attempt: attempt + 1, delay_ms: d.delayMs });
      await ctx.gate.waitOut(rh, d.delayMs, signal).catch(() => {
        throw new UpdateError(`download of ${what} aborted`, 'aborted');
      });
      continue;
    }
    if (d.action === 'rate-limited') {
      ctx.gate.shut(d.waitMs);
      throw new UpdateError(`GitHub rate limit for ${ctx.repo} (${d.why}): retry in ${Math.ceil(d.waitMs / 1000)}s`, 'rate-limited', Math.ceil(d.waitMs));
    }
    if (status === 0) throw new UpdateError(`download of ${what} ${stalled ? `timed out after ${ctx.timeoutMs}ms` : `failed (${body})`}${attempt ? ` after ${attempt + 1} attempts` : ''}`, 'network');
    if (status === 404) throw new UpdateError(`${what} not found on GitHub ${ctx.repo}${body ? ` (${body})` : ''}`, 'not-found');
    throw new UpdateError(`download of ${what} answered ${status}${body ? ` (${body})` : ''}`, 'http');
  }
}

/** A checksum asset's text, bounded and checked against its own digest field. */
export async function readSmallAsset(ctx: AssetContext, a: AssetInfo, tag: string, signal?: AbortSignal): Promise<string> {
  return (await readSmallAssetBytes(ctx, a, tag, signal)).toString('utf8');
}

/** A small asset's bytes (checksum lists, signatures: binary DER too), at most CHECKSUM_MAX_BYTES, checked against its digest field. */
export async function readSmallAssetBytes(ctx: AssetContext, a: AssetInfo, tag: string, signal?: AbortSignal, what = 'checksum asset'): Promise<Buffer> {
  if (a.size > CHECKSUM_MAX_BYTES) throw new UpdateError(`${what} ${a.name} of release ${tag} is too large (${a.size} bytes)`, 'bad-input');
  const { body, done } = await openAsset(ctx, a, tag, signal);
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of body) {
      n += c.byteLength;
      if (n > CHECKSUM_MAX_BYTES) throw new UpdateError(`${what} ${a.name} of release ${tag} is larger than ${CHECKSUM_MAX_BYTES} bytes`, 'bad-input');
      chunks.push(Buffer.from(c));
    }
  } catch (e) {
    throw done(e);
  } finally {
    done();
  }
  const buf = Buffer.concat(chunks);
  if (a.digest) {
    const got = `sha256:${createHash('sha256').update(buf).digest('hex')}`;
    if (got !== a.digest) throw new UpdateError(`${what} ${a.name} of release ${tag} does not match its digest (got ${got})`, 'integrity');
  }
  return buf;
}

/** What the fleet's GitHub board needs of the source: small assets read, assets uploaded (same limits and token). */
export interface GitHubAssetPort {
  repo: string;
  read(a: AssetInfo, tag: string, signal?: AbortSignal): Promise<Buffer>;
  /** POST the bytes to a release's upload_url as asset `name`; throws UpdateError (422 when the name is taken). */
  upload(uploadUrl: string, name: string, bytes: Buffer, signal?: AbortSignal): Promise<void>;
}
