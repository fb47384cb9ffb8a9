// A small OCI distribution client: the few endpoints molt needs to follow and publish releases.
// Auth (anonymous, Bearer from a challenge, Basic), retries with backoff on 429/5xx and network
// faults, redirects without credentials across origins, and verified manifest bytes.
import type { Readable } from 'node:stream';
import { logger } from '../../common/log.js';
import { UpdateError } from '../types.js';
import { basicHeader, loadCredentials, parseChallenges, type Credentials } from './auth.js';
import { discard, header, parseLinkNext, parseRetryAfter, readBody, retryDelayMs, send, sleep, type HttpRequest, type HttpResponse } from './http.js';
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, baseMediaType, parseManifest, type AnyManifest } from './manifest.js';
import { DIGEST_RE, formatReference, isLoopbackHost, type OciReference } from './reference.js';
import { httpError, registryErrorText, sha256Hex } from './errors.js';
import { RetryAfterWindow } from './retry-window.js';
import { fetchToken } from './token.js';

export { httpError, isTransient, registryErrorText, sha256Hex, statusOf } from './errors.js';

const log = logger('oci');

export interface ClientOptions {
  /** Explicit credentials; `null` forces anonymous; undefined reads MOLT_OCI_USER/PASSWORD or docker config. */
  credentials?: Credentials | null;
  env?: NodeJS.ProcessEnv;
  /** Deadline for response headers of any request (ms). */
  timeoutMs?: number;
  /** Longest silence while a body streams (ms). */
  idleMs?: number;
  /** Retries after the first attempt, for 429/5xx/network faults. */
  retries?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** A Retry-After longer than this is not waited out here: it becomes a 'rate-limited' error for the scheduler. */
  maxRetryAfterMs?: number;
  /** Ask tokens for push as well as pull. */
  push?: boolean;
  /** Injected for tests: how to wait between retries. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
}

export interface ManifestHead {
  digest: string;
  mediaType: string;
  size?: number;
}

export interface FetchedManifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
  manifest: AnyManifest;
}

interface CallOptions {
  headers?: Record<string, string>;
  body?: Buffer | (() => Readable);
  signal?: AbortSignal;
  /** Safe to send again after a fault (GET, HEAD, PUT of a manifest). */
  idempotent?: boolean;
  /** Follow 3xx (blob downloads); the Authorization header never crosses origins. */
  followRedirects?: boolean;
  /** Read the body through reused buffers (blobs: see http1.ts). */
  reuseBuffer?: boolean;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export class RegistryClient {
  readonly ref: OciReference;
  private readonly origin: string;
  private readonly opts: Required<Pick<ClientOptions, 'timeoutMs' | 'idleMs' | 'retries' | 'retryBaseMs' | 'retryMaxMs' | 'maxRetryAfterMs'>> & ClientOptions;
  private credentials: Credentials | undefined;
  private credentialsLoaded = false;
  /** The Authorization value that worked last, for this registry's origin only. */
  private auth: { value: string; expiresAtMs: number } | undefined;

  constructor(ref: OciReference, opts: ClientOptions = {}) {
    this.ref = ref;
    this.origin = new URL(ref.baseUrl).origin;
    this.opts = { timeoutMs: 30_000, idleMs: 60_000, retries: 4, retryBaseMs: 500, retryMaxMs: 30_000, maxRetryAfterMs: 120_000, ...opts };
    if (opts.credentials !== undefined) {
      this.credentials = opts.credentials ?? undefined;
      this.credentialsLoaded = true;
    }
  }

  private creds(): Credentials | undefined {
    if (!this.credentialsLoaded) {
      this.credentials = loadCredentials(this.ref.registry, this.opts.env);
      this.credentialsLoaded = true;
    }
    return this.credentials;
  }

  url(path: string): URL {
    return new URL(`/v2/${this.ref.repository}/${path}`, this.ref.baseUrl);
  }

  private where(): string {
    return `${this.ref.registry}/${this.ref.repository}`;
  }

  /** The registry's Retry-After window: no request while it is open. */
  private readonly window = new RetryAfterWindow();

  /** One logical call: auth challenges answered, 429/5xx and network faults retried, redirects followed. */
  async call(method: HttpRequest['method'], url: URL, co: CallOptions = {}): Promise<HttpResponse> {
    const sleeper = this.opts.sleep ?? sleep;
    const rand = this.opts.random ?? Math.random;
    let authTried = false;
    for (let attempt = 0; ; attempt++) {
      this.window.gate(this.where());
      let res: HttpResponse;
      try {
        res = await this.sendFollowing(method, url, co);
      } catch (err) {
        const retryable = err instanceof UpdateError && err.code === 'network' && co.idempotent !== false && attempt < this.opts.retries;
        if (!retryable) throw err;
        const delay = retryDelayMs(attempt, undefined, { baseMs: this.opts.retryBaseMs, maxMs: this.opts.retryMaxMs }, rand());
        log.warn('retry', { reason: (err as Error).message, attempt: attempt + 1, delay_ms: delay });
        await sleeper(delay, co.signal);
        continue;
      }
      if (res.status === 401 && !authTried && new URL(res.url).origin === this.origin) {
        authTried = true;
        const got = await this.answerChallenge(header(res, 'www-authenticate'), co.signal);
        discard(res);
        if (got) {
          attempt--; // answering a challenge is not a retry
          continue;
        }
        throw new UpdateError(`${this.where()}: authentication required (401) and no usable credentials (set MOLT_OCI_USER/MOLT_OCI_PASSWORD or docker config.json)`, 'http');
      }
      if (res.status === 401) {
        discard(res);
        throw new UpdateError(`${this.where()}: access denied (401) with the configured credentials`, 'http');
      }
      if (res.status === 429 || res.status >= 500) {
        const after = parseRetryAfter(header(res, 'retry-after'), Date.now());
        this.window.holdOff(after);
        const body = await readBody(res, 64 * 1024, 'error body').catch(() => Buffer.alloc(0));
        const what = `${method} ${url.pathname}: HTTP ${res.status}${registryErrorText(body) ? ' ' + registryErrorText(body) : ''}`;
        if (co.idempotent === false || attempt >= this.opts.retries || (after ?? 0) > this.opts.maxRetryAfterMs) {
          throw httpError(`${this.where()}: ${what}`, res.status, after);
        }
        const delay = retryDelayMs(attempt, after, { baseMs: this.opts.retryBaseMs, maxMs: this.opts.retryMaxMs }, rand());
        log.warn('retry', { status: res.status, attempt: attempt + 1, delay_ms: delay });
        await this.window.waitOut(sleeper, delay, co.signal);
        continue;
      }
      return res;
    }
  }

  private async sendFollowing(method: HttpRequest['method'], url: URL, co: CallOptions): Promise<HttpResponse> {
    let target = url;
    for (let hop = 0; hop <= 5; hop++) {
      const headers: Record<string, string> = { ...co.headers };
      // Credentials only ever go to the registry's own origin, never to a redirect target elsewhere.
      if (target.origin === this.origin && this.auth && this.auth.expiresAtMs > Date.now()) headers.authorization = this.auth.value;
      const res = await send({ method, url: target, headers, body: hop === 0 ? co.body : undefined, signal: co.signal, timeoutMs: this.opts.timeoutMs, idleMs: this.opts.idleMs, reuseBuffer: co.reuseBuffer });
      const loc = header(res, 'location');
      if (!co.followRedirects || !REDIRECTS.has(res.status) || !loc) return res;
      discard(res);
      const next = new URL(loc, target);
      if (next.protocol !== 'https:' && next.protocol !== 'http:') throw new UpdateError(`${this.where()}: redirect to unsupported URL scheme ${next.protocol}`, 'bad-input');
      if (next.protocol === 'http:' && target.protocol === 'https:' && !isLoopbackHost(next.host)) {
        throw new UpdateError(`${this.where()}: refusing a redirect from https to plain http (${next.host})`, 'bad-input');
      }
      target = next;
    }
    throw new UpdateError(`${this.where()}: too many redirects for ${url.pathname}`, 'http');
  }

  /** Answer a 401: fetch a Bearer token, or use Basic. Returns false when nothing can be done. */
  private async answerChallenge(raw: string | undefined, signal?: AbortSignal): Promise<boolean> {
    const challenges = parseChallenges(raw);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const creds = this.creds();
    if (bearer && bearer.params.realm) {
      const scope = bearer.params.scope || `repository:${this.ref.repository}:${this.opts.push ? 'pull,push' : 'pull'}`;
      this.auth = await fetchToken({ where: this.where(), insecure: this.ref.insecure, opts: this.opts, window: this.window }, { realm: bearer.params.realm, service: bearer.params.service, scope, creds }, signal);
      return true;
    }
    if (challenges.some((c) => c.scheme === 'basic') && creds) {
      this.auth = { value: basicHeader(creds), expiresAtMs: Number.POSITIVE_INFINITY };
      return true;
    }
    return false;
  }

  private async failStatus(res: HttpResponse, what: string): Promise<never> {
    const body = res.body.readableEnded ? Buffer.alloc(0) : await readBody(res, 64 * 1024, 'error body').catch(() => Buffer.alloc(0));
    const text = registryErrorText(body);
    throw httpError(`${this.where()}: ${what}: HTTP ${res.status}${text ? ' ' + text : ''}`, res.status);
  }

  /** HEAD a manifest: the cheap way to learn what a tag points at (does not count as a pull on Docker Hub). */
  async headManifest(reference: string, signal?: AbortSignal): Promise<ManifestHead> {
    const res = await this.call('HEAD', this.url(`manifests/${reference}`), { headers: { accept: MANIFEST_ACCEPT }, signal, idempotent: true });
    discard(res);
    if (res.status === 404) throw new UpdateError(`${this.where()}: manifest '${reference}' not found (404)`, 'not-found');
    // Some registries and caches refuse HEAD on manifests; a GET answers the same question.
    if (res.status === 405 || res.status === 501) return this.headByGet(reference, signal);
    if (res.status !== 200) throw httpError(`${this.where()}: HEAD manifest '${reference}': HTTP ${res.status}`, res.status);
    const digest = header(res, 'docker-content-digest');
    const size = Number(header(res, 'content-length'));
    const mediaType = baseMediaType(header(res, 'content-type'));
    if (digest && DIGEST_RE.test(digest)) return { digest, mediaType, ...(Number.isFinite(size) ? { size } : {}) };
    // Older registries omit the digest on HEAD: a GET tells (and verifies) it.
    return this.headByGet(reference, signal);
  }

  private async headByGet(reference: string, signal?: AbortSignal): Promise<ManifestHead> {
    const m = await this.getManifest(reference, signal);
    return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length };
  }

