// The Sigstore trusted root for MOLT_TRUST_IDENTITY without MOLT_TRUST_ROOT:
// Sigstore's `trusted_root.json` target, fetched and kept fresh through TUF
// (tuf-js does every client check: signatures, thresholds, versions, expiry,
// lengths and hashes), cached under MOLT_HOME/trust/tuf/ so that a restart
// without network still verifies. Only keyless settings load this module.
//
// Cache layout, per mirror (MOLT_HOME/trust/tuf/<host+path>/):
//   root.json timestamp.json snapshot.json targets.json   tuf-js's trusted metadata
//   targets/trusted_root.json                              tuf-js's verified target
//   last-good.json   the root molt uses and when TUF last vouched for it (atomic)
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as TufLib from 'tuf-js';
import type { TrustRootInfo } from '../../api/types.js';
import { writeFileAtomicSync } from '../../common/atomic.js';
import { logger } from '../../common/log.js';
import type { TrustConfig } from './config.js';
import { TrustConfigError } from './keys.js';
import { keylessTrust } from './sigstore.js';

const log = logger('updater');
const requireCjs = createRequire(import.meta.url);

/** Sigstore's public-good TUF repository; its initial root.json comes with @sigstore/tuf. */
export const PUBLIC_GOOD_TUF = 'https://tuf-repo-cdn.sigstore.dev';
const TARGET = 'trusted_root.json';
/** A successful refresh is repeated at most this often; a failed one at the next poll. */
export const TUF_REFRESH_MS = 6 * 3600_000;
/** Per request: a mirror that stalls (slow retrieval) is given up on after this. */
export const TUF_TIMEOUT_MS = 15_000;

export interface TufRootOptions {
  /** MOLT_HOME/trust/tuf */
  cacheDir: string;
  /** MOLT_TRUST_TUF_URL, default the public-good repository. */
  mirrorUrl?: string;
  /** MOLT_TRUST_TUF_ROOT: the initial root.json; default @sigstore/tuf's for the public-good repository. */
  initialRoot?: string;
  timeoutMs?: number;
  refreshMs?: number;
}

interface LastGood {
  mirror: string;
  verifiedAt: string;
  sha256: string;
  root: unknown;
}

