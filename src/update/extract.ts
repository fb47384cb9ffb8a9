// Extract a release archive into a fresh directory, or refuse it whole.
// One pass: every entry passes the policy (archive-policy.ts) before anything
// is created for it, every write lands inside destDir (parents are directories
// this extraction made itself, files are created O_EXCL|O_NOFOLLOW), and on any
// refusal destDir is removed, so a hostile archive leaves no debris anywhere.
import fs from 'node:fs';
import path from 'node:path';
import { UpdateError } from './types.js';
import { fileChunks, gunzipChunks } from './chunks.js';
import { isNoSpace } from './download.js';
import {
  PolicyError,
  checkSymlinkTarget,
  dirMode,
  fileMode,
  normalizeEntryPath,
  parentsOf,
  resolveInTree,
  type TreeNode,
} from './archive-policy.js';
import { TarFormatError, readTar, type TarEntry } from './tarstream.js';
import type { SparseSegment } from './tarsparse.js';
import { removeTree } from './rmtree.js';

export interface ExtractLimits {
  /** Total bytes of file content (default 2 GiB). */
  maxBytes?: number;
  /** Number of entries (default 100_000). */
  maxEntries?: number;
  signal?: AbortSignal;
  /** Name of the archive in messages (default: the file's base name). */
  label?: string;
}

export const DEFAULT_MAX_BYTES = 2 * 1024 * 1024 * 1024;
export const DEFAULT_MAX_ENTRIES = 100_000;

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;

/** True when the file starts with the gzip magic bytes 1f 8b. */
export async function isGzip(file: string): Promise<boolean> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const b = Buffer.alloc(2);
    const { bytesRead } = await fh.read(b, 0, 2, 0);
    return bytesRead === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/** Create destDir, or accept it when it is an existing, empty, real directory. */
