// MOLT_DIR: releases from a local directory (a mounted volume on an air-gapped
// host, or the demo's embedded default). Each release is `<version>/` or
// `<version>.tar.gz` / `.tgz` / `.tar`; an optional SHA256SUMS in MOLT_DIR
// covers the tarballs. A tarball is copied into staging while it is hashed and
// extracted from that copy, so the file checked is the file extracted.
import fs from 'node:fs';
import path from 'node:path';
import semver from 'semver';
import { logger } from '../../common/log.js';
import { UpdateError, type FetchOptions, type FetchedRelease, type ListResult, type Release, type ReleaseSource } from '../types.js';
import { downloadVerified, ensureFreeSpace } from '../download.js';
import { extractArchive, type ExtractLimits } from '../extract.js';
import { fileChunks } from '../chunks.js';
import { copyReleaseTree } from '../copytree.js';
import { parseSha256Sums } from '../sha256sums.js';
import { isValidVersion } from '../store.js';
import { removeTree } from '../rmtree.js';
import { localSignatures, refuseUnsignable, trustGate, type ArtifactGate } from '../trust/gate.js';

const log = logger('source-dir');

export type LocalKind = 'dir' | 'tarball';

export interface ParsedEntry {
  version: string;
  prerelease: boolean;
  kind: LocalKind;
}

const TARBALL_SUFFIXES = ['.tar.gz', '.tgz', '.tar'];
/** When two entries name the same version, the first kind here wins. */
const PRIORITY = ['dir', '.tar.gz', '.tgz', '.tar'];

/**
 * What a MOLT_DIR entry means: a semver name (a leading 'v' is accepted and
 * stripped) as a directory or a tarball; anything else is not a release.
 */
export function parseEntryName(name: string, isDir: boolean): (ParsedEntry & { suffix: string }) | undefined {
  let base = name;
  let suffix = 'dir';
  if (!isDir) {
    const s = TARBALL_SUFFIXES.find((x) => name.endsWith(x));
    if (!s) return undefined;
    base = name.slice(0, -s.length);
    suffix = s;
  }
  const v = /^[vV]/.test(base) ? base.slice(1) : base;
  const parsed = semver.parse(v);
  // Only the exact text: semver.parse tolerates leading '=' and spaces.
  if (!parsed || (parsed.version !== v && parsed.version + (parsed.build.length ? '+' + parsed.build.join('.') : '') !== v)) return undefined;
  if (!isValidVersion(v)) return undefined;
  return { version: v, prerelease: parsed.prerelease.length > 0, kind: isDir ? 'dir' : 'tarball', suffix };
}

export interface LocalDirOptions {
  /** Refuse tarballs not listed in SHA256SUMS, and directory releases (they cannot be verified). */
  requireChecksum?: boolean;
  limits?: ExtractLimits;
}

export class LocalDirSource implements ReleaseSource {
  readonly description: string;
  readonly checksSignatures = true;
  private readonly dir: string;

  constructor(dir: string, private readonly opts: LocalDirOptions = {}) {
    this.dir = path.resolve(dir);
    this.description = `dir ${this.dir}`;
  }

