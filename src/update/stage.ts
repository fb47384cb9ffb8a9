// Staging: download and verify a release beside the running one and install
// it under versions/, journaled as downloading -> staged.
import { tidyStore } from './bookkeeping.js';
import { errMessage, log, type UpdaterCore } from './core.js';
import type { UpdateTarget } from './journal.js';
import { UpdateError, type Release } from './types.js';
import { refuseUnsignable, refuseWithoutRoot, TrustRefusal } from './trust/gate.js';
import { BUNDLED_BY, decideStored, refetchKept } from './trust/stored.js';

/** A release of the source, or (reason 'bundled') the image's own release: that one without a signature check, trusted as the image is. */
export async function stage(c: UpdaterCore, release: Release, reason: UpdateTarget['reason']): Promise<void> {
  const source = reason === 'bundled' ? c.d.bundled : c.d.source;
  if (!source) throw new Error('internal: no bundled release configured');
  const trust = reason === 'bundled' ? undefined : c.d.trust;
  const target: UpdateTarget = { version: release.version, from: c.d.store.current(), release, reason, startedAt: new Date().toISOString() };
  const store = c.d.store;
  const kept = store.has(release.version);
  // A kept version no trusted key or identity vouches for: checked again from the source when it may be replaced.
  const recheck = kept && reason !== 'bundled' && refetchKept(trust, release.version, c.j.state.verifiedBy?.[release.version], { current: store.current(), previous: store.previous() });
  if (kept && !recheck) {
    await refuseUnverifiedKept(c, release.version, reason);
    await c.enter('staged', target);
    return;
  }
  if (recheck) log.info('downloading a kept version again to check its signature', { version: release.version, verified_by: c.j.state.verifiedBy?.[release.version] ?? 'none' });
  await c.enter('downloading', target);
  c.download = { version: release.version, bytes: 0 };
  let lastLog = 0;
  let lastPct = -10;
  try {
    if (!source.checksSignatures) refuseUnsignable(trust, `the ${source.description.split(' ')[0]} source does not check signatures yet`);
    refuseWithoutRoot(trust);
    const fetched = await source.fetch(release, c.d.store.stagingRoot(), {
      signal: c.abort.signal,
      ...(trust ? { trust } : {}),
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
    await (recheck ? store.replace(release.version, fetched.dir) : store.install(release.version, fetched.dir));
    // Journaled by the step to staged below; status shows it for the running version.
    // A bundled release is recorded as such: decideStored lets it run again, as the image it came with.
    const by = reason === 'bundled' ? BUNDLED_BY : fetched.trustedBy;
    if (by) c.j.setVerifiedBy(release.version, by, c.d.store.list());
    // Without the record its blobs are merely collected early: a cache miss, never a fault.
    await c.d.store.recordBlobs(release.version, fetched.verified).catch((err) => log.warn('cannot record cached blobs', { version: release.version, error: String(err) }));
    c.event({ event: 'download', version: release.version, detail: `${fetched.downloaded} bytes, verified ${fetched.verified.join(' ') || 'n/a'}` });
  } catch (err) {
    c.download = undefined;
    await c.d.store.cleanStaging().catch((e) => log.warn('cannot clean staging', { error: errMessage(e) }));
    // Journaled by the step to idle below: the block survives a restart.
    if (isReleaseFault(err)) blockRefused(c, release.version, errMessage(err), err instanceof TrustRefusal ? err : undefined);
    await c.enter('idle', null);
    if (isReleaseFault(err)) await tidyStore(c);
    throw err;
  }
  c.download = undefined;
  await c.enter('staged', target);
}

/**
 * A kept version (versions/<v>) is installed again without a download, so no signature is checked
 * then: with a trust setting its verifiedBy record must be trusted now (trust/stored.ts), else it is
 * blocked like a release refused at download ('no signature', with the line saying why). A staged
 * target so refused goes back to idle. Called by stage() and again by apply() for what was staged
 * before the trust setting (state.json may hold such a target across the restart that added it).
 */
export async function refuseUnverifiedKept(c: UpdaterCore, version: string, reason: UpdateTarget['reason']): Promise<void> {
  if (reason === 'bundled') return;
  const d = decideStored(c.d.trust, version, c.j.state.verifiedBy?.[version], 'install');
  if (d.allow) return;
  blockRefused(c, version, d.reason, new TrustRefusal(d.reason, d.line));
  if (c.j.state.phase === 'staged' && c.j.state.target?.version === version) await c.enter('idle', null);
  else await c.save();
  throw new UpdateError(`${d.reason}: ${d.line}`, 'untrusted');
}

/**
 * A failure that is the release's own and the same at every attempt: its archive breaks the
 * extraction rules (a '..' entry, an absolute symlink, too many entries...). Not 'integrity': a
 * digest mismatch may be a bad proxy or a torn download as well as a bad publish, so it is retried.
 */
export function isReleaseFault(err: unknown): boolean {
  if (err instanceof TrustRefusal && err.transient) return false;
  return err instanceof UpdateError && (err.code === 'hostile-archive' || err.code === 'untrusted');
}

/**
 * Blocked like a release that crashes: one line with the reason, never downloaded again.
 * A signature refusal's history event says so (cause), for molt_signature_failures_total.
 */
function blockRefused(c: UpdaterCore, version: string, reason: string, trust?: TrustRefusal): void {
  log.warn('release refused and blocked', { version, reason, ...(trust?.detail ? { detail: trust.detail } : {}) });
  c.j.block(version, reason);
  c.event({ event: 'block', version, detail: reason, ...(trust ? { cause: 'signature' as const } : {}) });
}
