// The version store under MOLT_HOME (DESIGN.md section 4 "Install"):
//   versions/<version>/   complete, fsynced releases
//   current, previous     symlinks to versions/<v>, swapped by symlink + rename
//   cache/sha256/<hex>    blobs, trusted only after re-hashing
//   cache/refs/<version>  the blobs each installed version came from (collectBlobs)
//   staging/              work in progress, removed at updater start
// A crash at any instant leaves `current` pointing at a complete version.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fsyncDir, writeFileAtomic } from '../common/atomic.js';
import { logger } from '../common/log.js';
import { UpdateError } from './types.js';
import { parseDigest, sha256File } from './download.js';

const log = logger('store');

/** A version label safe as one directory name; throws UpdateError('bad-input') otherwise. */
export function checkVersion(version: string): string {
  const bad = (why: string) => new UpdateError(`bad version ${JSON.stringify(version)}: ${why}`, 'bad-input');
  if (typeof version !== 'string' || version === '') throw bad('empty');
  if (version.length > 128) throw bad('longer than 128 characters');
  if (version.includes('/')) throw bad("contains '/'");
  if (version.includes('..')) throw bad("contains '..'");
  if (version.startsWith('.')) throw bad("starts with '.'");
  if (/[\0-\x20\x7f]/.test(version)) throw bad('contains a control character or space');
  return version;
}

export function isValidVersion(version: string): boolean {
  try {
    checkVersion(version);
    return true;
  } catch {
    return false;
  }
}

/** fsync every file and directory of a tree (children before parents); symlinks need none of their own. */
export async function fsyncTree(root: string): Promise<void> {
  const files: string[] = [];
  const dirs: string[] = [];
  async function walk(dir: string): Promise<void> {
    dirs.push(dir);
    for (const d of await fs.promises.readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, d.name);
      if (d.isDirectory()) await walk(p);
      else if (d.isFile()) files.push(p);
    }
  }
  await walk(root);
  // A few in flight at once: the device queue does the rest.
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const f = files[next++] as string;
      const fh = await fs.promises.open(f, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, files.length) }, worker));
  for (const d of dirs.reverse()) fsyncDir(d);
}

export class VersionStore {
  readonly home: string;
  private readonly versionsDir: string;
  private readonly stagingDir: string;
  private readonly cacheDir: string;
  private readonly refsDir: string;

  constructor(home: string) {
    this.home = path.resolve(home);
    this.versionsDir = path.join(this.home, 'versions');
    this.stagingDir = path.join(this.home, 'staging');
    this.cacheDir = path.join(this.home, 'cache', 'sha256');
    this.refsDir = path.join(this.home, 'cache', 'refs');
    for (const d of [this.home, this.versionsDir, this.stagingDir, this.cacheDir, this.refsDir]) {
      fs.mkdirSync(d, { recursive: true, mode: 0o755 });
    }
  }

  stagingRoot(): string {
    return this.stagingDir;
  }

  /** A fresh, unique directory under staging/. */
  async newStagingDir(label: string): Promise<string> {
    const safe = label.replace(/[^A-Za-z0-9._+-]/g, '_').replace(/^\.+/, '').slice(0, 64) || 'work';
    return fs.promises.mkdtemp(path.join(this.stagingDir, `${safe}-`));
  }

  /** Where the blob with this digest lives in the cache (download to it with downloadVerified). */
  cachePath(digest: string): string {
    return path.join(this.cacheDir, parseDigest(digest));
  }

  /**
   * The cached blob's path, only when it exists AND re-hashes to the digest.
   * Existence alone proves nothing (a seed trusted it): a corrupt entry is removed.
   */
  async cached(digest: string): Promise<string | undefined> {
    const p = this.cachePath(digest);
    let st: fs.Stats;
    try {
      st = await fs.promises.lstat(p);
    } catch {
      return undefined;
    }
    if (!st.isFile()) {
      log.warn('cache entry is not a file, removing', { digest, path: p });
      await fs.promises.rm(p, { recursive: true, force: true });
      return undefined;
    }
    const actual = await sha256File(p);
    if (actual !== `sha256:${parseDigest(digest)}`) {
      log.warn('cache entry corrupt, removing', { digest, actual });
      await fs.promises.rm(p, { force: true });
      return undefined;
    }
    return p;
  }

  private versionPath(version: string): string {
    return path.join(this.versionsDir, checkVersion(version));
  }

