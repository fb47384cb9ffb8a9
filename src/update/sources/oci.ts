// Releases from an OCI registry. With a tag, the tag is followed: each new manifest digest is a
// new release (version from the org.opencontainers.image.version annotation, else sha-<12 hex>).
// Without a tag, every semver tag is a release. fetch() pulls exactly the digest it was given,
// streams every blob through its digest and size, and assembles the release tree in staging.
import fs from 'node:fs';
import path from 'node:path';
import semver from 'semver';
import { logger } from '../../common/log.js';
import { fsyncDir } from '../../common/atomic.js';
import { downloadVerified, ensureFreeSpace } from '../download.js';
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, extractArchive, installBareFile } from '../extract.js';
import { checkTreeSymlinks } from '../copytree.js';
import { UpdateError, type FetchOptions, type FetchedRelease, type ListResult, type Release, type ReleaseSource } from '../types.js';
import { RegistryClient, isTransient, type ClientOptions, type FetchedManifest } from '../oci/client.js';
import { sleep, retryDelayMs } from '../oci/http.js';
import {
  ANN,
  choosePlatform,
  digestLabel,
  looksLikeTar,
  ociArch,
  planLayer,
  versionFromLabel,
  type Descriptor,
  type ImageManifest,
  type LayerPlan,
} from '../oci/manifest.js';
import { DIGEST_RE, formatReference, parseReference, type OciReference } from '../oci/reference.js';
import { removeTree } from '../rmtree.js';
import { repositoryName } from '../oci/referrers.js';
import { discoverSignatures } from '../oci/signatures.js';
import type { TrustConfig } from '../trust/config.js';
import { TrustRefusal } from '../trust/gate.js';
import { decideOciTrust } from '../trust/oci.js';

const log = logger('oci');

/** The part of the version store the source needs: a cache of blobs keyed by verified digest. */
export interface BlobCache {
  cachePath(digest: string): string;
  cached(digest: string): Promise<string | undefined>;
}

export interface OciSourceOptions extends ClientOptions {
  /** Plain http for a non-loopback registry (MOLT_OCI_INSECURE=1). */
  insecure?: boolean;
  cache?: BlobCache;
  /** The platform an image index is resolved to (default linux/<this machine>). */
  platform?: { os: string; architecture: string; variant?: string };
  /** Page size asked of the tag list. */
  pageSize?: number;
  /** Whole-blob retries after a network fault mid-stream. */
  blobRetries?: number;
  extractLimits?: { maxBytes?: number; maxEntries?: number };
}

export interface OciLocator extends Record<string, unknown> {
  registry: string;
  repository: string;
  tag?: string;
  /** The manifest (or index) digest that was checked; fetch pulls exactly this. */
  digest?: string;
}

/** The platform this process runs on, in OCI words (arm variant from Node's build config). */
export function hostPlatform(): { os: string; architecture: string; variant?: string } {
  const architecture = ociArch(process.arch);
  const armv = (process.config.variables as Record<string, unknown>).arm_version;
  if (architecture === 'arm' && armv !== undefined) return { os: 'linux', architecture, variant: `v${String(armv)}` };
  if (architecture === 'arm64') return { os: 'linux', architecture, variant: 'v8' };
  return { os: 'linux', architecture };
}

/** Tags that are releases: semver, with or without a leading v. Returns the version label or undefined. */
export function semverTagVersion(tag: string): string | undefined {
  const v = tag.replace(/^v/, '');
  return semver.valid(v) === v ? v : undefined;
}

/**
 * The version a manifest states: its (or, for an index, the chosen entry's) version annotation,
 * else the digest's short form. Covered by the manifest digest, so a signature vouches for it.
 */
export function statedVersion(top: FetchedManifest, leaf?: FetchedManifest): string {
  const ann = { ...(leaf?.manifest.kind === 'manifest' ? leaf.manifest.annotations : {}), ...top.manifest.annotations };
  return versionFromLabel(ann[ANN.version]) ?? digestLabel(top.digest);
}

/** Build the release list from tags: newest first; `1.2.3` wins over `v1.2.3` for the same version. */
export function releasesFromTags(tags: string[], ref: OciReference): Release[] {
  const byVersion = new Map<string, string>();
  for (const tag of tags) {
    const v = semverTagVersion(tag);
    if (!v) continue;
    const had = byVersion.get(v);
    if (had === undefined || (had.startsWith('v') && !tag.startsWith('v'))) byVersion.set(v, tag);
  }
  return [...byVersion.entries()]
    .sort((a, b) => semver.rcompare(a[0], b[0]))
    .map(([version, tag]) => ({
      version,
      tag,
      prerelease: semver.prerelease(version) !== null,
      locator: { registry: ref.registry, repository: ref.repository, tag } satisfies OciLocator,
    }));
}