  /**
   * GET a manifest and prove its bytes: by digest they must hash to it; by tag they must match Docker-Content-Digest.
   * `maxBytes`: more is refused ('bad-input') without being read (signature manifests are held to less).
   */
  async getManifest(reference: string, signal?: AbortSignal, maxBytes = MAX_MANIFEST_BYTES): Promise<FetchedManifest> {
    const res = await this.call('GET', this.url(`manifests/${reference}`), { headers: { accept: MANIFEST_ACCEPT }, signal, idempotent: true });
    if (res.status !== 200) {
      if (res.status === 404) {
        discard(res);
        throw new UpdateError(`${this.where()}: manifest '${reference}' not found (404)`, 'not-found');
      }
      return this.failStatus(res, `GET manifest '${reference}'`);
    }
    const bytes = await readBody(res, maxBytes, `manifest '${reference}'`);
    const digest = sha256Hex(bytes);
    const expected = DIGEST_RE.test(reference) ? reference : header(res, 'docker-content-digest');
    if (expected && expected !== digest) {
      throw new UpdateError(`${this.where()}: manifest '${reference}' does not match its digest ${expected} (got ${digest})`, 'integrity');
    }
    const ct = header(res, 'content-type');
    const manifest = parseManifest(bytes, ct, `${this.where()}@${digest}`);
    return { digest, mediaType: manifest.mediaType, bytes, manifest };
  }

