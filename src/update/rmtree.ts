// Remove a tree (a refused or abandoned staging directory) in bounded memory. Node's recursive
// fs.promises.rm reads a whole directory and starts one unlink per entry at once: for the
// 100,000 entries a release may hold that took the updater to ~260 MiB. Here names are read
// in small batches and removed one by one.
import fs from 'node:fs';
import path from 'node:path';

const BATCH = 512;
const UNLINKS_AT_ONCE = 16;

async function readBatch(dir: string): Promise<fs.Dirent[]> {
  const h = await fs.promises.opendir(dir, { bufferSize: 64 });
  const out: fs.Dirent[] = [];
  try {
    let d: fs.Dirent | null;
    while (out.length < BATCH && (d = await h.read()) !== null) out.push(d);
  } finally {
    await h.close();
  }
  return out;
}

async function remove(p: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = await fs.promises.lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isDirectory()) return fs.promises.unlink(p);
  // Entries are removed between reads, so each batch is read afresh from the start.
  for (let batch = await readBatch(p); batch.length > 0; batch = await readBatch(p)) {
    for (const d of batch) if (d.isDirectory()) await remove(path.join(p, d.name));
    // Files a few at a time: as fast as rm's all-at-once on a small machine, in fixed memory.
    const files = batch.filter((d) => !d.isDirectory());
    for (let i = 0; i < files.length; i += UNLINKS_AT_ONCE) {
      await Promise.all(files.slice(i, i + UNLINKS_AT_ONCE).map((d) => fs.promises.unlink(path.join(p, d.name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      })));
    }
  }
  await fs.promises.rmdir(p);
}

/** rm -rf in bounded memory; never throws for a tree that is already gone. Falls back to fs.promises.rm on any other trouble. */
export async function removeTree(p: string): Promise<void> {
  try {
    await remove(p);
  } catch {
    await fs.promises.rm(p, { recursive: true, force: true }).catch(() => undefined);
  }
}
