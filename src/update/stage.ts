// Staging: download and verify a release beside the running one and install
// it under versions/, journaled as downloading -> staged.
import { errMessage, log, type UpdaterCore } from './core.js';
import type { UpdateTarget } from './journal.js';
import type { Release } from './types.js';

export async function stage(c: UpdaterCore, release: Release, reason: UpdateTarget['reason']): Promise<void> {
  const target: UpdateTarget = { version: release.version, from: c.d.store.current(), release, reason, startedAt: new Date().toISOString() };
  if (c.d.store.has(release.version)) {
    await c.enter('staged', target);
    return;
  }
  await c.enter('downloading', target);
  c.download = { version: release.version, bytes: 0 };
  let lastLog = 0;
  let lastPct = -10;
  try {
    const fetched = await c.d.source.fetch(release, c.d.store.stagingRoot(), {
      signal: c.abort.signal,
      onProgress: (p) => {
        c.download = { version: release.version, bytes: p.bytes, total: p.total };
        const pct = p.total ? Math.floor((p.bytes / p.total) * 100) : -1;
        const now = performance.now();
        if ((pct >= 0 && pct >= lastPct + 10) || now - lastLog > 5000) {
          lastPct = pct >= 0 ? pct - (pct % 10) : lastPct;
          lastLog = now;
          log.info('downloading', { version: release.version, bytes: p.bytes, total: p.total, percent: pct >= 0 ? pct : undefined });
        }
      },
    });
    c.d.hooks?.onDownloadBytes?.(fetched.downloaded);
    await c.d.store.install(release.version, fetched.dir);
    c.event({ event: 'download', version: release.version, detail: `${fetched.downloaded} bytes, verified ${fetched.verified.join(' ') || 'n/a'}` });
  } catch (err) {
    c.download = undefined;
    await c.d.store.cleanStaging().catch((e) => log.warn('cannot clean staging', { error: errMessage(e) }));
    await c.enter('idle', null);
    throw err;
  }
  c.download = undefined;
  await c.enter('staged', target);
}
