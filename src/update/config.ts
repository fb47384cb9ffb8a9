// `molt updater`'s settings: every variable of DESIGN.md section 4 and 5, plus the
// seed's GH_USER, GH_REPO, SLEEP, SVWAIT and VERBOSE, read from the environment
// and the optional YAML file MOLT_CONFIG, and validated once, here. A bad value
// is a ConfigError with one line naming the variable, the value (never a secret)
// and what is allowed; the rest of the updater trusts UpdaterConfig.
import { groupId, readAccountDb } from '../common/accounts.js';
import net from 'node:net';
import { DIGEST_RE, parseReference } from './oci/reference.js';
import type { Policy } from './policy.js';
import { parseSchedule, type Schedule } from './schedule.js';
import { KNOWN } from './config-reference.js';
import { defaultStaleAfterMs } from './freshness.js';
import { readSelfConfig } from './self/config.js';
import { ConfigError, defaultReadFile, firstLine, readFileSettings, Settings, type Raw } from './config-settings.js';

export { configReference } from './config-reference.js';
export { ConfigError } from './config-settings.js';
export { MAX_TIMER_MS } from '../common/duration.js';

export type SourceConfig =
  | { kind: 'github'; repo: string; token?: string; apiUrl?: string; asset?: string; requireChecksum: boolean }
  | { kind: 'oci'; ref: string; user?: string; password?: string; insecure: boolean; requireChecksum: boolean }
  | { kind: 'dir'; dir: string; requireChecksum: boolean };

export interface UpdaterConfig {
  source: SourceConfig;
  policy: Policy;
  prerelease: boolean;
  intervalMs: number;
  /** MOLT_STALE_AFTER: no answer from the source for this long is reported (update/freshness.ts). */
  staleAfterMs: number;
  /** MOLT_HTTP_TIMEOUT: the wait for a source's answer, and for each next chunk of a download (unset: the sources' own defaults). */
  httpTimeoutMs?: number;
  schedule?: Schedule;
  delayMs: number;
  jitterMs: number;
  rolloutMs: number;
  home: string;
  keep: number;
  app: string;
  appDir?: string;
  versionFile: string;
  /** MOLT_BUNDLED: a release shipped in the image (a directory or a tarball), installed before the first poll. */
  bundled?: string;
  trialMs: number;
  ready: 'auto' | 'explicit';
  crashLimit: number;
  /** restart: stop the old version, then start the new one; overlap: start the new one beside it first (needs `listen`). */
  handover: 'restart' | 'overlap';
  socket: string;
  /** MOLT_SOCKET_GROUP as a gid: its members may use the socket's app calls. */
  socketGroup?: number;
  servicesDir: string;
  stopTimeoutMs: number;
  adminAddr?: string;
  adminToken?: string;
  webhookSecret?: string;
  notifyUrl?: string;
  logLevel: 'error' | 'warn' | 'info' | 'debug';
  /** MOLT_SELF: molt's own releases (update/self/); absent = off. */
  self?: SelfConfig;
}

export interface SelfConfig {
  source: SourceConfig;
  /** What MOLT_SELF said, for status. */
  spec: string;
  policy: Policy;
}

export const DEFAULT_CONFIG_FILE = '/etc/molt/molt.yaml';

const MAX_POLL_MS = 7 * 24 * 3600_000; // interval + jitter stay far below MAX_TIMER_MS
const SOCKET_PATH_MAX = 107; // sun_path is 108 bytes with its NUL

const GH_OWNER_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
const GH_NAME_RE = /^[A-Za-z0-9._-]{1,100}$/;

