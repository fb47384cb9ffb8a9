// GitHub Releases as a release source. @octokit/rest makes the API calls; one
// request hook around them adds what polling a rate-limited API needs:
// conditional requests (ETag per URL, a 304 answers from the cache and costs
// no quota with a token), the rate-limit gate (no request while the window is
// exhausted or a Retry-After runs), bounded retries with jittered backoff, and
// a time-out on every request. Assets are downloaded through their API URL and
// the storage redirect is followed by hand, so that the token never leaves the
// API's origin.

import fs from 'node:fs';
import path from 'node:path';
import { AsyncLocalStorage } from 'node:async_hooks';
import { Octokit } from '@octokit/rest';
import { RequestError } from '@octokit/request-error';
import { logger } from '../../common/log.js';
import { UpdateError, type FetchedRelease, type FetchOptions, type ListResult, type Release, type ReleaseSource } from '../types.js';
import { downloadVerified, ensureFreeSpace } from '../download.js';
import { extractArchive, installBareFile } from '../extract.js';
import type { VersionStore } from '../store.js';
import { assetKind, archAliases, selectAsset, type AssetInfo, type Platform } from '../github/assets.js';
import { checksumAssets, lookupChecksum, parseChecksumFile } from '../github/checksums.js';
import { decide, type Headers, type RateLimitState, type RetryPolicy } from '../github/ratelimit.js';
import { checkedRelease, parseRelease, parseReleaseList, type GhRelease } from '../github/releases.js';
import { RateGate, messageOf, nowMs, type OctoOptions, type OctoResponse } from '../github/gate.js';
import { openAsset, readSmallAssetBytes, type AssetContext, type GitHubAssetPort } from '../github/asset-stream.js';
import { parseLocator, releaseOf, type Locator } from '../github/locator.js';
import { moltVersion } from '../../common/version.js';
import { removeTree } from '../rmtree.js';
import { apiError } from '../github/api-error.js';
import { feedFile, trustGate, type ArtifactGate } from '../trust/gate.js';
import { boundedFetch } from '../github/bounded-fetch.js';
import type { ReleaseSignatures } from '../trust/release.js';
import { assetSignatures, attestationBundles, MAX_ATTESTATIONS, smallAssets, type SmallAssetReader } from '../github/signatures.js';

const log = logger('github');

export interface GitHubSourceOptions {
  /** "owner/name" (MOLT_GITHUB, or GH_USER + GH_REPO). */
  repo: string;
  /** GITHUB_TOKEN; sent only to the API's origin, never logged. */
  token?: string;
  /** MOLT_GITHUB_API: https://api.github.com by default; GitHub Enterprise Server is https://HOST/api/v3. */
  baseUrl?: string;
  /** MOLT_ASSET: a glob with {os}, {arch} and {version}; default: the single .tar.gz/.tgz for this machine. */
  asset?: string;
  /** MOLT_REQUIRE_CHECKSUM=1: refuse an asset with neither a digest field nor a checksum asset. */
  requireChecksum?: boolean;
  /** The version store, for its blob cache. */
  store: VersionStore;
  /** Defaults to this machine (process.platform / process.arch). */
  platform?: Platform;
  /** Releases per page (GitHub allows up to 100). */
  perPage?: number;
  /** Pages read per list(); releases come newest first, so older pages matter little. */
  maxPages?: number;
  /** Time-out of each API request and of the wait for a download's response headers. */
  timeoutMs?: number;
  /** A download that delivers no byte for this long is abandoned. */
  idleTimeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** File name for a bare (non-archive) binary asset inside the release; default: the asset's name. */
  binaryName?: string;
  /** Bound on an asset's size and on its extracted size. */
  maxBytes?: number;
  maxEntries?: number;
  /** Randomness for jitter (tests pin it). */
  random?: () => number;
}

interface CachedResponse {
  etag: string;
  headers: Record<string, string>;
  data: unknown;
}

interface CallContext {
  signal?: AbortSignal;
  fresh: number;
  notModified: number;
}

const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseMs: 1000, capMs: 30_000, maxInlineWaitMs: 10_000 };
const ETAG_CACHE_MAX = 64;