  /**
   * Every tag, following `Link: rel="next"`; when a registry pages without a Link header, asks on
   * with `last=`. Registries that ignore `n` (Debian's 2.8) answer everything at once.
   */
  async listTags(signal?: AbortSignal, pageSize = 1000): Promise<string[]> {
    const seen = new Set<string>();
    const tags: string[] = [];
    let url: URL | undefined = this.url('tags/list');
    url.searchParams.set('n', String(pageSize));
    const visited = new Set<string>();
    for (let page = 0; url && page < 10_000; page++) {
      if (visited.has(url.href)) break; // a Link loop ends here, not in a hang
      visited.add(url.href);
      const res = await this.call('GET', url, { headers: { accept: 'application/json' }, signal, idempotent: true });
      if (res.status === 404) {
        discard(res);
        throw new UpdateError(`${this.where()}: repository not found (404)`, 'not-found');
      }
      if (res.status !== 200) return this.failStatus(res, 'list tags');
      const body = await readBody(res, 16 * 1024 * 1024, 'tag list');
      let doc: unknown;
      try {
        doc = JSON.parse(body.toString('utf8'));
      } catch {
        throw new UpdateError(`${this.where()}: malformed JSON in tag list`, 'bad-input');
      }
      const list = (doc as { tags?: unknown } | null)?.tags;
      if (list !== null && list !== undefined && (!Array.isArray(list) || list.some((t) => typeof t !== 'string'))) {
        throw new UpdateError(`${this.where()}: malformed tag list`, 'bad-input');
      }
      const pageTags = (list ?? []) as string[];
      let fresh = 0;
      for (const t of pageTags) {
        if (!seen.has(t)) {
          seen.add(t);
          tags.push(t);
          fresh++;
        }
      }
      const next = parseLinkNext(header(res, 'link'), url);
      if (next) {
        if (next.origin !== this.origin) throw new UpdateError(`${this.where()}: tag list Link points to another origin`, 'bad-input');
        url = next;
      } else if (pageTags.length === pageSize && fresh > 0) {
        url = this.url('tags/list');
        url.searchParams.set('n', String(pageSize));
        url.searchParams.set('last', pageTags[pageTags.length - 1]!);
      } else url = undefined;
    }
    return tags;
  }