export function githubSource(s: Settings, requireChecksum: boolean): SourceConfig {
  let repo: string;
  if (s.has('MOLT_GITHUB')) {
    repo = s.get('MOLT_GITHUB')!.trim();
    const [owner, name, ...more] = repo.split('/');
    if (more.length || !owner || !name || !GH_OWNER_RE.test(owner) || !GH_NAME_RE.test(name) || name === '.' || name === '..') {
      s.fail('MOLT_GITHUB', 'must be owner/repo (e.g. octocat/hello-world)');
    }
  } else {
    const owner = s.get('GH_USER')!.trim();
    const name = s.get('GH_REPO')!.trim();
    if (!GH_OWNER_RE.test(owner)) s.fail('GH_USER', 'must be a GitHub user or organisation name (letters, digits, -)');
    if (!GH_NAME_RE.test(name) || name === '.' || name === '..') s.fail('GH_REPO', 'must be a repository name (letters, digits, . _ -)');
    repo = `${owner}/${name}`;
  }
  const token = s.secret('GITHUB_TOKEN');
  let apiUrl: string | undefined;
  const api = s.get('MOLT_GITHUB_API')?.trim();
  if (api !== undefined) {
    let u: URL;
    try {
      u = new URL(api);
    } catch {
      return s.fail('MOLT_GITHUB_API', 'must be an http(s) URL such as https://github.example.com/api/v3');
    }
    // Shown without its value: a URL with credentials in it is a secret.
    if (u.username || u.password) throw new ConfigError('MOLT_GITHUB_API must not hold credentials; put the token in GITHUB_TOKEN');
    if (u.protocol !== 'https:' && u.protocol !== 'http:') s.fail('MOLT_GITHUB_API', 'must be an http(s) URL such as https://github.example.com/api/v3');
    apiUrl = api.replace(/\/+$/, '');
  }
  let asset: string | undefined;
  const glob = s.get('MOLT_ASSET')?.trim();
  if (glob !== undefined) {
    if (glob.includes('/') || glob.includes('\0')) s.fail('MOLT_ASSET', 'must be an asset name glob without "/" (e.g. app_{version}_{os}_{arch}.tar.gz)');
    const unknown = /\{(?!(?:os|arch|version)\})[^}]*\}?/.exec(glob);
    if (unknown) s.fail('MOLT_ASSET', `has an unknown placeholder ${unknown[0]} (use {os}, {arch}, {version})`);
    asset = glob;
  }
  return { kind: 'github', repo, token, apiUrl, asset, requireChecksum };
}

export function ociSource(s: Settings, requireChecksum: boolean): SourceConfig {
  const ref = s.get('MOLT_OCI')!.trim();
  const insecure = s.bool('MOLT_OCI_INSECURE', false);
  let digest: string | undefined;
  try {
    digest = parseReference(ref, { insecure }).digest;
  } catch (err) {
    const why = (err as Error).message.replace(/^bad OCI reference '.*?': /, '');
    s.fail('MOLT_OCI', `is not host[:port]/repository[:tag]: ${why}`);
  }
  if (digest !== undefined && DIGEST_RE.test(digest)) s.fail('MOLT_OCI', 'pins a digest; give a tag to follow, or none to take the semver tags');
  const user = s.get('MOLT_OCI_USER')?.trim();
  const password = s.get('MOLT_OCI_PASSWORD');
  if (user !== undefined && password === undefined) throw new ConfigError('MOLT_OCI_USER is set but MOLT_OCI_PASSWORD is not (set both, or neither to use docker config.json)');
  if (user === undefined && password !== undefined) throw new ConfigError('MOLT_OCI_PASSWORD is set but MOLT_OCI_USER is not (set both, or neither to use docker config.json)');
  if (user !== undefined && /[\s:\0]/.test(user)) s.fail('MOLT_OCI_USER', 'must not contain spaces or ":"');
  return { kind: 'oci', ref, user, password, insecure, requireChecksum };
}

function readSource(s: Settings): SourceConfig {
  const gh = s.has('MOLT_GITHUB') || s.has('GH_USER') || s.has('GH_REPO');
  if (!s.has('MOLT_GITHUB')) {
    if (s.has('GH_USER') && !s.has('GH_REPO')) throw new ConfigError('GH_USER is set but GH_REPO is not (set both, or MOLT_GITHUB=owner/repo)');
    if (s.has('GH_REPO') && !s.has('GH_USER')) throw new ConfigError('GH_REPO is set but GH_USER is not (set both, or MOLT_GITHUB=owner/repo)');
  }
  const ghName = s.has('MOLT_GITHUB') ? 'MOLT_GITHUB' : 'GH_USER/GH_REPO';
  const set = [gh && ghName, s.has('MOLT_OCI') && 'MOLT_OCI', s.has('MOLT_DIR') && 'MOLT_DIR'].filter((x): x is string => !!x);
  if (set.length === 0) throw new ConfigError('no release source: set one of MOLT_GITHUB (or GH_USER and GH_REPO), MOLT_OCI, MOLT_DIR');
  if (set.length > 1) throw new ConfigError(`${set.join(' and ')} are ${set.length === 2 ? 'both' : 'all'} set; set exactly one release source (MOLT_GITHUB, MOLT_OCI or MOLT_DIR)`);
  const requireChecksum = s.bool('MOLT_REQUIRE_CHECKSUM', false);
  if (gh) return githubSource(s, requireChecksum);
  if (s.has('MOLT_OCI')) return ociSource(s, requireChecksum);
  return { kind: 'dir', dir: s.absPath('MOLT_DIR')!, requireChecksum };
}