export class OciSource implements ReleaseSource {
  readonly description: string;
  readonly checksSignatures = true;
  readonly ref: OciReference;
  readonly client: RegistryClient;
  private readonly opts: OciSourceOptions;
  private last: { digest: string; release: Release } | undefined;
  private lastTags: string | undefined;

  constructor(ref: string | OciReference, opts: OciSourceOptions = {}) {
    const env = opts.env ?? process.env;
    const insecure = opts.insecure ?? env.MOLT_OCI_INSECURE === '1';
    this.ref = typeof ref === 'string' ? parseReference(ref, { insecure }) : ref;
    if (this.ref.digest) throw new UpdateError(`MOLT_OCI '${formatReference(this.ref)}' pins a digest; give a tag to follow or none for semver tags`, 'config');
    this.opts = opts;
    this.client = new RegistryClient(this.ref, opts);
    this.description = `oci ${formatReference(this.ref)}`;
  }

  async list(opts: { signal?: AbortSignal } = {}): Promise<ListResult> {
    return this.ref.tag ? this.listFollowed(this.ref.tag, opts.signal) : this.listSemver(opts.signal);
  }

  /** A HEAD per poll; the manifest is read only when the digest moved. */
  private async listFollowed(tag: string, signal?: AbortSignal): Promise<ListResult> {
    const head = await this.client.headManifest(tag, signal);
    if (this.last && this.last.digest === head.digest) return { releases: [this.last.release], notModified: true };
    const top = await this.client.getManifest(head.digest, signal);
    const leaf = top.manifest.kind === 'index' ? await this.resolveIndex(top, signal) : undefined;
    const ann = { ...(leaf?.manifest.kind === 'manifest' ? leaf.manifest.annotations : {}), ...top.manifest.annotations };
    const version = statedVersion(top, leaf);
    const release: Release = {
      version,
      tag,
      prerelease: semver.valid(version) !== null && semver.prerelease(version) !== null,
      digest: top.digest,
      locator: { registry: this.ref.registry, repository: this.ref.repository, tag, digest: top.digest } satisfies OciLocator,
      ...(ann[ANN.created] ? { publishedAt: ann[ANN.created] } : {}),
    };
    if (this.last) log.info('tag moved', { ref: formatReference(this.ref), from: this.last.digest, to: top.digest, version });
    this.last = { digest: top.digest, release };
    return { releases: [release], notModified: false };
  }

  private async listSemver(signal?: AbortSignal): Promise<ListResult> {
    const tags = await this.client.listTags(signal, this.opts.pageSize);
    const releases = releasesFromTags(tags, this.ref);
    const key = releases.map((r) => r.tag).join('\n');
    const notModified = this.lastTags === key;
    this.lastTags = key;
    return { releases, notModified };
  }

  private async resolveIndex(top: FetchedManifest, signal?: AbortSignal): Promise<FetchedManifest> {
    if (top.manifest.kind !== 'index') return top;
    const want = this.opts.platform ?? hostPlatform();
    const pick = choosePlatform(top.manifest, want);
    if (!pick) {
      const have = top.manifest.manifests.map((d) => (d.platform ? `${d.platform.os}/${d.platform.architecture}${d.platform.variant ? '/' + d.platform.variant : ''}` : '?')).join(', ');
      throw new UpdateError(`${formatReference(this.ref)}@${top.digest}: no ${want.os}/${want.architecture} manifest in the index (has ${have || 'none'})`, 'not-found');
    }
    const leaf = await this.client.getManifest(pick.digest, signal);
    if (leaf.manifest.kind !== 'manifest') throw new UpdateError(`${formatReference(this.ref)}: index entry ${pick.digest} is itself an index`, 'bad-input');
    return leaf;
  }

