// MOLT_BUNDLED at start, before the first poll: the image's own release becomes
// `current` when policy.decideBundled says so, through the same path as any
// release (stage: downloading -> staged into versions/; apply: stop -> swap ->
// start -> trial -> commit, or roll back and block). A bundled release that
// cannot be read or installed is one line, and the updater follows its source.
import { apply } from './apply.js';
import { errMessage, log, type UpdaterCore } from './core.js';
import { decideBundled } from './policy.js';
import { stage } from './stage.js';
import type { Release } from './types.js';

/**
 * Install the bundled release when it should be; `polling` is called once it is staged, skipped
 * or given up (the first poll follows the bundled install, it never races it). Throws (after its
 * one line) when the bundled release cannot be used.
 */
export async function installBundled(c: UpdaterCore, polling: () => void): Promise<string> {
  let release: Release;
  try {
    const source = c.d.bundled;
    if (!source) throw new Error('internal: no bundled release configured');
    try {
      const { releases } = await source.list({ signal: c.abort.signal });
      if (!releases[0]) throw new Error('no release in it');
      release = releases[0];
    } catch (err) {
      log.warn('bundled release not usable, following the source', { error: errMessage(err) });
      throw err;
    }
    const current = c.d.store.current();
    const d = decideBundled({ bundled: release.version, current, blocked: new Set(c.j.state.blocked.map((b) => b.version)) });
    if (!d.install) {
      log.info('bundled release not installed', { version: release.version, current: current ?? 'none', why: d.why });
      return `bundled ${release.version} not installed: ${d.why}`;
    }
    log.info('installing the bundled release', { version: release.version, current: current ?? 'none', why: d.why, version_from: release.locator['from'] });
    try {
      await stage(c, release, 'bundled');
    } catch (err) {
      log.warn('bundled release not installed, following the source', { version: release.version, error: errMessage(err) });
      throw err;
    }
  } finally {
    polling();
  }
  c.waiting = undefined;
  return apply(c);
}
