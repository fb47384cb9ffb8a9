// A local stand-in for the GitHub REST API's releases endpoints, with a second
// loopback server playing the object-storage host that asset downloads are
// redirected to. GitHub cannot be reached from the test machines, and molt's
// GitHub source must be proved against what GitHub actually does, not against
// mocks of octokit. So this fakes, as documented by GitHub:
// - GET {base}/repos/:o/:r/releases (per_page up to 100, page; newest first;
//   a Link header with first/prev/next/last pointing at /repositories/:id/...,
//   absent on a single page), /releases/latest (newest non-draft,
//   non-prerelease; 404 if none), /releases/tags/:tag, /releases/assets/:id
//   (JSON, or with Accept: application/octet-stream a 302 to the storage host);
// - drafts, visible only to a request with the token;
// - strong ETags, and 304 on a matching If-None-Match;
// - x-ratelimit-limit/remaining/used/reset/resource, decremented by every
//   request except a 304 made with a token; a 403 "API rate limit exceeded"
//   once the window is spent; GitHub's User-Agent requirement; 401 on a bad token;
// - switches for faults: 403/429 with Retry-After or remaining=0, 500s, a
//   hanging server, a malformed body;
// - an Enterprise prefix (/api/v3) in front of every API path.
// The storage host refuses a request that carries an Authorization header, as
// S3 does for presigned URLs, so a leaked token fails the download visibly.
// Every request to either server is logged for the tests to assert on.

import http from 'node:http';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface FakeAssetSpec {
  name: string;
  data: Buffer | string;
  contentType?: string;
  /** Override the digest field: a string is sent as is, null sends `digest: null` (assets uploaded before 2025-06). */
  digest?: string | null;
  /** Serve these bytes from storage instead of `data` (corruption in transit). */
  served?: Buffer;
}

export interface FakeReleaseSpec {
  tag: string;
  name?: string;
  draft?: boolean;
  prerelease?: boolean;
  assets?: FakeAssetSpec[];
}

interface Asset {
  id: number;
  spec: FakeAssetSpec;
  data: Buffer;
}
interface Rel {
  id: number;
  spec: FakeReleaseSpec;
  createdAt: string;
  assets: Asset[];
}

export interface LogEntry {
  server: 'api' | 'storage';
  method: string;
  path: string;
  status: number;
  authorized: boolean;
  /** The Authorization header was present (whatever its value). */
  sentAuthorization: boolean;
  ifNoneMatch?: string;
  /** Counted against the rate limit. */
  counted: boolean;
  /** performance.now() when the request arrived. */
  at: number;
}

export interface Fault {
  status: 403 | 429 | 500 | 502 | 503;
  /** Retry-After seconds. */
  retryAfter?: number;
  /** Answer as if the primary limit were spent (remaining 0) until `resetIn` seconds from now. */
  exhaust?: boolean;
  resetIn?: number;
  message?: string;
}

export interface FakeGitHubOptions {
  owner?: string;
  repo?: string;
  /** Path prefix of the API, e.g. "/api/v3" for GitHub Enterprise Server. */
  prefix?: string;
  /** The token that is accepted; requests with another one get 401. */
  token?: string;
  /** Requests per window for a token and for anonymous callers. */
  limit?: number;
  anonLimit?: number;
  /** Window length in seconds. */
  windowSec?: number;
}

class Bucket {
  used = 0;
  resetAt: number;
  constructor(
    readonly limit: number,
    readonly windowSec: number,
  ) {
    this.resetAt = Math.floor(Date.now() / 1000) + windowSec;
  }
  roll(): void {
    const now = Math.floor(Date.now() / 1000);
    if (now >= this.resetAt) {
      this.used = 0;
      this.resetAt = now + this.windowSec;
    }
  }
  get remaining(): number {
    return Math.max(0, this.limit - this.used);
  }
}

export class FakeGitHub {
  readonly owner: string;
  readonly repo: string;
  readonly repoId = 1296269;
  readonly prefix: string;
  readonly log: LogEntry[] = [];
  /** Faults answered, in order, by the next API requests (one each). */
  readonly faults: Fault[] = [];
  /** When set, API requests are accepted and never answered. */
  hang = false;
  /** Statuses the storage host answers, in order, before it serves assets again. */
  readonly storageFaults: number[] = [];
  /** When set, the storage host sends this many bytes of an asset, then nothing more. */
  stallStorageAfter?: number;
  /** When set, the storage host sends an asset `bytes` at a time, one chunk every `everyMs` (slow retrieval). */
  trickleStorage?: { bytes: number; everyMs: number };
  /** When set, list requests get this body with status 200 and a JSON content type. */
  malformedBody?: string;
  /** When set, an upload with the token gets 403 (a token that may read, not write), as GitHub answers. */
  uploadDenied = false;
  private rels: Rel[] = [];
  private nextId = 1000;
  /** GitHub artifact attestations (Sigstore bundles) by subject digest `sha256:<hex>`. */
  private readonly attestations = new Map<string, unknown[]>();

