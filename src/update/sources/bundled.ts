// MOLT_BUNDLED: the one release shipped inside the image (a directory or a
// .tar.gz/.tgz/.tar), installed at first start with no network. Its version is,
// in this order: a VERSION file at the top of the release (inside the tarball
// too), the release's own name when it is one (`1.2.0/`, `1.2.0.tar.gz`, as in
// MOLT_DIR), or MOLT_VERSION_FILE (the seed's /version, baked into its image).
// It is fetched through the same copy/extract rules as any release, without a
// signature check: it is part of the image, trusted as the image is.
import fs from 'node:fs';
import path from 'node:path';
import { logger } from '../../common/log.js';
import { UpdateError, type FetchOptions, type FetchedRelease, type ListResult, type Release, type ReleaseSource } from '../types.js';
import { copyReleaseTree } from '../copytree.js';
import { extractArchive, isGzip, type ExtractLimits } from '../extract.js';
import { fileChunks, gunzipChunks } from '../chunks.js';
import { readTar, TarFormatError } from '../tarstream.js';
import { normalizeEntryPath } from '../archive-policy.js';
import { isValidVersion } from '../store.js';
import { removeTree } from '../rmtree.js';
import { parseEntryName } from './local.js';

const log = logger('bundled');

/** A VERSION file is one short line; anything longer is not a version. */
const MAX_VERSION_BYTES = 256;

/** The text of a VERSION file (or /version) as a version label: its first line, a leading 'v' dropped; undefined when it is none. */
export function versionFromText(text: string): string | undefined {
  const line = text.split('\n')[0]!.trim();
  const v = /^[vV]\d/.test(line) ? line.slice(1) : line;
  return v !== '' && isValidVersion(v) ? v : undefined;
}

/** Stop reading the tarball once its VERSION is found. */
class Found {
  constructor(readonly text: string) {}
}

/** The VERSION file at the top of a tarball, read from its stream without extracting anything; undefined when there is none. */
export async function tarballVersionText(file: string): Promise<string | undefined> {
  const raw = fileChunks(file);
  const chunks = (await isGzip(file)) ? gunzipChunks(raw) : raw;
  try {
    await readTar(chunks, {
      onEntry: async (entry, body) => {
        let name: string;
        try {
          name = normalizeEntryPath(entry.name);
        } catch {
          return; // extraction refuses it later; here it is just not VERSION
        }
        if (name !== 'VERSION' || entry.type !== 'file' || entry.size > MAX_VERSION_BYTES) return;
        const parts: Buffer[] = [];
        for await (const c of body) parts.push(Buffer.from(c));
        throw new Found(Buffer.concat(parts).toString('utf8'));
      },
    });
  } catch (err) {
    if (err instanceof Found) return err.text;
    throw err;
  }
  return undefined;
}

export interface BundledRelease {
  version: string;
  kind: 'dir' | 'tarball';
  /** Where the version was read: VERSION, the name, or the version file. */
  versionFrom: string;
}

/** What MOLT_BUNDLED holds and its version; an UpdateError ('bad-input' or 'not-found') with one line when it cannot be used. */
export async function readBundled(where: string, versionFile: string): Promise<BundledRelease> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(where);
  } catch (err) {
    throw new UpdateError(`MOLT_BUNDLED ${where} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'not-found');
  }
  if (!st.isDirectory() && !st.isFile()) throw new UpdateError(`MOLT_BUNDLED ${where} is neither a directory nor a tarball`, 'bad-input');
  const kind = st.isDirectory() ? 'dir' : 'tarball';
  let own: string | undefined;
  try {
    own = kind === 'dir' ? await readSmall(path.join(where, 'VERSION')) : await tarballVersionText(where);
  } catch (err) {
    if (err instanceof UpdateError) throw err;
    const why = err instanceof TarFormatError || (err as { code?: string }).code?.startsWith('Z_') ? 'corrupt archive: ' : '';
    throw new UpdateError(`MOLT_BUNDLED ${where} cannot be read: ${why}${(err as Error).message}`, 'bad-input');
  }
  if (own !== undefined) {
    const v = versionFromText(own);
    if (!v) throw new UpdateError(`MOLT_BUNDLED ${where}: its VERSION file does not hold a version (${JSON.stringify(own.slice(0, 40))})`, 'bad-input');
    return { version: v, kind, versionFrom: 'VERSION' };
  }
  const named = parseEntryName(path.basename(where), kind === 'dir');
  if (named) return { version: named.version, kind, versionFrom: 'name' };
  const seed = await readSmall(versionFile).catch(() => undefined);
  const v = seed !== undefined ? versionFromText(seed) : undefined;
  if (v) return { version: v, kind, versionFrom: versionFile };
  throw new UpdateError(`MOLT_BUNDLED ${where}: no version (no VERSION file in it, its name is not a version, and ${versionFile} holds none)`, 'bad-input');
}

/** A small text file, or undefined when it does not exist. */
async function readSmall(file: string): Promise<string | undefined> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UpdateError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'bad-input');
  }
  try {
    const buf = Buffer.alloc(MAX_VERSION_BYTES + 1);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_VERSION_BYTES) throw new UpdateError(`${file} is too long for a version`, 'bad-input');
    return buf.toString('utf8', 0, bytesRead);
  } finally {
    await fh.close();
  }
}

export class BundledSource implements ReleaseSource {
  readonly description: string;
  /** No signature is asked of it (stage passes it no trust settings, and fetch checks none): see the file's opening comment. */
  readonly checksSignatures = true;
  private readonly where: string;

  constructor(where: string, private readonly versionFile: string, private readonly limits: ExtractLimits = {}) {
    this.where = path.resolve(where);
    this.description = `bundled ${this.where}`;
  }

  async list(): Promise<ListResult> {
    const b = await readBundled(this.where, this.versionFile);
    const release: Release = { version: b.version, tag: path.basename(this.where), prerelease: false, locator: { kind: 'bundled', type: b.kind, from: b.versionFrom } };
    return { releases: [release], notModified: false };
  }

  async fetch(release: Release, stagingRoot: string, opts: FetchOptions = {}): Promise<FetchedRelease> {
    if (release.locator['kind'] !== 'bundled') throw new UpdateError(`${release.version} is not the bundled release`, 'bad-input');
    await fs.promises.mkdir(stagingRoot, { recursive: true, mode: 0o755 });
    const work = await fs.promises.mkdtemp(path.join(stagingRoot, `bundled-${release.version}-`));
    try {
      const st = await fs.promises.stat(this.where);
      const r = st.isDirectory()
        ? await copyReleaseTree(this.where, work, { ...this.limits, signal: opts.signal, onProgress: (bytes) => opts.onProgress?.({ bytes }) })
        : await extractArchive(this.where, work, { ...this.limits, signal: opts.signal, label: path.basename(this.where) });
      log.info('fetched', { version: release.version, from: this.where, bytes: r.bytes, entries: r.entries });
      return { release, dir: work, downloaded: 0, verified: [] };
    } catch (err) {
      await removeTree(work);
      // The image's copy is damaged, not the release: never a block on its version (stage.isReleaseFault), which the source may still serve intact.
      const msg = err instanceof Error ? err.message : String(err);
      throw new UpdateError(`the bundled release ${this.where} cannot be installed: ${msg}`, 'bad-input');
    }
  }
}