export async function prepareDest(destDir: string): Promise<void> {
  await fs.promises.mkdir(path.dirname(destDir), { recursive: true, mode: 0o755 });
  try {
    await fs.promises.mkdir(destDir, { mode: 0o755 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const st = await fs.promises.lstat(destDir);
    if (!st.isDirectory()) throw new UpdateError(`extraction target ${destDir} is not a directory`, 'bad-input');
    if ((await fs.promises.readdir(destDir)).length > 0) {
      throw new UpdateError(`extraction target ${destDir} is not empty`, 'bad-input');
    }
  }
}

function describeType(e: TarEntry): string {
  switch (e.type) {
    case 'char':
      return 'character device';
    case 'block':
      return 'block device';
    case 'fifo':
      return 'FIFO';
    default:
      return `unsupported entry type ${JSON.stringify(e.typeflag)}`;
  }
}

/**
 * Extract `file` (.tar.gz, .tgz or .tar: gzip is detected by its magic bytes)
 * into `destDir`. Throws UpdateError 'hostile-archive' naming the entry for a
 * policy refusal, 'integrity' for a damaged archive, 'disk-full' for ENOSPC;
 * destDir is removed in every failure.
 */
export async function extractArchive(file: string, destDir: string, limits: ExtractLimits = {}): Promise<{ entries: number; bytes: number }> {
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxEntries = limits.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const signal = limits.signal;
  const label = limits.label ?? path.basename(file);
  let gz: boolean;
  try {
    gz = await isGzip(file);
  } catch (err) {
    throw new UpdateError(`cannot read archive ${file}: ${(err as Error).message}`, 'bad-input');
  }
  // The limits are checked in the one pass that extracts (one inflate, not two): an entry over
  // them is refused before anything is made for it, so staging never holds more than the limits
  // allow, and a refusal removes what was made before it.
  await prepareDest(destDir);

  const tree = new Map<string, TreeNode>([['', { kind: 'dir' }]]);
  const dirModes = new Map<string, number>();
  let entries = 0;
  let bytes = 0;
  let current = '';

  const refuse = (name: string, reason: string) =>
    new UpdateError(`hostile archive ${label}: entry ${JSON.stringify(name)}: ${reason}`, 'hostile-archive');

  const abs = (rel: string) => path.join(destDir, rel);

  async function ensureParents(name: string, p: string): Promise<void> {
    for (const a of parentsOf(p)) {
      const node = tree.get(a);
      if (node === undefined) {
        await fs.promises.mkdir(abs(a), { mode: 0o700 });
        tree.set(a, { kind: 'dir' });
        dirModes.set(a, 0o755); // implied by a deeper entry: the usual mode, whatever the umask
      } else if (node.kind === 'symlink') {
        throw refuse(name, `path goes through the symlink ${JSON.stringify(a)}`);
      } else if (node.kind !== 'dir') {
        throw refuse(name, `parent ${JSON.stringify(a)} is not a directory`);
      }
    }
  }

  async function onEntry(e: TarEntry, body: AsyncIterable<Buffer>): Promise<void> {
    if (signal?.aborted) throw new UpdateError(`extraction of ${label} aborted`, 'aborted');
    current = e.name;
    if (++entries > maxEntries) throw refuse(e.name, `more than ${maxEntries} entries`);
    let p: string;
    try {
      p = normalizeEntryPath(e.name);
    } catch (err) {
      throw refuse(e.name, (err as Error).message);
    }
    if (e.type === 'char' || e.type === 'block' || e.type === 'fifo' || e.type === 'other') {
      throw refuse(e.name, describeType(e));
    }
    if (p === '') {
      if (e.type === 'dir') return; // "./" itself
      throw refuse(e.name, 'entry names the release root');
    }
    await ensureParents(e.name, p);
    const existing = tree.get(p);
    if (existing !== undefined) {
      // Directories may repeat (mkdir -p); anything else replacing an entry is how
      // old tar CVEs overwrote link targets, so it is refused.
      if (e.type === 'dir' && existing.kind === 'dir') {
        dirModes.set(p, dirMode(e.mode));
        return;
      }
      throw refuse(e.name, 'duplicate entry');
    }
    switch (e.type) {
      case 'dir':
        await fs.promises.mkdir(abs(p), { mode: 0o700 });
        tree.set(p, { kind: 'dir' });
        dirModes.set(p, dirMode(e.mode));
        return;
      case 'symlink':
        try {
          checkSymlinkTarget(p, e.linkname);
        } catch (err) {
          throw refuse(e.name, (err as Error).message);
        }
        await fs.promises.symlink(e.linkname, abs(p));
        tree.set(p, { kind: 'symlink', target: e.linkname });
        return;
      case 'hardlink': {
        let t: string;
        try {
          t = normalizeEntryPath(e.linkname);
        } catch (err) {
          throw refuse(e.name, `hardlink target ${JSON.stringify(e.linkname)}: ${(err as Error).message}`);
        }
        // Only to a regular file this archive already made: never to anything outside.
        if (tree.get(t)?.kind !== 'file') {
          throw refuse(e.name, `hardlink target ${JSON.stringify(e.linkname)} is not a file earlier in the archive`);
        }
        await fs.promises.link(abs(t), abs(p));
        tree.set(p, { kind: 'file' });
        return;
      }
      case 'file': {
        if (e.size > maxBytes - bytes) {
          throw refuse(e.name, `size ${e.size} exceeds the limit of ${maxBytes} bytes for the release`);
        }
        const fh = await fs.promises.open(abs(p), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
        tree.set(p, { kind: 'file' });
        try {
          if (e.sparse) await writeSparse(fh, body, e.sparse, e.size);
          else {
            for await (const chunk of body) {
              let off = 0;
              while (off < chunk.length) {
                const { bytesWritten } = await fh.write(chunk, off, chunk.length - off);
                off += bytesWritten;
              }
            }
          }
          bytes += e.size;
          // Explicit chmod: the umask must not decide, and special bits never pass.
          await fh.chmod(fileMode(e.mode));
        } finally {
          await fh.close();
        }
        return;
      }
    }
  }

  // Read into one buffer and inflated into another: each chunk is a view, used (written) before the next is read.
  const input = fileChunks(file, { signal });
  const chunks = gz ? gunzipChunks(input) : input;
  try {
    await readTar(chunks, { onEntry });
    for (const [p, node] of tree) {
      if (node.kind !== 'symlink') continue;
      try {
        resolveInTree(tree, p);
      } catch (err) {
        throw refuse(p, (err as Error).message);
      }
    }
    // Deepest first, so that a read-only parent never blocks its children's chmod.
    const dirs = [...dirModes.entries()].sort((a, b) => b[0].split('/').length - a[0].split('/').length);
    for (const [p, mode] of dirs) await fs.promises.chmod(abs(p), mode);
    await fs.promises.chmod(destDir, 0o755);
    return { entries, bytes };
  } catch (err) {
    await removeTree(destDir);
    throw toUpdateError(err, label, destDir, current);
  } finally {
    // Also after success: bytes past the end marker may still be unread (closes the file).
    await chunks.return(undefined).catch(() => undefined);
    await input.return(undefined).catch(() => undefined);
  }
}

/**
 * A GNU sparse file: each range's data written at its offset, the holes left as holes (read as
 * zeros), the file cut to its real size. The map was checked against the data by tarstream.ts.
 */
async function writeSparse(fh: fs.promises.FileHandle, body: AsyncIterable<Buffer>, segments: readonly SparseSegment[], realSize: number): Promise<void> {
  let i = 0;
  let done = 0; // bytes of segments[i] written
  for await (const chunk of body) {
    let off = 0;
    while (off < chunk.length) {
      while (i < segments.length && done === segments[i]!.size) {
        i++;
        done = 0;
      }
      const seg = segments[i];
      if (!seg) throw new UpdateError('internal: sparse data past its map', 'bad-input');
      const n = Math.min(chunk.length - off, seg.size - done);
      const { bytesWritten } = await fh.write(chunk, off, n, seg.offset + done);
      off += bytesWritten;
      done += bytesWritten;
    }
  }
  await fh.truncate(realSize);
}

function toUpdateError(err: unknown, label: string, destDir: string, entry: string): UpdateError {
  if (err instanceof UpdateError) return err;
  const at = entry ? ` (at entry ${JSON.stringify(entry)})` : '';
  if (err instanceof TarFormatError) return new UpdateError(`corrupt archive ${label}: ${err.message}`, 'integrity');
  if (err instanceof PolicyError) return new UpdateError(`hostile archive ${label}: ${err.message}`, 'hostile-archive');
  const code = (err as NodeJS.ErrnoException)?.code ?? '';
  if (code.startsWith('Z_') || code === 'ERR_ZLIB' || /zlib|gzip|incorrect header|invalid (block|distance|stored|code)|unexpected end of file/i.test((err as Error)?.message ?? '')) {
    return new UpdateError(`corrupt archive ${label}: gzip: ${(err as Error).message}${at}`, 'integrity');
  }
  if (isNoSpace(err)) return new UpdateError(`disk full extracting ${label} into ${destDir}${at}`, 'disk-full');
  return new UpdateError(`cannot extract ${label}${at}: ${(err as Error)?.message ?? String(err)}`, 'bad-input');
}

/** A bare binary asset: copied to destDir/name with mode 0755. */
export async function installBareFile(file: string, destDir: string, name: string): Promise<void> {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0') || Buffer.byteLength(name) > 255) {
    throw new UpdateError(`bad file name ${JSON.stringify(name)} for a bare asset`, 'bad-input');
  }
  await prepareDest(destDir);
  const target = path.join(destDir, name);
  try {
    await fs.promises.copyFile(file, target, fs.constants.COPYFILE_EXCL);
    await fs.promises.chmod(target, 0o755);
  } catch (err) {
    await removeTree(destDir);
    if (isNoSpace(err)) throw new UpdateError(`disk full copying ${path.basename(file)} into ${destDir}`, 'disk-full');
    throw new UpdateError(`cannot install ${path.basename(file)} as ${name}: ${(err as Error).message}`, 'bad-input');
  }
}