export class GitHubSource implements ReleaseSource {
  readonly description: string;
  readonly checksSignatures = true;
  readonly owner: string;
  readonly name: string;
  private readonly repo: string;
  private readonly octokit: Octokit;
  private readonly apiOrigin: string;
  private readonly token?: string;
  private readonly platform: Platform;
  private readonly retry: RetryPolicy;
  private readonly timeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly random: () => number;
  private readonly etags = new Map<string, CachedResponse>();
  private readonly als = new AsyncLocalStorage<CallContext>();
  private readonly gate: RateGate;

  constructor(private readonly opts: GitHubSourceOptions) {
    const m = /^([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))\/([A-Za-z0-9._-]{1,100})$/.exec(opts.repo.trim());
    if (!m || m[2] === '.' || m[2] === '..') throw new UpdateError(`MOLT_GITHUB ${JSON.stringify(opts.repo)} is not owner/repo`, 'config');
    this.owner = m[1]!;
    this.name = m[2]!;
    this.repo = `${this.owner}/${this.name}`;
    this.gate = new RateGate(this.repo);
    const base = (opts.baseUrl ?? 'https://api.github.com').replace(/\/+$/, '');
    let u: URL;
    try {
      u = new URL(base);
    } catch {
      throw new UpdateError(`MOLT_GITHUB_API ${JSON.stringify(opts.baseUrl)} is not a URL`, 'config');
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new UpdateError(`MOLT_GITHUB_API ${JSON.stringify(opts.baseUrl)} is not http(s)`, 'config');
    if (u.username || u.password) throw new UpdateError(`MOLT_GITHUB_API must not hold credentials; use GITHUB_TOKEN`, 'config');
    this.apiOrigin = u.origin;
    this.token = opts.token || undefined;
    this.platform = opts.platform ?? { os: process.platform, arch: process.arch };
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
    this.random = opts.random ?? Math.random;
    this.description = `github ${this.repo}` + (opts.baseUrl ? ` at ${base}` : '');
    this.octokit = new Octokit({
      auth: this.token,
      baseUrl: base,
      userAgent: `molt/${moltVersion()}`,
      request: { fetch: boundedFetch() },
      // Octokit's request log prints every 304 as an error; molt logs its own events.
      log: { debug: () => {}, info: () => {}, warn: (m: string) => log.debug('octokit', { msg: m }), error: () => {} },
    });
    this.octokit.hook.wrap('request', (request, options) => this.hooked(request as (o: unknown) => Promise<OctoResponse>, options as unknown as OctoOptions));
  }

  /** Rate-limit state from the last API response, for status and metrics. */
  rateLimit(): Readonly<RateLimitState> {
    return this.gate.state();
  }

  /** Reading and uploading release assets for the fleet's verdicts (fleet/github-board.ts), through this source's limits. */
  fleetPort(): GitHubAssetPort {
    return {
      repo: this.repo,
      read: (a, tag, signal) => readSmallAssetBytes(this.assetContext(), a, tag, signal, 'verdict asset'),
      upload: async (uploadUrl, name, bytes, signal) => {
        await this.als.run({ signal, fresh: 0, notModified: 0 }, () =>
          this.octokit.request({ method: 'POST', url: uploadUrl, name, data: bytes, headers: { 'content-type': 'application/json', 'content-length': bytes.length } }),
        );
      },
    };
  }

  private assetContext(): AssetContext {
    return { repo: this.repo, apiOrigin: this.apiOrigin, token: this.token, timeoutMs: this.timeoutMs, idleTimeoutMs: this.idleTimeoutMs, retry: this.retry, random: this.random, gate: this.gate };
  }

  async list(opts: { signal?: AbortSignal } = {}): Promise<ListResult> {
    const ctx: CallContext = { signal: opts.signal, fresh: 0, notModified: 0 };
    const where = `GitHub ${this.repo} releases`;
    const found: GhRelease[] = [];
    await this.als.run(ctx, async () => {
      const pages = this.octokit.paginate.iterator(this.octokit.rest.repos.listReleases, {
        owner: this.owner,
        repo: this.name,
        per_page: Math.min(100, Math.max(1, this.opts.perPage ?? 100)),
      });
      let n = 0;
      for await (const page of pages) {
        found.push(...checkedRelease(() => parseReleaseList(page.data, where)));
        if (++n >= (this.opts.maxPages ?? 10)) break;
      }
    });
    // "v1.2.0" and "1.2.0" would land in the same versions/ directory: the newest wins.
    const seen = new Set<string>();
    const releases = found.flatMap((r) => this.toRelease(r)).filter((r) => {
      if (!seen.has(r.version)) return seen.add(r.version);
      log.warn('tag skipped', { repo: this.repo, tag: r.tag, why: `a newer release already has version ${r.version}` });
      return false;
    });
    const notModified = ctx.fresh === 0 && ctx.notModified > 0;
    log.debug('listed', { repo: this.repo, releases: releases.length, notModified, remaining: this.gate.state().remaining });
    return { releases, notModified };
  }

  /** The newest full release (GitHub's /releases/latest: no drafts, no prereleases), or undefined when there is none. */
  async latest(opts: { signal?: AbortSignal } = {}): Promise<Release | undefined> {
    return this.one(() => this.octokit.rest.repos.getLatestRelease({ owner: this.owner, repo: this.name }), 'latest release', opts.signal);
  }

  /** The release with this tag, or undefined when there is none. */
  async byTag(tag: string, opts: { signal?: AbortSignal } = {}): Promise<Release | undefined> {
    return this.one(() => this.octokit.rest.repos.getReleaseByTag({ owner: this.owner, repo: this.name, tag }), `release ${tag}`, opts.signal);
  }

  private async one(call: () => Promise<{ data: unknown }>, what: string, signal?: AbortSignal): Promise<Release | undefined> {
    const ctx: CallContext = { signal, fresh: 0, notModified: 0 };
    try {
      const res = await this.als.run(ctx, call);
      const r = checkedRelease(() => parseRelease(res.data, `GitHub ${this.repo} ${what}`));
      return this.toRelease(r)[0];
    } catch (e) {
      if (e instanceof UpdateError && e.code === 'not-found') return undefined;
      throw e;
    }
  }

  /** GitHub artifact attestations (Sigstore bundles) for `digest`; none when GitHub has none (404). */
  private async attestations(digest: string, signal?: AbortSignal): Promise<Uint8Array[]> {
    const ctx: CallContext = { signal, fresh: 0, notModified: 0 };
    const get = () => this.octokit.request('GET /repos/{owner}/{repo}/attestations/{subject_digest}', { owner: this.owner, repo: this.name, subject_digest: digest, per_page: MAX_ATTESTATIONS });
    try {
      return attestationBundles((await this.als.run(ctx, get)).data);
    } catch (e) {
      if (e instanceof UpdateError && e.code === 'not-found') return [];
      throw e;
    }
  }

  private toRelease(r: GhRelease): Release[] {
    const rel = releaseOf(r, this.repo, this.platform, this.opts.asset);
    if (typeof rel === 'string') log.warn('tag skipped', { repo: this.repo, tag: r.tag, why: rel });
    return typeof rel === 'object' ? [rel] : [];
  }

  // ---- the request hook: gate, conditional request, time-out, retries ----

  private async hooked(request: (o: unknown) => Promise<OctoResponse>, options: OctoOptions): Promise<OctoResponse> {
    const ctx = this.als.getStore() ?? { fresh: 0, notModified: 0 };
    const parsed = this.octokit.request.endpoint.parse(options as never) as { method: string; url: string };
    const key = `${parsed.method} ${parsed.url}`;
    const shown = `${parsed.method} ${parsed.url.replace(this.apiOrigin, '')}`;
    const cached = parsed.method === 'GET' ? this.etags.get(key) : undefined;
    for (let attempt = 0; ; attempt++) {
      this.gate.gate();
      const timeout = AbortSignal.timeout(this.timeoutMs);
      const signal = ctx.signal ? AbortSignal.any([ctx.signal, timeout]) : timeout;
      // before-after-hook binds the same options object through the whole chain: change it in place.
      if (cached) options.headers['if-none-match'] = cached.etag;
      options.request = { ...options.request, signal };
      let status: number;
      let rh: Headers = {};
      let body = '';
      try {
        const res = await request(options);
        this.gate.note(res.headers);
        if (typeof res.data !== 'object' || res.data === null) {
          throw new UpdateError(`malformed release JSON from GitHub ${this.repo}: ${shown} answered ${res.data === null ? 'null' : `non-JSON ${JSON.stringify(String(res.data).slice(0, 40))}`}`, 'bad-input');
        }
        ctx.fresh++;
        const etag = res.headers.etag;
        if (parsed.method === 'GET' && typeof etag === 'string') this.remember(key, { etag, headers: { ...(res.headers as Record<string, string>) }, data: res.data });
        return res;
      } catch (e) {
        if (e instanceof UpdateError) throw e;
        if (e instanceof RequestError && e.cause instanceof UpdateError) throw e.cause;
        if (ctx.signal?.aborted) throw new UpdateError(`GitHub ${this.repo}: ${shown} aborted`, 'aborted');
        const re = e instanceof RequestError ? e : undefined;
        if (re?.status === 304 && cached) {
          this.gate.note(re.response?.headers as Headers);
          ctx.notModified++;
          // Serve the page from the cache, Link header included, so pagination goes on.
          return { status: 200, url: parsed.url, headers: { ...cached.headers }, data: structuredClone(cached.data) };
        }
        status = timeout.aborted || !re?.response ? 0 : re.status;
        rh = (re?.response?.headers ?? {}) as Headers;
        body = messageOf(re?.response?.data);
        this.gate.note(rh);
        const d = decide(status, rh, body, attempt, this.retry, nowMs(), this.random());
        if (d.action === 'retry') {
          log.info('retrying', { repo: this.repo, request: shown, status: status || (timeout.aborted ? 'timeout' : 'network'), attempt: attempt + 1, delay_ms: d.delayMs });
          await this.gate.waitOut(rh, d.delayMs, ctx.signal).catch(() => {
            throw new UpdateError(`GitHub ${this.repo}: ${shown} aborted`, 'aborted');
          });
          continue;
        }
        if (d.action === 'rate-limited') {
          this.gate.shut(d.waitMs);
          log.warn('rate limited', { repo: this.repo, why: d.why, retry_after_s: Math.ceil(d.waitMs / 1000) });
          throw new UpdateError(`GitHub rate limit for ${this.repo} (${d.why}): retry in ${Math.ceil(d.waitMs / 1000)}s`, 'rate-limited', Math.ceil(d.waitMs));
        }
        throw apiError({ repo: this.repo, timeoutMs: this.timeoutMs }, status, shown, body, attempt + 1, timeout.aborted, re);
      }
    }
  }

  private remember(key: string, v: CachedResponse): void {
    this.etags.delete(key);
    this.etags.set(key, v);
    if (this.etags.size > ETAG_CACHE_MAX) this.etags.delete(this.etags.keys().next().value!);
  }

  // ---- fetch: select, verify, download, extract ----

  async fetch(release: Release, stagingRoot: string, opts: FetchOptions = {}): Promise<FetchedRelease> {
    const loc = parseLocator(release.locator, this.repo);
    const sel = selectAsset(loc.assets, this.platform, release.version, this.opts.asset);
    const plat = `${this.platform.os}/${archAliases(this.platform.arch)[0]}`;
    if (!sel.ok) {
      if (sel.reason === 'none') {
        const names = loc.assets.map((a) => a.name).join(', ') || 'none';
        throw new UpdateError(`release ${loc.tag} of ${this.repo} has no asset for ${plat} matching ${JSON.stringify(sel.pattern)} (assets: ${names})`, 'not-found');
      }
      throw new UpdateError(`release ${loc.tag} of ${this.repo} has several assets for ${plat} (${sel.candidates.join(', ')}); choose one with MOLT_ASSET`, 'config');
    }
    const asset = sel.asset;
    const kind = assetKind(asset.name);
    if (kind === 'unsupported') throw new UpdateError(`asset ${asset.name} of release ${loc.tag}: unsupported format (want .tar.gz, .tgz, .tar or a bare executable)`, 'bad-input');
    if (this.opts.maxBytes !== undefined && asset.size > this.opts.maxBytes) {
      throw new UpdateError(`asset ${asset.name} of release ${loc.tag} is ${asset.size} bytes, over the limit of ${this.opts.maxBytes}`, 'hostile-archive');
    }

    const verified: string[] = [];
    const small = smallAssets(this.assetContext(), loc.tag, opts.signal);
    // Signatures before the asset's first byte (the hasher computes only what they need), read beside the checksum.
    const sigsP = opts.trust?.required ? assetSignatures(small, loc.assets, asset.name) : Promise.resolve<ReleaseSignatures>({});
    sigsP.catch(() => undefined); // awaited below; not unhandled when the checksum fails first
    const expected = asset.digest ?? (await this.checksumFor(asset, loc, verified, small));
    if (!expected) {
      if (this.opts.requireChecksum) {
        throw new UpdateError(`refusing unverifiable asset ${asset.name} of release ${loc.tag}: no digest field and no checksum asset lists it (MOLT_REQUIRE_CHECKSUM=1)`, 'integrity');
      }
      log.warn('unverified asset', { repo: this.repo, tag: loc.tag, asset: asset.name, why: 'no digest field and no checksum asset' });
    }

    const [sigs, attested] = await Promise.all([sigsP, opts.trust?.identity && expected ? this.attestations(expected, opts.signal) : []]);
    if (attested.length) sigs.bundles = [...(sigs.bundles ?? []), ...attested];
    const work = await fs.promises.mkdtemp(path.join(stagingRoot, `github-${release.version}-`));
    const gate = trustGate(opts.trust, asset.name, release.version, sigs);
    // A verified asset is downloaded straight into the blob cache (downloadVerified renames it
    // there only once digest and size match); an unverified one only into staging, then removed.
    const blob = expected ? this.opts.store.cachePath(expected) : `${work}.blob`;
    let downloaded = 0;
    try {
      let file = expected ? await this.opts.store.cached(expected) : undefined;
      // The digest of the bytes the trust check saw: the cache's name (verified when stored), or the download's.
      let digest = expected;
      if (file) {
        log.info('cache hit', { asset: asset.name, digest: expected });
        await feedFile(gate, file, opts.signal);
      } else {
        await ensureFreeSpace(stagingRoot, kind === 'tar' ? asset.size * 3 : asset.size * 2);
        const got = await this.download(asset, loc, blob, expected, opts, gate);
        downloaded = got.size;
        digest = got.digest;
        file = blob;
      }
      if (expected) verified.unshift(expected);
      const trustedBy = await gate.finish(digest!);
      const limits = { maxBytes: this.opts.maxBytes, maxEntries: this.opts.maxEntries, signal: opts.signal };
      if (kind === 'tar') await extractArchive(file, work, limits);
      else await installBareFile(file, work, this.opts.binaryName ?? asset.name);
      log.info('fetched', { repo: this.repo, tag: loc.tag, asset: asset.name, bytes: downloaded, verified: expected ? 'yes' : 'no', ...(trustedBy ? { signed_by: trustedBy } : {}) });
      return { release, dir: work, downloaded, verified, trustedBy };
    } catch (e) {
      gate.close();
      await removeTree(work);
      throw e;
    } finally {
      if (!expected) await fs.promises.rm(blob, { force: true });
      await fs.promises.rm(`${blob}.part`, { force: true });
    }
  }

  /** The asset's sha256 from a checksum asset of the same release, or undefined. */
  private async checksumFor(asset: AssetInfo, loc: Locator, verified: string[], read: SmallAssetReader): Promise<string | undefined> {
    for (const src of checksumAssets(loc.assets, asset.name)) {
      const text = (await read(src.asset, 'checksum asset')).toString('utf8');
      if (src.asset.digest) verified.push(src.asset.digest);
      const sum = lookupChecksum(parseChecksumFile(text), asset.name, src.perAsset);
      if (sum) {
        log.debug('checksum found', { asset: asset.name, in: src.asset.name });
        return sum;
      }
    }
    return undefined;
  }

  private async download(a: AssetInfo, loc: Locator, dest: string, expected: string | undefined, opts: FetchOptions, gate: ArtifactGate): Promise<{ digest: string; size: number }> {
    const { body, done } = await openAsset(this.assetContext(), a, loc.tag, opts.signal);
    try {
      const { signal, onProgress } = opts;
      return await downloadVerified({ body, dest, expectedDigest: expected, expectedSize: a.size, maxBytes: this.opts.maxBytes, signal, onProgress, onChunk: gate.onChunk });
    } catch (e) {
      const mapped = done(e);
      // The downloader names the file (a cache path); say which asset it was.
      if (mapped === e && e instanceof UpdateError) throw new UpdateError(`asset ${a.name} of release ${loc.tag}: ${e.message}`, e.code, e.retryAfterMs);
      throw mapped;
    } finally {
      done();
    }
  }
}