function readApp(s: Settings): string {
  const v = s.get('MOLT_APP')?.trim();
  if (v === undefined) return 'app';
  if (!/^[A-Za-z0-9_@+=:,-][A-Za-z0-9._@+=:,-]*$/.test(v) || v.length > 255) {
    s.fail('MOLT_APP', 'must be a service name under MOLT_SERVICES (letters, digits, . _ - ; no "/", not starting with ".")');
  }
  return v;
}

const MIN_ADMIN_TOKEN = 16;

/** `host:port`, `[v6]:port` or `:port` (every interface); the same forms the API listener takes. */
function readAdminAddr(s: Settings, addr: string): { host: string; port: number } {
  const bad = () => s.fail('MOLT_ADMIN_ADDR', 'must be host:port (e.g. 127.0.0.1:8080, [::1]:8080, :8080)');
  const v6 = /^\[([^\]]+)\]:(\d{1,5})$/.exec(addr);
  const v4 = /^([^:[\]]*):(\d{1,5})$/.exec(addr);
  const m = v6 ?? v4;
  if (!m) return bad();
  const host = m[1] === '' ? '0.0.0.0' : m[1]!;
  const port = Number(m[2]);
  if (port > 65535) return bad();
  if (v6 ? !net.isIPv6(host) : !(net.isIPv4(host) || /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host))) return bad();
  return { host, port };
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  return host === '::1' || /^::ffff:127\./i.test(host);
}

function readLogLevel(s: Settings): UpdaterConfig['logLevel'] {
  if (s.has('MOLT_LOG_LEVEL')) return s.oneOf('MOLT_LOG_LEVEL', ['error', 'warn', 'info', 'debug'] as const, 'info');
  // The seed ran `set -x` for any VERBOSE value; 0/false/no/off read as "not verbose" (as log.ts does).
  const verbose = s.get('VERBOSE')?.trim().toLowerCase();
  if (verbose !== undefined && !['0', 'false', 'no', 'off'].includes(verbose)) return 'debug';
  return 'info';
}

/** Environment wins over the YAML file (MOLT_CONFIG, default /etc/molt/molt.yaml when it exists). The file's keys are the
 *  variable names themselves (`MOLT_POLICY: minor`, `GH_USER: octocat`); lower-case short keys are refused with a hint, and
 *  so are unknown keys, so that a typo is an error rather than a silently ignored setting. An empty variable counts as unset. */
