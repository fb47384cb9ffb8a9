// Copy a directory release (MOLT_DIR/<version>/) into staging under the same
// policy as an archive: no links leaving the release, no device files, FIFOs or
// sockets, no special mode bits, bounded size and entry count. Sources are
// opened O_NOFOLLOW and checked with fstat, so swapping a file for a symlink
// while we copy gains nothing.
import fs from 'node:fs';
import path from 'node:path';
import { UpdateError } from './types.js';
import { isNoSpace } from './download.js';
import { checkSymlinkTarget, dirMode, fileMode, resolveInTree, type TreeNode } from './archive-policy.js';
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, prepareDest, type ExtractLimits } from './extract.js';
import { removeTree } from './rmtree.js';

const { O_RDONLY, O_NOFOLLOW, O_WRONLY, O_CREAT, O_EXCL } = fs.constants;

export async function copyReleaseTree(
  srcDir: string,
  destDir: string,
  limits: ExtractLimits & { onProgress?: (bytes: number) => void } = {},
): Promise<{ entries: number; bytes: number }> {
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxEntries = limits.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const label = path.basename(srcDir);
  const root = await fs.promises.realpath(srcDir);
  await prepareDest(destDir);
  const tree = new Map<string, TreeNode>([['', { kind: 'dir' }]]);
  const dirModes: [string, number][] = [];
  let entries = 0;
  let bytes = 0;
  const refuse = (rel: string, reason: string) =>
    new UpdateError(`hostile release directory ${label}: entry ${JSON.stringify(rel)}: ${reason}`, 'hostile-archive');
  const buf = Buffer.alloc(1024 * 1024);

  async function copyFile(rel: string, mode: number): Promise<void> {
    const src = await fs.promises.open(path.join(root, rel), O_RDONLY | O_NOFOLLOW);
    try {
      const st = await src.stat();
      if (!st.isFile()) throw refuse(rel, 'changed type while copying');
      if (st.size > maxBytes - bytes) throw refuse(rel, `size ${st.size} exceeds the limit of ${maxBytes} bytes for the release`);
      const dst = await fs.promises.open(path.join(destDir, rel), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
      try {
        for (;;) {
          if (limits.signal?.aborted) throw new UpdateError(`copy of ${label} aborted`, 'aborted');
          const { bytesRead } = await src.read(buf, 0, buf.length, null);
          if (bytesRead === 0) break;
          bytes += bytesRead;
          if (bytes > maxBytes) throw refuse(rel, `release exceeds the limit of ${maxBytes} bytes`);
          let off = 0;
          while (off < bytesRead) off += (await dst.write(buf, off, bytesRead - off)).bytesWritten;
          limits.onProgress?.(bytes);
        }
        await dst.chmod(fileMode(mode));
      } finally {
        await dst.close();
      }
    } finally {
      await src.close();
    }
  }

  async function walk(rel: string): Promise<void> {
    const names = (await fs.promises.readdir(path.join(root, rel))).sort();
    for (const name of names) {
      const r = rel ? `${rel}/${name}` : name;
      if (++entries > maxEntries) throw refuse(r, `more than ${maxEntries} entries`);
      const st = await fs.promises.lstat(path.join(root, r));
      if (st.isDirectory()) {
        await fs.promises.mkdir(path.join(destDir, r), { mode: 0o700 });
        tree.set(r, { kind: 'dir' });
        dirModes.push([r, dirMode(st.mode)]);
        await walk(r);
      } else if (st.isFile()) {
        await copyFile(r, st.mode);
        tree.set(r, { kind: 'file' });
      } else if (st.isSymbolicLink()) {
        const target = await fs.promises.readlink(path.join(root, r));
        try {
          checkSymlinkTarget(r, target);
        } catch (err) {
          throw refuse(r, (err as Error).message);
        }
        await fs.promises.symlink(target, path.join(destDir, r));
        tree.set(r, { kind: 'symlink', target });
      } else {
        const kind = st.isFIFO() ? 'FIFO' : st.isSocket() ? 'socket' : st.isCharacterDevice() ? 'character device' : st.isBlockDevice() ? 'block device' : 'special file';
        throw refuse(r, kind);
      }
    }
  }

  /** Count and size the tree first (one lstat per entry, nothing kept): an over-limit release is refused before a copy. */
  async function scan(rel: string): Promise<void> {
    const dir = await fs.promises.opendir(path.join(root, rel));
    for await (const d of dir) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (++entries > maxEntries) throw refuse(r, `more than ${maxEntries} entries`);
      if (d.isDirectory()) await scan(r);
      else if (d.isFile()) {
        bytes += (await fs.promises.lstat(path.join(root, r))).size;
        if (bytes > maxBytes) throw refuse(r, `release exceeds the limit of ${maxBytes} bytes`);
      }
    }
  }

  try {
    await scan('');
    entries = 0;
    bytes = 0;
    await walk('');
    for (const [p, node] of tree) {
      if (node.kind !== 'symlink') continue;
      try {
        resolveInTree(tree, p);
      } catch (err) {
        throw refuse(p, (err as Error).message);
      }
    }
    dirModes.sort((a, b) => b[0].split('/').length - a[0].split('/').length);
    for (const [p, mode] of dirModes) await fs.promises.chmod(path.join(destDir, p), mode);
    // The release root is entered by the app, which may have dropped root (a tarball's root is 0755 too).
    await fs.promises.chmod(destDir, 0o755);
    return { entries, bytes };
  } catch (err) {
    await removeTree(destDir);
    if (err instanceof UpdateError) throw err;
    if (isNoSpace(err)) throw new UpdateError(`disk full copying ${label} into ${destDir}`, 'disk-full');
    throw new UpdateError(`cannot copy release directory ${srcDir}: ${(err as Error).message}`, 'bad-input');
  }
}

/**
 * Every symlink of an assembled tree (e.g. a release merged from several OCI layers) resolved
 * against the whole tree, as the kernel would: a chain split across layers passes each layer's
 * own check, so the merged result is checked once more. Refuses with 'hostile-archive'.
 */
export async function checkTreeSymlinks(root: string, label: string): Promise<void> {
  const tree = new Map<string, TreeNode>([['', { kind: 'dir' }]]);
  const links: string[] = [];
  async function walk(rel: string): Promise<void> {
    const dir = await fs.promises.opendir(path.join(root, rel));
    for await (const d of dir) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) {
        tree.set(r, { kind: 'dir' });
        await walk(r);
      } else if (d.isSymbolicLink()) {
        tree.set(r, { kind: 'symlink', target: await fs.promises.readlink(path.join(root, r)) });
        links.push(r);
      } else tree.set(r, { kind: 'file' });
    }
  }
  await walk('');
  for (const p of links) {
    try {
      resolveInTree(tree, p);
    } catch (err) {
      throw new UpdateError(`hostile release ${label}: entry ${JSON.stringify(p)}: ${(err as Error).message}`, 'hostile-archive');
    }
  }
}