  /** Attest `digest` with a Sigstore bundle (JSON text), as actions/attest-build-provenance does. */
  addAttestation(digest: string, bundle: string): void {
    this.attestations.set(digest, [...(this.attestations.get(digest) ?? []), JSON.parse(bundle)]);
  }
  private token?: string;
  private buckets: { token: Bucket; anon: Bucket };
  private api!: http.Server;
  private storage!: http.Server;
  private apiPort = 0;
  private storagePort = 0;

  private constructor(opts: FakeGitHubOptions) {
    this.owner = opts.owner ?? 'acme';
    this.repo = opts.repo ?? 'app';
    this.prefix = (opts.prefix ?? '').replace(/\/+$/, '');
    this.token = opts.token;
    const w = opts.windowSec ?? 3600;
    this.buckets = { token: new Bucket(opts.limit ?? 5000, w), anon: new Bucket(opts.anonLimit ?? 60, w) };
  }

  static async start(opts: FakeGitHubOptions = {}, releases: FakeReleaseSpec[] = []): Promise<FakeGitHub> {
    const f = new FakeGitHub(opts);
    f.setReleases(releases);
    f.api = http.createServer((q, s) => f.onApi(q, s));
    f.storage = http.createServer((q, s) => f.onStorage(q, s));
    await Promise.all([listen(f.api), listen(f.storage)]);
    f.apiPort = (f.api.address() as AddressInfo).port;
    f.storagePort = (f.storage.address() as AddressInfo).port;
    return f;
  }

  /** What molt's MOLT_GITHUB_API would be. */
  get baseUrl(): string {
    return `http://127.0.0.1:${this.apiPort}${this.prefix}`;
  }
  get storageOrigin(): string {
    return `http://127.0.0.1:${this.storagePort}`;
  }

  /** Replace every release; specs newest first, as GitHub lists them. */
  setReleases(specs: FakeReleaseSpec[]): void {
    this.rels = [];
    for (const s of [...specs].reverse()) this.addRelease(s);
  }

  /** Publish a release; it becomes the newest. */
  addRelease(spec: FakeReleaseSpec): void {
    const created = new Date(Date.UTC(2025, 0, 1) + this.nextId * 60_000).toISOString();
    const rel: Rel = {
      id: this.nextId++,
      spec,
      createdAt: created,
      assets: (spec.assets ?? []).map((a) => ({ id: this.nextId++, spec: a, data: Buffer.from(a.data) })),
    };
    this.rels.unshift(rel);
  }

  /** Spend the primary limit: remaining 0 until `resetIn` seconds from now. */
  exhaust(resetIn: number, who: 'token' | 'anon' = 'token'): void {
    const b = this.buckets[who];
    b.used = b.limit;
    b.resetAt = Math.floor(Date.now() / 1000) + resetIn;
  }

  /** Set what is left of the window for a caller. */
  setRemaining(n: number, resetIn: number, who: 'token' | 'anon' = 'token'): void {
    const b = this.buckets[who];
    b.used = b.limit - n;
    b.resetAt = Math.floor(Date.now() / 1000) + resetIn;
  }

  rateLimit(who: 'token' | 'anon' = 'token'): { limit: number; remaining: number; used: number; reset: number } {
    const b = this.buckets[who];
    return { limit: b.limit, remaining: b.remaining, used: b.used, reset: b.resetAt };
  }

  apiRequests(): LogEntry[] {
    return this.log.filter((e) => e.server === 'api');
  }

  async close(): Promise<void> {
    for (const s of [this.api, this.storage]) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  }

  // ---- API server ----

