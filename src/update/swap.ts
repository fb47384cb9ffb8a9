// The swap: `current` moves to a version in one rename (the store's), and the
// files that follow it (MOLT_APP_DIR, MOLT_VERSION_FILE) are rewritten.
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../common/atomic.js';
import { errMessage, log, type UpdaterCore } from './core.js';

export async function swapTo(c: UpdaterCore, version: string): Promise<void> {
  await c.d.store.activate(version);
  await sideEffectsOfSwap(c, version);
}

/** MOLT_APP_DIR and MOLT_VERSION_FILE follow `current`. */
export async function sideEffectsOfSwap(c: UpdaterCore, version: string | undefined): Promise<void> {
  if (c.cfg.appDir && version) {
    const tmp = `${c.cfg.appDir}.molt-new`;
    try {
      fs.rmSync(tmp, { force: true });
      fs.symlinkSync(path.join(c.d.store.home, 'versions', version), tmp);
      fs.renameSync(tmp, c.cfg.appDir);
    } catch (err) {
      log.warn('cannot update MOLT_APP_DIR', { path: c.cfg.appDir, error: errMessage(err) });
    }
  }
  try {
    await writeFileAtomic(c.cfg.versionFile, version ? `${version}\n` : '');
  } catch (err) {
    log.warn('cannot write MOLT_VERSION_FILE', { path: c.cfg.versionFile, error: errMessage(err) });
  }
}
