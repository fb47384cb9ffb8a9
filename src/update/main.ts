// `molt updater`: the supervised service that keeps the app on the newest good
// release. Configuration errors stop it with exit 2 and one line.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { logger, setLogLevel } from '../common/log.js';
import { AppControl } from './appctl.js';
import { AppHold } from './hold.js';
import { ConfigError, readUpdaterConfig, type UpdaterConfig } from './config.js';
import { prepareHome } from './config-home.js';
import { Journal } from './journal.js';
import { VersionStore } from './store.js';
import { Updater, type UpdaterHooks } from './updater.js';
import { GitHubSource } from './sources/github.js';
import { LocalDirSource } from './sources/local.js';
import { OciSource } from './sources/oci.js';
import { BundledSource } from './sources/bundled.js';
import { UpdateError, type ReleaseSource } from './types.js';
import { loadTrustConfig, trustStartupWarning, type TrustConfig } from './trust/config.js';
import { TrustConfigError } from './trust/keys.js';
import type { TufTrustRoot } from './trust/tuf.js';
import { readFleetConfig, type FleetConfig } from './fleet/config.js';
import { Fleet } from './fleet/fleet.js';
import { VerdictBoard } from './fleet/board.js';
import { OciFleetBoard } from './fleet/boards.js';
import { GitHubFleetBoard } from './fleet/github-board.js';
import { RegistryClient } from './oci/client.js';
import { UpdaterCore } from './core.js';
import { SelfUpdater } from './self/updater.js';
import { execIntoChosen } from './self/resolve.js';

const log = logger('updater');

export function makeSource(cfg: UpdaterConfig, store: VersionStore): ReleaseSource {
  // exhaustive over SourceConfig['kind']
  const s = cfg.source;
  // MOLT_HTTP_TIMEOUT bounds the wait for an answer and each silence in a body alike (slow retrieval).
  const t = cfg.httpTimeoutMs;
  const timeouts = t !== undefined ? { timeoutMs: t, idleTimeoutMs: t } : {};
  switch (s.kind) {
    case 'github':
      return new GitHubSource({ repo: s.repo, token: s.token, baseUrl: s.apiUrl, asset: s.asset, requireChecksum: s.requireChecksum, store, ...timeouts });
    case 'oci':
      // Every OCI blob is verified by its digest; credentials come from MOLT_OCI_USER/PASSWORD or docker config.
      return new OciSource(s.ref, { insecure: s.insecure, cache: store, ...(t !== undefined ? { timeoutMs: t, idleMs: t } : {}) });
    case 'dir':
      return new LocalDirSource(s.dir, { requireChecksum: s.requireChecksum });
  }
  throw new Error('internal: unknown source kind');
}

/** The fleet over an OCI source's registry, or a GitHub source's release assets; a release directory keeps the local pause and the rollout spread alone. */
export function makeFleet(fc: FleetConfig, source: ReleaseSource, cfg: Pick<UpdaterConfig, 'home' | 'httpTimeoutMs'>): Fleet {
  if (source instanceof GitHubSource) {
    // Verdicts are read with or without a token (assets are public on a public repository); written with one.
    return new Fleet(fc, new GitHubFleetBoard(source.fleetPort(), { trust: fc.trust, ...(fc.key ? { key: fc.key } : {}) }), cfg.home);
  }
  if (!(source instanceof OciSource)) {
    if (fc.mode === 'write' || fc.canaryShare > 0) log.warn('MOLT_FLEET and MOLT_CANARY need an OCI or GitHub source (verdicts live there); the rollout spread alone applies', { source: source.description });
    return new Fleet({ ...fc, canaryShare: 0, mode: 'off' }, undefined, cfg.home);
  }
  const t = cfg.httpTimeoutMs;
  // Verdicts are advisory: one retry, not the source's four, so a failing registry never holds an update long.
  const client = new RegistryClient(source.ref, { push: fc.mode === 'write', retries: 1, ...(t !== undefined ? { timeoutMs: t, idleMs: t } : {}) });
  return new Fleet(fc, new OciFleetBoard(new VerdictBoard(client, { trust: fc.trust, ...(fc.key ? { key: fc.key } : {}) })), cfg.home);
}

