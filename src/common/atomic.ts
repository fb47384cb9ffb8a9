// Every persistent write: temp file, fsync, rename, fsync the directory.
import fs from 'node:fs';
import path from 'node:path';

function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some file systems refuse fsync on directories; the rename is still atomic.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Durable atomic replace: `<file>.new`, fsync, rename, fsync dir. */
export function writeFileAtomicSync(file: string, data: string | Uint8Array, opts: { mode?: number; durable?: boolean } = {}): void {
  const tmp = file + '.new';
  const fd = fs.openSync(tmp, 'w', opts.mode ?? 0o644);
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    if (opts.durable !== false) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  if (opts.durable !== false) fsyncDir(path.dirname(file));
}

export async function writeFileAtomic(file: string, data: string | Uint8Array, opts: { mode?: number } = {}): Promise<void> {
  const tmp = `${file}.${process.pid}.new`;
  try {
    const fh = await fs.promises.open(tmp, 'w', opts.mode ?? 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, file);
  } catch (err) {
    // A full disk must not also leave a half-written temp file behind.
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  fsyncDir(path.dirname(file));
}

export { fsyncDir };