  private json(rel: Rel): Record<string, unknown> {
    const base = this.baseUrl;
    const repoUrl = `${base}/repos/${this.owner}/${this.repo}`;
    return {
      url: `${repoUrl}/releases/${rel.id}`,
      html_url: `https://github.com/${this.owner}/${this.repo}/releases/tag/${encodeURIComponent(rel.spec.tag)}`,
      assets_url: `${repoUrl}/releases/${rel.id}/assets`,
      // GitHub's is on uploads.github.com; here the API server takes uploads too.
      upload_url: `${repoUrl}/releases/${rel.id}/assets{?name,label}`,
      id: rel.id,
      node_id: `RE_${rel.id}`,
      tag_name: rel.spec.tag,
      target_commitish: 'main',
      name: rel.spec.name ?? rel.spec.tag,
      draft: rel.spec.draft ?? false,
      prerelease: rel.spec.prerelease ?? false,
      created_at: rel.createdAt,
      published_at: rel.spec.draft ? null : rel.createdAt,
      author: { login: this.owner, id: 1 },
      assets: rel.assets.map((a) => this.assetJson(a, rel)),
      tarball_url: `${repoUrl}/tarball/${rel.spec.tag}`,
      zipball_url: `${repoUrl}/zipball/${rel.spec.tag}`,
      body: '',
    };
  }

  private assetJson(a: Asset, rel: Rel): Record<string, unknown> {
    const digest = a.spec.digest === undefined ? `sha256:${createHash('sha256').update(a.data).digest('hex')}` : a.spec.digest;
    return {
      url: `${this.baseUrl}/repos/${this.owner}/${this.repo}/releases/assets/${a.id}`,
      id: a.id,
      node_id: `RA_${a.id}`,
      name: a.spec.name,
      label: null,
      uploader: { login: this.owner, id: 1 },
      content_type: a.spec.contentType ?? 'application/gzip',
      state: 'uploaded',
      size: a.data.length,
      digest,
      download_count: 0,
      created_at: rel.createdAt,
      updated_at: rel.createdAt,
      browser_download_url: `https://github.com/${this.owner}/${this.repo}/releases/download/${encodeURIComponent(rel.spec.tag)}/${encodeURIComponent(a.spec.name)}`,
    };
  }

  private visible(authorized: boolean): Rel[] {
    return this.rels.filter((r) => authorized || !r.spec.draft);
  }