  /**
   * Open a blob for streaming; redirects to storage are followed without our credentials. The
   * body's chunks are views of reused buffers: each is valid until the next is asked for
   * (downloadVerified hashes and writes a chunk before it asks for the next).
   */
  async openBlob(digest: string, signal?: AbortSignal): Promise<{ body: AsyncIterable<Buffer> & { destroy(err?: Error): void }; size?: number }> {
    const res = await this.call('GET', this.url(`blobs/${digest}`), { signal, idempotent: true, followRedirects: true, reuseBuffer: true });
    if (res.status !== 200) {
      if (res.status === 404) {
        discard(res);
        throw new UpdateError(`${this.where()}: blob ${digest} not found (404)`, 'not-found');
      }
      return this.failStatus(res, `GET blob ${digest}`);
    }
    const len = Number(header(res, 'content-length'));
    return { body: res.body, ...(Number.isFinite(len) && header(res, 'content-length') !== undefined ? { size: len } : {}) };
  }

  async blobExists(digest: string, signal?: AbortSignal): Promise<boolean> {
    const res = await this.call('HEAD', this.url(`blobs/${digest}`), { signal, idempotent: true, followRedirects: true });
    discard(res);
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw new UpdateError(`${this.where()}: HEAD blob ${digest}: HTTP ${res.status}`, 'http');
  }

  private uploadUrl(res: HttpResponse, what: string): URL {
    const loc = header(res, 'location');
    if (!loc) throw new UpdateError(`${this.where()}: ${what}: no Location in the registry's answer`, 'http');
    // Another origin is allowed (upload front ends exist); credentials are simply not sent there.
    const u = new URL(loc, this.ref.baseUrl);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new UpdateError(`${this.where()}: upload location with scheme ${u.protocol}`, 'bad-input');
    return u;
  }

  /**
   * Push one blob: POST opens a session; then either one PUT with the whole body (monolithic) or
   * PATCHes of `chunkSize` bytes with Content-Range and a closing PUT ?digest= (chunked).
   * `open(start, end)` streams a byte range of the source (end exclusive), so memory stays flat.
   */
  async uploadBlob(digest: string, size: number, open: (start: number, end: number) => Readable, opts: { chunkSize?: number; signal?: AbortSignal } = {}): Promise<void> {
    const signal = opts.signal;
    const start = await this.call('POST', this.url('blobs/uploads/'), { signal, idempotent: true, headers: { 'content-length': '0' }, body: Buffer.alloc(0) });
    if (start.status !== 202) return this.failStatus(start, 'start blob upload');
    discard(start);
    let loc = this.uploadUrl(start, 'start blob upload');
    const chunk = opts.chunkSize && opts.chunkSize > 0 && size > opts.chunkSize ? opts.chunkSize : 0;
    if (chunk) {
      for (let off = 0; off < size; off += chunk) {
        const end = Math.min(size, off + chunk);
        const res = await this.call('PATCH', loc, {
          signal,
          idempotent: false,
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - off), 'content-range': `${off}-${end - 1}` },
          body: () => open(off, end),
        });
        if (res.status !== 202) return this.failStatus(res, `upload chunk ${off}-${end - 1}`);
        discard(res);
        loc = this.uploadUrl(res, 'upload chunk');
      }
    }
    loc.searchParams.set('digest', digest);
    const put = await this.call('PUT', loc, {
      signal,
      idempotent: false,
      headers: { 'content-type': 'application/octet-stream', 'content-length': chunk ? '0' : String(size) },
      body: chunk ? Buffer.alloc(0) : () => open(0, size),
    });
    if (put.status !== 201) return this.failStatus(put, `finish blob upload ${digest}`);
    discard(put);
  }

  /** PUT a manifest under a tag (or digest); returns the digest of the bytes as sent. */
  async putManifest(reference: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<string> {
    return (await this.putManifestFull(reference, bytes, mediaType, signal)).digest;
  }

  /** putManifest, and the OCI-Subject header a registry with the referrers API answers for a manifest with a subject. */
  async putManifestFull(reference: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<{ digest: string; ociSubject?: string }> {
    const res = await this.call('PUT', this.url(`manifests/${reference}`), { signal, idempotent: true, headers: { 'content-type': mediaType }, body: bytes });
    if (res.status !== 201 && res.status !== 200) return this.failStatus(res, `PUT manifest '${reference}'`);
    discard(res);
    const digest = sha256Hex(bytes);
    const said = header(res, 'docker-content-digest');
    if (said && said !== digest) throw new UpdateError(`${this.where()}: registry stored manifest as ${said}, expected ${digest}`, 'integrity');
    const ociSubject = header(res, 'oci-subject');
    return ociSubject ? { digest, ociSubject } : { digest };
  }

  toString(): string {
    return formatReference(this.ref);
  }
}