export function readUpdaterConfig(env: NodeJS.ProcessEnv, readFile: (path: string) => string | undefined = defaultReadFile): UpdaterConfig {
  const explicit = env.MOLT_CONFIG?.trim() || undefined;
  const file = explicit ?? DEFAULT_CONFIG_FILE;
  if (explicit && !explicit.startsWith('/')) throw new ConfigError(`MOLT_CONFIG=${JSON.stringify(explicit)} must be an absolute path`);
  let text: string | undefined;
  try {
    text = readFile(file);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`MOLT_CONFIG file ${file} cannot be read: ${firstLine((err as Error).message)}`);
  }
  if (text === undefined && explicit) throw new ConfigError(`MOLT_CONFIG=${JSON.stringify(explicit)} does not exist`);
  const values = text === undefined ? new Map<string, Raw>() : readFileSettings(file, text);
  for (const name of KNOWN) {
    const v = env[name];
    if (v !== undefined && v.trim() !== '') values.set(name, { value: v });
  }
  const s = new Settings(values);

  const source = readSource(s);
  const policy = s.oneOf('MOLT_POLICY', ['latest', 'minor', 'patch', 'manual'] as const, 'latest');
  const prerelease = s.bool('MOLT_PRERELEASE', false);
  const intervalOpts = { min: 1000, minText: '1s', max: MAX_POLL_MS, maxText: '7d' };
  const intervalMs = s.has('MOLT_INTERVAL')
    ? s.duration('MOLT_INTERVAL', 300_000, intervalOpts)
    : s.duration('SLEEP', 300_000, { ...intervalOpts, bare: 's' });

  const staleAfterMs = s.duration('MOLT_STALE_AFTER', defaultStaleAfterMs(intervalMs), { min: 1000, minText: '1s' });
  const httpTimeoutMs = s.has('MOLT_HTTP_TIMEOUT') ? s.duration('MOLT_HTTP_TIMEOUT', 30_000, { min: 100, minText: '100ms' }) : undefined;

  let schedule: Schedule | undefined;
  const sched = s.get('MOLT_SCHEDULE');
  if (sched !== undefined) {
    try {
      schedule = parseSchedule(sched);
    } catch (err) {
      s.fail('MOLT_SCHEDULE', `is not a schedule: ${(err as Error).message}`);
    }
  }
  const delayMs = s.duration('MOLT_DELAY', 0);
  const jitterMs = s.duration('MOLT_JITTER', 0, { max: MAX_POLL_MS, maxText: '7d' });
  const rolloutMs = s.duration('MOLT_ROLLOUT', 0);
  const home = s.absPath('MOLT_HOME', '/var/lib/molt');
  const keep = s.int('MOLT_KEEP', 3, 1);
  const app = readApp(s);
  const appDir = s.absPath('MOLT_APP_DIR');
  const versionFile = s.absPath('MOLT_VERSION_FILE', '/version');
  const bundled = s.absPath('MOLT_BUNDLED');
  const trialMs = s.duration('MOLT_TRIAL', 30_000, { min: 1, minText: '1ms' });
  const ready = s.oneOf('MOLT_READY', ['auto', 'explicit'] as const, 'auto');
  const crashLimit = s.int('MOLT_CRASH_LIMIT', 2, 1);
  const handover = s.oneOf('MOLT_HANDOVER', ['restart', 'overlap'] as const, 'restart');
  const socket = s.absPath('MOLT_SOCKET', '/run/molt/molt.sock');
  if (Buffer.byteLength(socket) > SOCKET_PATH_MAX) s.fail('MOLT_SOCKET', `is too long for a Unix socket path (at most ${SOCKET_PATH_MAX} bytes)`);
  const socketGroup = readSocketGroup(s);
  const servicesDir = s.has('MOLT_SERVICES') ? s.absPath('MOLT_SERVICES', '/etc/service') : s.absPath('SVDIR', '/etc/service');
  const stopTimeoutMs = s.has('MOLT_STOP_TIMEOUT') ? s.duration('MOLT_STOP_TIMEOUT', 7000) : s.duration('SVWAIT', 7000, { bare: 's' });

  let adminAddr: string | undefined;
  const adminToken = s.secret('MOLT_ADMIN_TOKEN');
  if (adminToken !== undefined && adminToken.length < MIN_ADMIN_TOKEN) throw new ConfigError(`MOLT_ADMIN_TOKEN is too short (at least ${MIN_ADMIN_TOKEN} characters)`);
  const addr = s.get('MOLT_ADMIN_ADDR')?.trim();
  if (addr !== undefined) {
    const { host } = readAdminAddr(s, addr);
    // An API that can roll back or replace the app is never open to the network without a token.
    if (!adminToken && !isLoopback(host)) s.fail('MOLT_ADMIN_ADDR', 'is not a loopback address; set MOLT_ADMIN_TOKEN to serve it');
    adminAddr = addr;
  }
  const webhookSecret = s.get('MOLT_WEBHOOK_SECRET')?.trim() || undefined;

  let notifyUrl: string | undefined;
  const notify = s.get('MOLT_NOTIFY_URL')?.trim();
  if (notify !== undefined) {
    let u: URL | undefined;
    try {
      u = new URL(notify);
    } catch {
      u = undefined;
    }
    // The value is not shown: Discord and Slack webhook URLs are credentials.
    if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) throw new ConfigError(`${s.show('MOLT_NOTIFY_URL')} must be an http(s) URL`);
    notifyUrl = notify;
  }
  const logLevel = readLogLevel(s);
  const self = readSelfConfig(s);

  return {
    source,
    policy,
    prerelease,
    intervalMs,
    staleAfterMs,
    ...(httpTimeoutMs !== undefined ? { httpTimeoutMs } : {}),
    schedule,
    delayMs,
    jitterMs,
    rolloutMs,
    home,
    keep,
    app,
    appDir,
    versionFile,
    bundled,
    trialMs,
    ready,
    crashLimit,
    handover,
    socket,
    socketGroup,
    servicesDir,
    stopTimeoutMs,
    adminAddr,
    adminToken,
    webhookSecret,
    notifyUrl,
    logLevel,
    ...(self ? { self } : {}),
  };
}

/** MOLT_SOCKET_GROUP: a group name from /etc/group, or a gid. */
function readSocketGroup(s: Settings): number | undefined {
  const raw = s.get('MOLT_SOCKET_GROUP')?.trim();
  if (raw === undefined || raw === '') return undefined;
  const gid = groupId(readAccountDb(), raw);
  if (gid === undefined) s.fail('MOLT_SOCKET_GROUP', 'is not a group in /etc/group nor a gid');
  return gid;
}