/** The initial root.json bytes for `mirror`: the file given, or @sigstore/tuf's seed for the public-good one. */
export function initialRootBytes(mirror: string, file?: string): Buffer {
  if (file) {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new TrustConfigError(`MOLT_TRUST_TUF_ROOT: ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
  }
  const seeds = requireCjs('@sigstore/tuf/seeds.json') as Record<string, { 'root.json': string } | undefined>;
  const seed = seeds[mirror];
  if (!seed) throw new TrustConfigError(`MOLT_TRUST_TUF_URL: ${mirror}: no initial root.json known for it (set MOLT_TRUST_TUF_ROOT)`);
  return Buffer.from(seed['root.json'], 'base64');
}

/** One line from a tuf-js failure: its kind and message, and those of its causes (a fetch's ECONNREFUSED). */
export function tufErrorLine(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    if (!(e instanceof Error)) {
      parts.push(String(e));
      break;
    }
    const code = (e as NodeJS.ErrnoException).code;
    // tuf-js's errors keep the name 'Error'; their class says what was refused (ExpiredMetadataError...).
    const kind = e.name !== 'Error' ? e.name : e.constructor.name !== 'Error' ? e.constructor.name : '';
    parts.push(`${kind ? `${kind}: ` : ''}${e.message}${code && !e.message.includes(code) ? ` (${code})` : ''}`);
  }
  return parts.join(': ').replace(/\s+/g, ' ');
}

export class TufTrustRoot {
  readonly mirror: string;
  private readonly dir: string;
  private readonly timeoutMs: number;
  private readonly refreshMs: number;
  private last: LastGood | undefined;
  private lastError: string | undefined;
  /** performance.now() of the last attempt and whether it succeeded: the schedule runs on the monotonic clock. */
  private attempt: { at: number; ok: boolean } | undefined;
  private running: Promise<boolean> | undefined;

  /**
   * `use` receives each root TUF vouches for (and the cached one at load); it throws when the
   * root is not a usable Sigstore trusted root, which counts as a failed refresh.
   */
  constructor(
    private readonly opts: TufRootOptions,
    private readonly use: (trustedRoot: unknown) => void,
  ) {
    this.mirror = (opts.mirrorUrl ?? PUBLIC_GOOD_TUF).replace(/\/+$/, '');
    const u = new URL(this.mirror);
    this.dir = path.join(opts.cacheDir, encodeURIComponent(u.host + u.pathname.replace(/\/$/, '')));
    this.timeoutMs = opts.timeoutMs ?? TUF_TIMEOUT_MS;
    this.refreshMs = opts.refreshMs ?? TUF_REFRESH_MS;
    // Fail at start (exit 2) on an unreadable MOLT_TRUST_TUF_ROOT or an unknown mirror, not at the first poll.
    initialRootBytes(this.mirror, opts.initialRoot);
  }

  /** The cached root from an earlier run, if any; true when one is in use. Never touches the network. */
  loadCached(): boolean {
    let good: LastGood;
    try {
      good = JSON.parse(fs.readFileSync(path.join(this.dir, 'last-good.json'), 'utf8')) as LastGood;
      if (good.mirror !== this.mirror || typeof good.verifiedAt !== 'string') return false;
      this.use(good.root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn('cached Sigstore trusted root unusable; waiting for TUF', { mirror: this.mirror, error: tufErrorLine(err) });
      return false;
    }
    this.last = good;
    return true;
  }

  /** At each poll: refresh when the last success is older than refreshMs, or the last attempt failed. */
  async refreshIfDue(now = performance.now()): Promise<void> {
    const a = this.attempt;
    if (a && a.ok && now - a.at < this.refreshMs) return;
    await this.refresh();
  }

  /** Ask the TUF repository now (one at a time); false when it failed and the cached root (if any) stays. */
  refresh(): Promise<boolean> {
    this.running ??= this.doRefresh().finally(() => (this.running = undefined));
    return this.running;
  }

  info(nowWall = Date.now()): TrustRootInfo {
    const out: TrustRootInfo = { source: 'tuf', mirror: this.mirror };
    if (this.last) {
      out.verifiedAt = this.last.verifiedAt;
      out.ageSeconds = Math.max(0, Math.round((nowWall - Date.parse(this.last.verifiedAt)) / 1000));
    }
    if (this.lastError) out.lastError = this.lastError;
    return out;
  }

  private async doRefresh(): Promise<boolean> {
    const started = performance.now();
    try {
      const bytes = await this.fetchTarget();
      const root = JSON.parse(bytes.toString('utf8')) as unknown;
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const changed = this.last?.sha256 !== sha256;
      if (changed) this.use(root);
      const good: LastGood = { mirror: this.mirror, verifiedAt: new Date().toISOString(), sha256, root };
      writeFileAtomicSync(path.join(this.dir, 'last-good.json'), JSON.stringify(good));
      const first = !this.last;
      this.last = good;
      this.lastError = undefined;
      this.attempt = { at: started, ok: true };
      if (changed) log.info(first ? 'Sigstore trusted root fetched through TUF' : 'Sigstore trusted root updated through TUF', { mirror: this.mirror, sha256 });
      else log.debug('Sigstore trusted root still current', { mirror: this.mirror });
      return true;
    } catch (err) {
      this.lastError = tufErrorLine(err);
      this.attempt = { at: started, ok: false };
      if (this.last) {
        log.warn('Sigstore trusted root not refreshed; keeping the cached one', { mirror: this.mirror, error: this.lastError, verified_at: this.last.verifiedAt, age_s: this.info().ageSeconds });
      } else {
        log.warn('no Sigstore trusted root: TUF repository unreachable; keyless signatures cannot be verified until it answers', { mirror: this.mirror, error: this.lastError });
      }
      return false;
    }
  }

  /** tuf-js's client workflow: root rotations, timestamp, snapshot, targets, then the target itself. */
  private async fetchTarget(): Promise<Buffer> {
    const tuf = requireCjs('tuf-js') as typeof TufLib;
    const targetDir = path.join(this.dir, 'targets');
    fs.mkdirSync(targetDir, { recursive: true });
    const rootFile = path.join(this.dir, 'root.json');
    if (!fs.existsSync(rootFile)) writeFileAtomicSync(rootFile, initialRootBytes(this.mirror, this.opts.initialRoot));
    const make = () =>
      new tuf.Updater({
        metadataDir: this.dir,
        metadataBaseUrl: this.mirror,
        targetDir,
        targetBaseUrl: `${this.mirror}/targets`,
        // No retries: the next poll is the retry, and each request is bounded by the timeout.
        config: { fetchTimeout: this.timeoutMs, fetchRetry: 0, userAgent: 'molt' },
      });
    let updater: TufLib.Updater;
    try {
      updater = make();
    } catch (err) {
      // A torn root.json (tuf-js writes in place): start again from the initial root; the
      // rotations are verified again from it, and timestamp/snapshot still guard rollbacks.
      log.warn('cached TUF root.json unreadable; starting from the initial root', { mirror: this.mirror, error: tufErrorLine(err) });
      writeFileAtomicSync(rootFile, initialRootBytes(this.mirror, this.opts.initialRoot));
      updater = make();
    }
    await updater.refresh();
    const info = await updater.getTargetInfo(TARGET);
    if (!info) throw new Error(`the repository lists no ${TARGET}`);
    const file = (await updater.findCachedTarget(info)) ?? (await updater.downloadTarget(info));
    return fs.readFileSync(file);
  }
}

/**
 * For keyless trust without MOLT_TRUST_ROOT: the keeper of its root under `home`, which sets
 * `trust.keyless` from the cache now and from each root TUF vouches for. Undefined otherwise:
 * keyed verification never touches TUF.
 */
export function keepTrustRoot(trust: TrustConfig, home: string, opts: Partial<TufRootOptions> = {}): TufTrustRoot | undefined {
  if (!trust.tuf || !trust.identity) return undefined;
  const policy = { identity: trust.identity, issuer: trust.issuer! };
  const keeper = new TufTrustRoot({ cacheDir: path.join(home, 'trust', 'tuf'), ...trust.tuf, ...opts }, (root) => {
    trust.keyless = keylessTrust(root, policy);
  });
  keeper.loadCached();
  return keeper;
}