  /**
   * Make a complete staging tree versions/<version>: fsync it, then one rename.
   * An already installed version is kept (it was complete when installed) and dir is removed.
   */
  async install(version: string, dir: string): Promise<string> {
    const target = this.versionPath(version);
    const st = await fs.promises.lstat(dir).catch(() => undefined);
    if (!st?.isDirectory()) throw new UpdateError(`cannot install ${version}: ${dir} is not a directory`, 'bad-input');
    if (fs.existsSync(target)) {
      log.info('version already installed, keeping it', { version });
      await fs.promises.rm(dir, { recursive: true, force: true });
      return target;
    }
    await fsyncTree(dir);
    try {
      await fs.promises.rename(dir, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') {
        await fs.promises.rm(dir, { recursive: true, force: true });
        return target;
      }
      if (code === 'EXDEV') throw new UpdateError(`cannot install ${version}: ${dir} is not on the file system of ${this.home}`, 'bad-input');
      throw err;
    }
    // The directory's mtime records the install time (used by prune).
    const now = new Date();
    await fs.promises.utimes(target, now, now);
    fsyncDir(this.versionsDir);
    log.info('installed', { version });
    return target;
  }

  /**
   * Put a freshly verified copy of a kept version in place of the old one: the old one goes aside into
   * staging first (taken by cleanStaging if molt dies before it is removed). Never for current or
   * previous (the caller's rule): a symlink would point at nothing meanwhile.
   */
  async replace(version: string, dir: string): Promise<string> {
    const target = this.versionPath(version);
    if (fs.existsSync(target)) {
      const aside = path.join(this.stagingRoot(), `replaced-${version}-${randomBytes(4).toString('hex')}`);
      await fs.promises.mkdir(this.stagingRoot(), { recursive: true, mode: 0o755 });
      await fs.promises.rename(target, aside);
      fsyncDir(this.versionsDir);
      log.info('replacing a kept version', { version });
      try {
        return await this.install(version, dir);
      } finally {
        await fs.promises.rm(aside, { recursive: true, force: true });
      }
    }
    return this.install(version, dir);
  }

  has(version: string): boolean {
    if (!isValidVersion(version)) return false;
    try {
      return fs.lstatSync(path.join(this.versionsDir, version)).isDirectory();
    } catch {
      return false;
    }
  }

  /** Installed versions, oldest install first. */
  list(): string[] {
    const out: { v: string; t: number }[] = [];
    for (const d of fs.readdirSync(this.versionsDir, { withFileTypes: true })) {
      if (!d.isDirectory() || !isValidVersion(d.name)) continue;
      try {
        out.push({ v: d.name, t: fs.lstatSync(path.join(this.versionsDir, d.name)).mtimeMs });
      } catch {
        // Removed meanwhile.
      }
    }
    out.sort((a, b) => a.t - b.t || (a.v < b.v ? -1 : a.v > b.v ? 1 : 0));
    return out.map((x) => x.v);
  }

  private readPointer(name: 'current' | 'previous'): string | undefined {
    let target: string;
    try {
      target = fs.readlinkSync(path.join(this.home, name));
    } catch {
      return undefined;
    }
    const rel = path.isAbsolute(target) ? path.relative(this.home, target) : path.normalize(target);
    const m = /^versions\/([^/]+)\/?$/.exec(rel);
    return m && m[1] && isValidVersion(m[1]) ? m[1] : undefined;
  }

  current(): string | undefined {
    return this.readPointer('current');
  }

  previous(): string | undefined {
    return this.readPointer('previous');
  }