  private async readSums(): Promise<Map<string, string> | undefined> {
    try {
      return parseSha256Sums(await fs.promises.readFile(path.join(this.dir, 'SHA256SUMS'), 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new UpdateError(`cannot read ${path.join(this.dir, 'SHA256SUMS')}: ${(err as Error).message}`, 'bad-input');
    }
  }

  async list(opts: { signal?: AbortSignal } = {}): Promise<ListResult> {
    if (opts.signal?.aborted) throw new UpdateError(`listing ${this.dir} aborted`, 'aborted');
    let names: string[];
    try {
      names = await fs.promises.readdir(this.dir);
    } catch (err) {
      throw new UpdateError(`MOLT_DIR ${this.dir} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'config');
    }
    const sums = await this.readSums();
    const best = new Map<string, { name: string; rank: number; parsed: ParsedEntry; mtime: Date }>();
    for (const name of names.sort()) {
      let st: fs.Stats;
      try {
        st = await fs.promises.stat(path.join(this.dir, name)); // an admin's symlink to a release is fine
      } catch {
        continue;
      }
      if (!st.isDirectory() && !st.isFile()) continue;
      const p = parseEntryName(name, st.isDirectory());
      if (!p) continue;
      const rank = PRIORITY.indexOf(p.suffix);
      const seen = best.get(p.version);
      if (seen) {
        log.warn('two entries for one version, using one', { version: p.version, using: rank < seen.rank ? name : seen.name });
        if (rank >= seen.rank) continue;
      }
      best.set(p.version, { name, rank, parsed: p, mtime: st.mtime });
    }
    const releases: Release[] = [...best.values()].map(({ name, parsed, mtime }) => {
      const hex = parsed.kind === 'tarball' ? sums?.get(name) : undefined;
      return {
        version: parsed.version,
        tag: name,
        prerelease: parsed.prerelease,
        publishedAt: mtime.toISOString(),
        ...(hex ? { digest: `sha256:${hex}` } : {}),
        locator: { kind: parsed.kind, name },
      };
    });
    releases.sort((a, b) => semver.rcompare(a.version, b.version));
    return { releases, notModified: false };
  }

  async fetch(release: Release, stagingRoot: string, opts: FetchOptions = {}): Promise<FetchedRelease> {
    const name = release.locator['name'];
    const kind = release.locator['kind'];
    // The locator comes back from state.json: check it names an entry of this directory for this version.
    if (typeof name !== 'string' || name.includes('/') || name === '.' || name === '..') {
      throw new UpdateError(`bad locator for ${release.version} in ${this.dir}`, 'bad-input');
    }
    const full = path.join(this.dir, name);
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(full);
    } catch {
      throw new UpdateError(`release ${name} is gone from ${this.dir}`, 'not-found');
    }
    const parsed = parseEntryName(name, st.isDirectory());
    if (!parsed || parsed.version !== release.version || parsed.kind !== kind) {
      throw new UpdateError(`release ${name} in ${this.dir} does not match version ${release.version}`, 'bad-input');
    }
    await fs.promises.mkdir(stagingRoot, { recursive: true, mode: 0o755 });
    const work = await fs.promises.mkdtemp(path.join(stagingRoot, `dir-${release.version}-`));
    const archive = `${work}.archive`;
    let gate: ArtifactGate | undefined;
    try {
      if (parsed.kind === 'dir') {
        refuseUnsignable(opts.trust, `${name} is a directory release; only a tarball can carry a signature`);
        if (this.opts.requireChecksum) {
          throw new UpdateError(`directory release ${name} cannot be verified and checksums are required`, 'integrity');
        }
        const r = await copyReleaseTree(full, work, {
          ...this.opts.limits,
          signal: opts.signal,
          onProgress: (bytes) => opts.onProgress?.({ bytes }),
        });
        log.info('fetched', { version: release.version, from: name, bytes: r.bytes, entries: r.entries });
        return { release, dir: work, downloaded: r.bytes, verified: [] };
      }
      const sums = await this.readSums();
      const hex = sums?.get(name);
      if (hex === undefined && this.opts.requireChecksum) {
        throw new UpdateError(`${name} is not listed in ${path.join(this.dir, 'SHA256SUMS')} and checksums are required`, 'integrity');
      }
      // Signatures are read before the first byte of the tarball: the hasher computes only what they need.
      gate = trustGate(opts.trust, name, release.version, opts.trust?.required ? await localSignatures(this.dir, name) : {});
      await ensureFreeSpace(stagingRoot, st.size);
      // No expectedDigest here: the comparison below names the release, not the staging copy.
      // Hash once: with no SHA256SUMS entry and signatures that compare none (minisign's prehashed
      // signature), the check's own BLAKE2b-512 is the only digest, and it runs on another core.
      const sha256 = hex !== undefined || !opts.trust?.required || gate.needsSha256;
      const { digest, size } = await downloadVerified({
        ...(sha256 ? {} : { sha256: false as const }),
        // Read into the check's own buffers when it has any (minisign's prehash on a worker): no copy.
        body: fileChunks(full, { signal: opts.signal, ...(gate.readBuffer ? { buffer: gate.readBuffer } : {}) }),
        dest: archive,
        maxBytes: this.opts.limits?.maxBytes,
        signal: opts.signal,
        onProgress: (p) => opts.onProgress?.({ bytes: p.bytes, total: st.size }),
        onChunk: gate.onChunk,
      });
      // A signature's refusal first: it is final (blocked), where a checksum mismatch is retried.
      const trustedBy = await gate.finish(digest);
      if (hex !== undefined && digest !== `sha256:${hex}`) {
        throw new UpdateError(`${name} in ${this.dir} does not match SHA256SUMS: expected sha256:${hex}, got ${digest}`, 'integrity');
      }
      const r = await extractArchive(archive, work, { ...this.opts.limits, signal: opts.signal, label: name });
      await fs.promises.rm(archive, { force: true });
      log.info('fetched', { version: release.version, from: name, digest, verified: hex !== undefined, entries: r.entries, ...(trustedBy ? { signed_by: trustedBy } : {}) });
      return { release, dir: work, downloaded: size, verified: hex !== undefined && digest ? [digest] : [], trustedBy };
    } catch (err) {
      gate?.close();
      await removeTree(work);
      await fs.promises.rm(archive, { force: true }).catch(() => undefined);
      await fs.promises.rm(archive + '.part', { force: true }).catch(() => undefined);
      if (err instanceof UpdateError) throw err;
      throw new UpdateError(`cannot fetch ${name} from ${this.dir}: ${(err as Error).message}`, 'bad-input');
    }
  }
}