  async fetch(release: Release, stagingRoot: string, opts: FetchOptions = {}): Promise<FetchedRelease> {
    const { signal } = opts;
    const loc = release.locator as Partial<OciLocator>;
    const reference = [loc.digest, release.digest, loc.tag, release.tag].find((r): r is string => typeof r === 'string' && r !== '');
    if (!reference) throw new UpdateError(`release ${release.version} has no tag or digest to fetch`, 'bad-input');
    const top = await this.client.getManifest(reference, signal);
    if (release.digest && DIGEST_RE.test(release.digest) && top.digest !== release.digest) {
      throw new UpdateError(`${formatReference(this.ref)}: manifest ${top.digest} is not the checked ${release.digest}`, 'integrity');
    }
    const leaf = await this.resolveIndex(top, signal);
    // Before a byte of any layer: a release no trusted key signed is not downloaded.
    const trustedBy = opts.trust?.required ? await this.checkSignatures(opts.trust, release, top, leaf, signal) : null;
    const manifest = leaf.manifest as ImageManifest;
    if (manifest.layers.length === 0) throw new UpdateError(`${formatReference(this.ref)}@${leaf.digest}: manifest has no layers`, 'bad-input');
    // Every layer is judged before a byte is downloaded: a bad one refuses the release whole.
    const plans = manifest.layers.map((d) => ({ d, plan: planLayer(d) }));
    const names = plans.flatMap((p) => (p.plan.action === 'file' ? [p.plan.name] : []));
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup) throw new UpdateError(`${formatReference(this.ref)}: two layers are titled '${dup}'`, 'bad-input');

    await fs.promises.mkdir(stagingRoot, { recursive: true });
    const total = manifest.layers.reduce((n, d) => n + d.size, 0);
    // The limits hold for the release as a whole, not per layer: nine layers are not nine allowances.
    const maxBytes = this.opts.extractLimits?.maxBytes ?? DEFAULT_MAX_BYTES;
    const maxEntries = this.opts.extractLimits?.maxEntries ?? DEFAULT_MAX_ENTRIES;
    if (total > maxBytes) {
      throw new UpdateError(`hostile release ${formatReference(this.ref)}@${leaf.digest}: layers of ${total} bytes exceed the limit of ${maxBytes} bytes`, 'hostile-archive');
    }
    const cache = this.opts.cache;
    // The store re-hashes a cached blob before trusting it; do that once per layer.
    const hits = new Map<string, string>();
    const uncached: Descriptor[] = [];
    for (const d of manifest.layers) {
      const hit = cache && !hits.has(d.digest) ? await cache.cached(d.digest) : hits.get(d.digest);
      if (hit) hits.set(d.digest, hit);
      else uncached.push(d);
    }
    const need = uncached.reduce((n, d) => n + d.size, 0);
    if (cache) {
      const cacheDir = path.dirname(cache.cachePath(manifest.layers[0]!.digest));
      await fs.promises.mkdir(cacheDir, { recursive: true });
      await ensureFreeSpace(cacheDir, need);
      await ensureFreeSpace(stagingRoot, total);
    } else await ensureFreeSpace(stagingRoot, need + total);