  /** New symlink at a temporary name, then rename over the old one: the name never disappears. */
  private async swapPointer(name: 'current' | 'previous', version: string): Promise<void> {
    const tmp = path.join(this.home, `.${name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    // Relative, so that the home can be bind-mounted or moved.
    await fs.promises.symlink(`versions/${version}`, tmp);
    try {
      await fs.promises.rename(tmp, path.join(this.home, name));
    } catch (err) {
      await fs.promises.rm(tmp, { force: true });
      throw err;
    }
  }

  /** previous := old current; current := versions/<version>. */
  async activate(version: string): Promise<void> {
    checkVersion(version);
    if (!this.has(version)) throw new UpdateError(`version ${version} is not installed`, 'not-found');
    const old = this.current();
    if (old !== undefined && old !== version) await this.swapPointer('previous', old);
    await this.swapPointer('current', version);
    fsyncDir(this.home);
    log.info('activated', { version, previous: old !== version ? old : this.previous() });
  }

  /** No `current` at all (MOLT_HOME/molt: the image's own molt runs again). */
  async clearCurrent(): Promise<void> {
    await fs.promises.rm(path.join(this.home, 'current'), { force: true });
    fsyncDir(this.home);
  }

  async setPrevious(version: string | undefined): Promise<void> {
    if (version === undefined) {
      await fs.promises.rm(path.join(this.home, 'previous'), { force: true });
    } else {
      checkVersion(version);
      if (!this.has(version)) throw new UpdateError(`version ${version} is not installed`, 'not-found');
      await this.swapPointer('previous', version);
    }
    fsyncDir(this.home);
  }

  /**
   * Keep the `keep` most recently installed versions that are not `blocked`, and
   * always current, previous and `protect`; remove the rest. Each is first renamed into
   * staging/, so a crash mid-delete leaves debris there, never a half version.
   */
  async prune(keep: number, protect: string[] = [], blocked: string[] = []): Promise<string[]> {
    if (!Number.isInteger(keep) || keep < 0) throw new UpdateError(`bad keep count ${keep}`, 'bad-input');
    const all = this.list();
    // A blocked version is never gone back to: it does not take one of the `keep` places.
    const shut = new Set(blocked);
    const candidates = all.filter((v) => !shut.has(v));
    const kept = new Set(keep > 0 ? candidates.slice(-keep) : []);
    const guard = new Set([this.current(), this.previous(), ...protect].filter((v): v is string => v !== undefined));
    const removed: string[] = [];
    for (const v of all) {
      if (kept.has(v) || guard.has(v)) continue;
      const trash = path.join(this.stagingDir, `prune-${v}-${randomBytes(4).toString('hex')}`);
      await fs.promises.rename(path.join(this.versionsDir, v), trash);
      fsyncDir(this.versionsDir);
      await fs.promises.rm(trash, { recursive: true, force: true });
      removed.push(v);
    }
    if (removed.length) log.info('pruned', { removed: removed.join(',') });
    return removed;
  }

  /** Remember which cached blobs (sha256:<hex>) `version` was made from, so that collectBlobs keeps them. */
  async recordBlobs(version: string, digests: string[]): Promise<void> {
    const hexes = digests.flatMap((d) => (/^sha256:[0-9a-f]{64}$/.test(d) ? [d.slice(7)] : []));
    await writeFileAtomic(path.join(this.refsDir, checkVersion(version)), hexes.map((h) => `${h}\n`).join(''));
  }

  /**
   * Remove every cached blob that no installed version was made from and that is not
   * in `inUse` (a download or a staged release); forget the records of versions gone.
   * The blobs are only a download cache: an installed version never needs its blob again.
   */
  async collectBlobs(inUse: string[] = []): Promise<string[]> {
    const installed = new Set(this.list());
    const keep = new Set(inUse.map((d) => d.replace(/^sha256:/, '')));
    for (const name of await fs.promises.readdir(this.refsDir)) {
      const file = path.join(this.refsDir, name);
      if (!installed.has(name)) {
        await fs.promises.rm(file, { force: true });
        continue;
      }
      const text = await fs.promises.readFile(file, 'utf8').catch(() => '');
      for (const hex of text.split('\n')) if (hex) keep.add(hex);
    }
    const removed: string[] = [];
    for (const name of await fs.promises.readdir(this.cacheDir)) {
      // Partial downloads (other names) belong to whoever writes them; cleanStaging takes them at start.
      if (!/^[0-9a-f]{64}$/.test(name) || keep.has(name)) continue;
      await fs.promises.rm(path.join(this.cacheDir, name), { recursive: true, force: true });
      removed.push(`sha256:${name}`);
    }
    if (removed.length) log.info('collected cached blobs', { count: removed.length });
    return removed;
  }

  /** Remove staging debris, half-made pointer links and interrupted cache downloads. */
  async cleanStaging(): Promise<void> {
    const gone: string[] = [];
    for (const name of await fs.promises.readdir(this.stagingDir)) {
      await fs.promises.rm(path.join(this.stagingDir, name), { recursive: true, force: true });
      gone.push(name);
    }
    for (const name of await fs.promises.readdir(this.home)) {
      if (/^\.(current|previous)\.tmp-/.test(name)) {
        await fs.promises.rm(path.join(this.home, name), { force: true });
        gone.push(name);
      }
    }
    for (const name of await fs.promises.readdir(this.cacheDir)) {
      if (!/^[0-9a-f]{64}$/.test(name)) {
        await fs.promises.rm(path.join(this.cacheDir, name), { recursive: true, force: true });
        gone.push(`cache/${name}`);
      }
    }
    if (gone.length) log.info('removed stale work', { count: gone.length });
  }
}
