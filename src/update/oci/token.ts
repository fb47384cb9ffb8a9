// The Bearer token dance of a registry's 401 challenge: GET the realm with the scope (and Basic
// credentials when there are any), within the registry's Retry-After window, with retries.
import { logger } from '../../common/log.js';
import { UpdateError } from '../types.js';
import { basicHeader, parseTokenResponse, type Credentials } from './auth.js';
import { discard, header, parseRetryAfter, readBody, retryDelayMs, send, sleep, type HttpResponse } from './http.js';
import { isLoopbackHost } from './reference.js';
import type { RetryAfterWindow, Sleeper } from './retry-window.js';

const log = logger('oci');

export interface TokenContext {
  /** registry/repository, for messages. */
  where: string;
  insecure: boolean;
  opts: { timeoutMs: number; idleMs: number; retries: number; retryBaseMs: number; retryMaxMs: number; maxRetryAfterMs: number; sleep?: Sleeper; random?: () => number };
  window: RetryAfterWindow;
}

export async function fetchToken(
  ctx: TokenContext,
  { realm, service, scope, creds }: { realm: string; service: string | undefined; scope: string; creds: Credentials | undefined },
  signal?: AbortSignal,
): Promise<{ value: string; expiresAtMs: number }> {
  let url: URL;
  try {
    url = new URL(realm);
  } catch {
    throw new UpdateError(`${ctx.where}: bad token realm in the registry's challenge`, 'bad-input');
  }
  // Basic credentials go over TLS only, unless the registry itself is trusted as insecure/loopback.
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && (ctx.insecure || isLoopbackHost(url.host)))) {
    throw new UpdateError(`${ctx.where}: token realm ${url.origin} is not https`, 'bad-input');
  }
  if (service) url.searchParams.set('service', service);
  for (const s of scope.split(' ').filter(Boolean)) url.searchParams.append('scope', s);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (creds) headers.authorization = basicHeader(creds);
  const sleeper = ctx.opts.sleep ?? sleep;
  for (let attempt = 0; ; attempt++) {
    let res: HttpResponse;
    ctx.window.gate(ctx.where);
    try {
      res = await send({ method: 'GET', url, headers, signal, timeoutMs: ctx.opts.timeoutMs, idleMs: ctx.opts.idleMs });
    } catch (err) {
      if (err instanceof UpdateError && err.code === 'network' && attempt < ctx.opts.retries) {
        await sleeper(retryDelayMs(attempt, undefined, { baseMs: ctx.opts.retryBaseMs, maxMs: ctx.opts.retryMaxMs }, (ctx.opts.random ?? Math.random)()), signal);
        continue;
      }
      throw err;
    }
    if ((res.status === 429 || res.status >= 500) && attempt < ctx.opts.retries) {
      const after = parseRetryAfter(header(res, 'retry-after'), Date.now());
      discard(res);
      ctx.window.holdOff(after);
      if ((after ?? 0) > ctx.opts.maxRetryAfterMs) throw new UpdateError(`${ctx.where}: token endpoint rate-limited`, 'rate-limited', after);
      await ctx.window.waitOut(sleeper, retryDelayMs(attempt, after, { baseMs: ctx.opts.retryBaseMs, maxMs: ctx.opts.retryMaxMs }, (ctx.opts.random ?? Math.random)()), signal);
      continue;
    }
    if (res.status === 401 || res.status === 403) {
      discard(res);
      throw new UpdateError(`${ctx.where}: token endpoint ${url.origin} refused ${creds ? 'the credentials' : 'anonymous access'} (${res.status})`, 'http');
    }
    if (res.status !== 200) {
      discard(res);
      throw new UpdateError(`${ctx.where}: token endpoint ${url.origin} answered HTTP ${res.status}`, 'http');
    }
    const body = await readBody(res, 1024 * 1024, 'token response');
    let doc: unknown;
    try {
      doc = JSON.parse(body.toString('utf8'));
    } catch {
      throw new UpdateError(`${ctx.where}: malformed JSON from token endpoint ${url.origin}`, 'bad-input');
    }
    const tok = parseTokenResponse(doc, Date.now());
    if (!tok) throw new UpdateError(`${ctx.where}: token endpoint ${url.origin} sent no token`, 'bad-input');
    log.debug('token', { realm: url.origin, scope });
    return { value: `Bearer ${tok.token}`, expiresAtMs: tok.expiresAtMs };
  }
}