export async function main(argv: string[]): Promise<number> {
  if (argv.length) {
    process.stderr.write(`molt updater: takes no arguments (configure it with MOLT_* variables; see molt help)\n`);
    return 2;
  }
  let cfg: UpdaterConfig;
  let updater: Updater;
  let store: VersionStore;
  let source: ReleaseSource;
  let trust: TrustConfig;
  let trustRoot: TufTrustRoot | undefined;
  let fleetCfg: FleetConfig;
  try {
    // First: a bad trust setting must stop the updater before it installs anything.
    trust = loadTrustConfig(process.env);
    cfg = readUpdaterConfig(process.env);
    setLogLevel(cfg.logLevel);
    prepareHome(cfg.home);
    // MOLT_SELF: this updater becomes the molt MOLT_HOME/molt/current holds, if that is not this one.
    execIntoChosen(path.join(cfg.home, 'molt'), cfg.self !== undefined, process.env);
    store = new VersionStore(cfg.home);
    // Keyless without MOLT_TRUST_ROOT: the cached Sigstore root now, TUF at each poll. Keyed trust never loads it.
    if (trust.tuf) trustRoot = (await import('./trust/tuf.js')).keepTrustRoot(trust, cfg.home);
    source = makeSource(cfg, store);
    fleetCfg = readFleetConfig(process.env, trust, os.hostname());
  } catch (err) {
    if (err instanceof ConfigError || err instanceof TrustConfigError || (err instanceof UpdateError && err.code === 'config')) {
      process.stderr.write(`molt updater: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const { createNotifier, notifiable } = await import('../api/notify.js');
  const notifier = createNotifier(cfg.notifyUrl);
  const { startApi } = await import('../api/server.js');
  const { createMetrics } = await import('../api/metrics.js');
  const metrics = createMetrics();
  const hooks: UpdaterHooks = {
    onEvent: (e) => {
      metrics.onEvent?.(e);
      if (notifiable(e)) notifier.notify({ ...e, host: os.hostname() });
    },
    onDownloadBytes: (n) => metrics.onDownloadBytes?.(n),
    onCheck: (ok) => metrics.onCheck?.(ok),
  };
  const journal = new Journal(cfg.home);
  const app = new AppControl(cfg.servicesDir, cfg.app);
  const hold = new AppHold(path.join(app.dir, 'supervise', 'hold'));
  const bundled = cfg.bundled ? new BundledSource(cfg.bundled, cfg.versionFile) : undefined;
  const fleet = makeFleet(fleetCfg, source, cfg);
  let self: { updater: SelfUpdater; spec: string } | undefined;
  if (cfg.self) {
    // The same pipeline a second time, over MOLT_HOME/molt, with molt's bundle as the release.
    const selfHome = path.join(cfg.home, 'molt');
    const selfCfg: UpdaterConfig = { ...cfg, source: cfg.self.source, policy: cfg.self.policy, home: selfHome, bundled: undefined, appDir: undefined };
    const selfStore = new VersionStore(selfHome);
    // molt's own commits, rollbacks and blocks reach MOLT_NOTIFY_URL too, marked as molt's (of: 'molt').
    const selfHooks: UpdaterHooks = { onEvent: (e) => notifiable(e) && notifier.notify({ ...e, host: os.hostname(), of: 'molt' }) };
    const core = new UpdaterCore({ config: selfCfg, source: makeSource(selfCfg, selfStore), store: selfStore, app, journal: new Journal(selfHome), hostname: os.hostname(), hooks: selfHooks, trust, ...(trustRoot ? { trustRoot } : {}) });
    self = { updater: new SelfUpdater({ core, servicesDir: cfg.servicesDir }), spec: cfg.self.spec };
  }
  updater = new Updater({ config: cfg, source, store, app, journal, hostname: os.hostname(), hooks, hold, trust, fleet, ...(trustRoot ? { trustRoot } : {}), ...(bundled ? { bundled } : {}), ...(self ? { self } : {}) });
  const { readServices } = await import('../api/services.js');
  let api: { close(): Promise<void> };
  try {
    api = await startApi(updater, {
      socket: cfg.socket,
      socketGroup: cfg.socketGroup,
      adminAddr: cfg.adminAddr,
      adminToken: cfg.adminToken,
      webhookSecret: cfg.webhookSecret,
      metrics,
      services: () => readServices(cfg.servicesDir),
    });
  } catch (err) {
    process.stderr.write(`molt updater: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  log.info('started', { ...(self ? { self: cfg.self!.spec, self_policy: cfg.self!.policy } : {}), fleet: fleet.cfg.mode, replica: fleet.cfg.replica, ...(fleet.cfg.canaryShare ? { canary: fleet.canary } : {}), source: source.description, ...(bundled ? { bundled: cfg.bundled } : {}), policy: cfg.policy, interval_ms: cfg.intervalMs, home: cfg.home, app: cfg.app, socket: cfg.socket });
  const trustWarning = trustStartupWarning(trust);
  if (trustWarning) process.stderr.write(`${trustWarning}\n`);
  else log.info('signatures required', { keys: trust.keys.length, ...(trust.identity ? { identity: trust.identity, issuer: trust.issuer } : {}), ...(trustRoot ? { root: `TUF ${trustRoot.mirror}` } : trust.root ? { root: trust.root } : {}) });
  if (!fs.existsSync(app.dir)) log.warn('app service directory not found', { dir: app.dir });
  await updater.start();
  return new Promise<number>((resolve) => {
    const stop = (sig: string) => {
      log.info('stopping', { signal: sig });
      updater.stop();
      void api.close().finally(() => resolve(0));
      setTimeout(() => resolve(0), 2000).unref();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  }).then((code) => process.exit(code));
}