    const label = release.version.replace(/[^A-Za-z0-9._+-]/g, '_');
    const dir = await fs.promises.mkdtemp(path.join(stagingRoot, `oci-${label}-`));
    const work = await fs.promises.mkdtemp(path.join(stagingRoot, `.oci-work-`));
    let downloaded = 0;
    let doneBytes = 0;
    const used = { bytes: 0, entries: 0 };
    try {
      for (const [i, { d, plan }] of plans.entries()) {
        const hit = hits.get(d.digest);
        const got = hit ? { file: hit, downloaded: 0 } : await this.blob(d, work, signal, (b) => opts.onProgress?.({ bytes: doneBytes + b, total }));
        if (!hit) hits.set(d.digest, got.file);
        downloaded += got.downloaded;
        doneBytes += d.size;
        opts.onProgress?.({ bytes: doneBytes, total });
        const layerDir = path.join(work, `layer-${i}`);
        const r = await this.installLayer(got.file, plan, d, layerDir, { maxBytes: maxBytes - used.bytes, maxEntries: maxEntries - used.entries });
        used.bytes += r.bytes;
        used.entries += r.entries;
        await mergeInto(layerDir, dir);
      }
      await checkTreeSymlinks(dir, `${formatReference(this.ref)}@${leaf.digest}`);
      // mkdtemp made it 0700: the app, which may have dropped root, must be able to enter it.
      await fs.promises.chmod(dir, 0o755);
      fsyncDir(dir);
      log.info('fetched', { ref: formatReference(this.ref), digest: top.digest, version: release.version, layers: manifest.layers.length, downloaded, ...(trustedBy ? { signed_by: trustedBy } : {}) });
      const verified = [top.digest, ...(leaf.digest !== top.digest ? [leaf.digest] : []), ...manifest.layers.map((d) => d.digest)];
      return { release: { ...release, digest: top.digest }, dir, downloaded, verified, trustedBy };
    } catch (err) {
      await removeTree(dir);
      throw err;
    } finally {
      await removeTree(work);
    }
  }

  /** The signatures of the release manifest, judged; returns what verified it or throws a TrustRefusal. */
  private async checkSignatures(trust: TrustConfig, release: Release, top: FetchedManifest, leaf: FetchedManifest, signal?: AbortSignal): Promise<string | null> {
    const found = await discoverSignatures(this.client, top.digest, { signal, bundles: Boolean(trust.keyless) });
    const subject = { digest: top.digest, bytes: top.bytes, name: repositoryName(this.ref), version: release.version, signedVersion: statedVersion(top, leaf) };
    const decision = decideOciTrust(trust, found, subject);
    log.info('signatures', { digest: top.digest, via: found.via.join(',') || 'none', found: found.cosign.length + found.bundles.length + found.minisigs.length, broken: found.broken.length });
    if (!decision.ok) throw new TrustRefusal(decision.reason, decision.detail);
    return decision.by;
  }

  /** One layer into layerDir, within what is left of the release's limits; returns what it used. */
  private async installLayer(file: string, plan: LayerPlan, d: Descriptor, layerDir: string, left: { maxBytes: number; maxEntries: number }): Promise<{ entries: number; bytes: number }> {
    const bare = plan.action === 'file' ? plan.name : !plan.compressed && plan.title && !(await fileLooksLikeTar(file)) ? plan.title : undefined;
    if (bare !== undefined) {
      // ORAS's CLI labels a plain file `...tar`; its title says what it is.
      if (left.maxEntries < 1) throw new UpdateError(`hostile release ${formatReference(this.ref)}: layer ${d.digest}: more entries than the limit`, 'hostile-archive');
      await installBareFile(file, layerDir, bare);
      return { entries: 1, bytes: d.size };
    }
    const before = left.maxEntries < (this.opts.extractLimits?.maxEntries ?? DEFAULT_MAX_ENTRIES) ? ' (after the earlier layers)' : '';
    return extractArchive(file, layerDir, { ...left, label: `layer ${d.digest}${before}` });
  }

  /** One verified blob on disk: from the cache, or streamed from the registry through its digest and size. */
  private async blob(d: Descriptor, work: string, signal: AbortSignal | undefined, onBytes: (n: number) => void): Promise<{ file: string; downloaded: number }> {
    const cache = this.opts.cache;
    const dest = cache ? cache.cachePath(d.digest) : path.join(work, d.digest.replace(/^sha256:/, ''));
    await fs.promises.mkdir(path.dirname(dest), { recursive: true });
    const retries = this.opts.blobRetries ?? 2;
    for (let attempt = 0; ; attempt++) {
      try {
        const { body } = await this.client.openBlob(d.digest, signal);
        await downloadVerified({ body, dest, expectedDigest: d.digest, expectedSize: d.size, signal, onProgress: (p) => onBytes(p.bytes) });
        return { file: dest, downloaded: d.size };
      } catch (err) {
        if (!isTransient(err) || attempt >= retries || signal?.aborted) throw err;
        const delay = retryDelayMs(attempt, (err as UpdateError).retryAfterMs, { baseMs: this.opts.retryBaseMs ?? 500, maxMs: this.opts.retryMaxMs ?? 30_000 }, Math.random());
        log.warn('blob retry', { digest: d.digest, reason: (err as Error).message, delay_ms: delay });
        await (this.opts.sleep ?? sleep)(delay, signal);
      }
    }
  }
}

async function fileLooksLikeTar(file: string): Promise<boolean> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const b = Buffer.alloc(512);
    const { bytesRead } = await fh.read(b, 0, 512, 0);
    return looksLikeTar(b.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

/**
 * Move a layer's tree into the release: entries are renamed (same file system), directories
 * present on both sides are merged, and any other collision refuses the release — a later
 * layer silently replacing an earlier file would hide what was shipped.
 */
export async function mergeInto(from: string, to: string): Promise<void> {
  for (const name of await fs.promises.readdir(from)) {
    const src = path.join(from, name);
    const dst = path.join(to, name);
    const there = await fs.promises.lstat(dst).catch(() => undefined);
    if (!there) {
      await fs.promises.rename(src, dst);
      continue;
    }
    const here = await fs.promises.lstat(src);
    if (here.isDirectory() && there.isDirectory()) await mergeInto(src, dst);
    else throw new UpdateError(`hostile release: layers collide on '${path.relative(to, dst) || name}'`, 'hostile-archive');
  }
  fsyncDir(to);
}

/** The OCI source configured by MOLT_OCI (and MOLT_OCI_INSECURE), or undefined when unset. */
export function ociSourceFromEnv(env: NodeJS.ProcessEnv, opts: Omit<OciSourceOptions, 'env'> = {}): OciSource | undefined {
  const raw = env.MOLT_OCI?.trim();
  if (!raw) return undefined;
  return new OciSource(raw, { ...opts, env });
}