  private onApi(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const auth = req.headers.authorization;
    const entry: LogEntry = {
      server: 'api',
      method: req.method ?? 'GET',
      path: url.pathname + url.search,
      status: 0,
      authorized: false,
      sentAuthorization: auth !== undefined,
      counted: false,
      at: performance.now(),
    };
    if (req.headers['if-none-match']) entry.ifNoneMatch = String(req.headers['if-none-match']);
    this.log.push(entry);
    if (this.hang) return; // keep the socket open, answer nothing

    const send = (status: number, body: string | Buffer | undefined, headers: Record<string, string> = {}, counted = true) => {
      entry.status = status;
      const b = entry.authorized ? this.buckets.token : this.buckets.anon;
      if (counted) {
        b.roll();
        b.used++;
        entry.counted = true;
      }
      const h: Record<string, string> = {
        date: new Date().toUTCString(),
        'x-ratelimit-limit': String(b.limit),
        'x-ratelimit-remaining': String(b.remaining),
        'x-ratelimit-used': String(Math.min(b.used, b.limit)),
        'x-ratelimit-reset': String(b.resetAt),
        'x-ratelimit-resource': 'core',
        'x-github-api-version-selected': '2022-11-28',
        'x-github-request-id': `FAKE:${this.log.length}`,
        vary: 'Accept, Authorization, Cookie, X-GitHub-OTP',
        'cache-control': entry.authorized ? 'private, max-age=60, s-maxage=60' : 'public, max-age=60, s-maxage=60',
        ...headers,
      };
      if (body !== undefined && !h['content-type']) h['content-type'] = 'application/json; charset=utf-8';
      res.writeHead(status, h);
      res.end(body);
    };
    const error = (status: number, message: string, headers: Record<string, string> = {}, counted = true) =>
      send(status, JSON.stringify({ message, documentation_url: 'https://docs.github.com/rest', status: String(status) }), headers, counted);

    if (!req.headers['user-agent']) {
      entry.status = 403;
      res.writeHead(403, { 'content-type': 'text/plain' });
      res.end('Request forbidden by administrative rules. Please make sure your request has a User-Agent header\n');
      return;
    }
    if (auth !== undefined) {
      const m = /^(?:token|bearer)\s+(.+)$/i.exec(auth);
      if (!this.token || !m || m[1] !== this.token) return error(401, 'Bad credentials', {}, false);
      entry.authorized = true;
    }
    const bucket = entry.authorized ? this.buckets.token : this.buckets.anon;
    bucket.roll();

    const fault = this.faults.shift();
    if (fault) {
      if (fault.exhaust) {
        bucket.used = bucket.limit;
        bucket.resetAt = Math.floor(Date.now() / 1000) + (fault.resetIn ?? 60);
      }
      const h: Record<string, string> = {};
      if (fault.retryAfter !== undefined) h['retry-after'] = String(fault.retryAfter);
      const msg =
        fault.message ??
        (fault.status >= 500 ? 'Server Error' : fault.exhaust ? 'API rate limit exceeded for user ID 1.' : 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.');
      return error(fault.status, msg, h, !fault.exhaust);
    }
    if (bucket.remaining === 0) return error(403, 'API rate limit exceeded for user ID 1.', {}, false);

    if (!url.pathname.startsWith(this.prefix + '/')) return error(404, 'Not Found');
    const p = url.pathname.slice(this.prefix.length);
    const repoPath = `/repos/${this.owner}/${this.repo}`;
    let list = false;
    let route: string;
    if (p === `${repoPath}/releases` || p === `/repositories/${this.repoId}/releases`) {
      list = true;
      route = '';
    } else if (p.startsWith(`${repoPath}/releases/`)) route = p.slice(`${repoPath}/releases/`.length);
    else if (p.startsWith(`${repoPath}/attestations/`)) {
      // GET /repos/{owner}/{repo}/attestations/{subject_digest}: 404 when there are none, as GitHub answers.
      const found = this.attestations.get(decodeURIComponent(p.slice(`${repoPath}/attestations/`.length)));
      if (!found) return error(404, 'Not Found');
      return send(200, JSON.stringify({ attestations: found.map((bundle) => ({ bundle, repository_id: this.repoId })) }));
    } else return error(404, 'Not Found');

    const upload = /^(\d+)\/assets$/.exec(route);
    if (req.method === 'POST' && upload) return this.upload(req, url, Number(upload[1]), entry.authorized, send, error);

    let status = 200;
    let payload: unknown;
    const extra: Record<string, string> = {};
    const rels = this.visible(entry.authorized);
    if (list) {
      if (this.malformedBody !== undefined) return send(200, this.malformedBody);
      const perPage = Math.min(100, Math.max(1, Number(url.searchParams.get('per_page') ?? 30) || 30));
      const page = Math.max(1, Number(url.searchParams.get('page') ?? 1) || 1);
      const pages = Math.max(1, Math.ceil(rels.length / perPage));
      payload = rels.slice((page - 1) * perPage, page * perPage).map((r) => this.json(r));
      if (pages > 1) {
        const at = (n: number) => `<${this.baseUrl}/repositories/${this.repoId}/releases?per_page=${perPage}&page=${n}>`;
        const links: string[] = [];
        if (page > 1) links.push(`${at(page - 1)}; rel="prev"`);
        if (page < pages) links.push(`${at(page + 1)}; rel="next"`);
        links.push(`${at(pages)}; rel="last"`);
        if (page > 1) links.push(`${at(1)}; rel="first"`);
        extra.link = links.join(', ');
      }
    } else if (route === 'latest') {
      const r = rels.find((x) => !x.spec.draft && !x.spec.prerelease);
      if (!r) return error(404, 'Not Found');
      payload = this.json(r);
    } else if (route.startsWith('tags/')) {
      const tag = decodeURIComponent(route.slice(5));
      const r = rels.find((x) => x.spec.tag === tag && !x.spec.draft);
      if (!r) return error(404, 'Not Found');
      payload = this.json(r);
    } else if (/^assets\/\d+$/.test(route)) {
      const id = Number(route.slice(7));
      const r = rels.find((x) => x.assets.some((a) => a.id === id));
      const a = r?.assets.find((x) => x.id === id);
      if (!r || !a) return error(404, 'Not Found');
      if (/application\/octet-stream/.test(String(req.headers.accept ?? ''))) {
        const loc = `${this.storageOrigin}/github-production-release-asset/${this.repoId}/${a.id}?X-Amz-Signature=fake&response-content-disposition=attachment%3B%20filename%3D${encodeURIComponent(a.spec.name)}`;
        return send(302, '', { location: loc, 'content-type': 'text/html;charset=utf-8' });
      }
      payload = this.assetJson(a, r);
    } else {
      status = 404;
      payload = { message: 'Not Found' };
    }
    const body = JSON.stringify(payload);
    const etag = `"${createHash('sha256').update(body).update(entry.authorized ? 'auth' : 'anon').digest('hex')}"`;
    extra.etag = etag;
    if (status === 200 && req.headers['if-none-match'] === etag) {
      // A conditional hit made with a token costs nothing; an anonymous one still counts.
      return send(304, undefined, extra, !entry.authorized);
    }
    send(status, body, extra);
  }

  /** POST /repos/{o}/{r}/releases/{id}/assets?name=: the token only (401 without, 403 when denied); 422 for a name taken, as GitHub answers. */
  private upload(req: http.IncomingMessage, url: URL, releaseId: number, authorized: boolean, send: (s: number, b: string) => void, error: (s: number, m: string) => void): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (!authorized) return error(401, 'Requires authentication');
      if (this.uploadDenied) return error(403, 'Resource not accessible by personal access token');
      const rel = this.rels.find((r) => r.id === releaseId);
      if (!rel) return error(404, 'Not Found');
      const name = url.searchParams.get('name') ?? '';
      if (!name) return error(422, 'Validation Failed');
      if (rel.assets.some((a) => a.spec.name === name)) {
        return send(422, JSON.stringify({ message: 'Validation Failed', errors: [{ resource: 'ReleaseAsset', code: 'already_exists', field: 'name' }], status: '422' }));
      }
      const data = Buffer.concat(chunks);
      const asset: Asset = { id: this.nextId++, spec: { name, data, contentType: String(req.headers['content-type'] ?? 'application/octet-stream') }, data };
      rel.assets.push(asset);
      this.uploads.push({ release: rel.spec.tag, name, data });
      send(201, JSON.stringify(this.assetJson(asset, rel)));
    });
  }

  /** Assets uploaded through the API, in order. */
  readonly uploads: { release: string; name: string; data: Buffer }[] = [];

  /** Add an asset to release `tag` as if uploaded (a test's own garbage verdict). */
  addAsset(tag: string, spec: FakeAssetSpec): void {
    const rel = this.rels.find((r) => r.spec.tag === tag);
    if (!rel) throw new Error(`no release ${tag}`);
    rel.assets.push({ id: this.nextId++, spec, data: Buffer.from(spec.data) });
  }

  // ---- storage host ----

  private onStorage(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const entry: LogEntry = {
      server: 'storage',
      method: req.method ?? 'GET',
      path: url.pathname + url.search,
      status: 0,
      authorized: false,
      sentAuthorization: req.headers.authorization !== undefined,
      counted: false,
      at: performance.now(),
    };
    this.log.push(entry);
    const end = (status: number, body: string | Buffer, type: string) => {
      entry.status = status;
      res.writeHead(status, { 'content-type': type, 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
    };
    if (entry.sentAuthorization) {
      // What S3 says when a presigned URL is also given an Authorization header.
      return end(400, '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>', 'application/xml');
    }
    const fault = this.storageFaults.shift();
    if (fault) return end(fault, '<Error><Code>InternalError</Code></Error>', 'application/xml');
    const m = /^\/github-production-release-asset\/\d+\/(\d+)$/.exec(url.pathname);
    const id = m ? Number(m[1]) : -1;
    const a = this.rels.flatMap((r) => r.assets).find((x) => x.id === id);
    if (!a || url.searchParams.get('X-Amz-Signature') !== 'fake') return end(403, '<Error><Code>AccessDenied</Code></Error>', 'application/xml');
    const bytes = a.spec.served ?? a.data;
    if (this.stallStorageAfter !== undefined) {
      entry.status = 200;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) });
      res.write(bytes.subarray(0, this.stallStorageAfter));
      return; // the rest never comes; close() ends the socket
    }
    if (this.trickleStorage) {
      const { bytes: n, everyMs } = this.trickleStorage;
      entry.status = 200;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) });
      let off = 0;
      const tick = setInterval(() => {
        if (res.destroyed || off >= bytes.length) {
          clearInterval(tick);
          if (!res.destroyed) res.end();
          return;
        }
        res.write(bytes.subarray(off, off + n));
        off += n;
      }, everyMs);
      res.on('close', () => clearInterval(tick));
      return;
    }
    end(200, bytes, 'application/octet-stream');
  }
}

function listen(s: http.Server): Promise<void> {
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve());
  });
}
