// `molt updater`'s settings: every variable of DESIGN.md section 4 and 5, plus the
// seed's GH_USER, GH_REPO, SLEEP, SVWAIT and VERBOSE, read from the environment
// and the optional YAML file MOLT_CONFIG, and validated once, here. A bad value
// is a ConfigError with one line naming the variable, the value (never a secret)
// and what is allowed; the rest of the updater trusts UpdaterConfig.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import msParse from 'ms';
import { parseDuration } from '../common/duration.js';
import net from 'node:net';
import { DIGEST_RE, parseReference } from './oci/reference.js';
import type { Policy } from './policy.js';
import { parseSchedule, type Schedule } from './schedule.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export type SourceConfig =
  | { kind: 'github'; repo: string; token?: string; apiUrl?: string; asset?: string; requireChecksum: boolean }
  | { kind: 'oci'; ref: string; user?: string; password?: string; insecure: boolean; requireChecksum: boolean }
  | { kind: 'dir'; dir: string; requireChecksum: boolean };

export interface UpdaterConfig {
  source: SourceConfig;
  policy: Policy;
  prerelease: boolean;
  intervalMs: number;
  schedule?: Schedule;
  delayMs: number;
  jitterMs: number;
  rolloutMs: number;
  home: string;
  keep: number;
  app: string;
  appDir?: string;
  versionFile: string;
  trialMs: number;
  ready: 'auto' | 'explicit';
  crashLimit: number;
  /** restart: stop the old version, then start the new one; overlap: start the new one beside it first (needs `listen`). */
  handover: 'restart' | 'overlap';
  socket: string;
  servicesDir: string;
  stopTimeoutMs: number;
  adminAddr?: string;
  adminToken?: string;
  webhookSecret?: string;
  notifyUrl?: string;
  logLevel: 'error' | 'warn' | 'info' | 'debug';
}

export const DEFAULT_CONFIG_FILE = '/etc/molt/molt.yaml';

/** A table of every variable: name, default, meaning — used for README's configuration reference and `molt help config`. */
export const configReference: { name: string; default: string; meaning: string }[] = [
  { name: 'MOLT_CONFIG', default: '/etc/molt/molt.yaml (when it exists)', meaning: 'YAML file whose keys are these variable names (e.g. "MOLT_POLICY: minor"); the environment wins over it' },
  { name: 'MOLT_GITHUB', default: '', meaning: 'release source: GitHub Releases of owner/repo (exactly one of MOLT_GITHUB, MOLT_OCI, MOLT_DIR)' },
  { name: 'GH_USER', default: '', meaning: 'seed form of MOLT_GITHUB: the owner, with GH_REPO' },
  { name: 'GH_REPO', default: '', meaning: 'seed form of MOLT_GITHUB: the repository, with GH_USER' },
  { name: 'GITHUB_TOKEN', default: '', meaning: 'GitHub token: private repositories and 5,000 requests/h instead of 60; never logged' },
  { name: 'MOLT_GITHUB_API', default: 'https://api.github.com', meaning: 'GitHub API base URL (Enterprise Server: https://HOST/api/v3)' },
  { name: 'MOLT_ASSET', default: 'the single .tar.gz/.tgz asset, preferring linux and this arch', meaning: 'glob choosing the release asset; {os}, {arch} and {version} are substituted' },
  { name: 'MOLT_REQUIRE_CHECKSUM', default: '0', meaning: '1: refuse a release that cannot be verified (no asset digest, no checksum file, an unlisted MOLT_DIR entry)' },
  { name: 'MOLT_OCI', default: '', meaning: 'release source: OCI registry host[:port]/repo[:tag]; with a tag the tag is followed, without one the semver tags are the releases' },
  { name: 'MOLT_OCI_USER', default: 'from docker config.json', meaning: 'registry user name, with MOLT_OCI_PASSWORD' },
  { name: 'MOLT_OCI_PASSWORD', default: 'from docker config.json', meaning: 'registry password or token, with MOLT_OCI_USER; never logged' },
  { name: 'MOLT_OCI_INSECURE', default: '0', meaning: '1: plain http to a registry that is not on loopback (loopback always uses http)' },
  { name: 'MOLT_DIR', default: '', meaning: 'release source: a local directory (absolute path) of <version>/ or <version>.tar.gz, optional SHA256SUMS' },
  { name: 'MOLT_POLICY', default: 'latest', meaning: 'latest (any newer release), minor (same major), patch (same major.minor), manual (report, apply only when asked)' },
  { name: 'MOLT_PRERELEASE', default: '0', meaning: '1: prereleases are candidates too' },
  { name: 'MOLT_INTERVAL', default: '5m', meaning: 'time between polls (30s, 5m, 1h; bare numbers are ms), 1s to 7d' },
  { name: 'SLEEP', default: '', meaning: 'seed form of MOLT_INTERVAL, in seconds' },
  { name: 'MOLT_SCHEDULE', default: 'always', meaning: 'windows when an update may be applied, local time: "mo-fr 9-17", "sa,su", "18-22", "22-6", "mo-fr 9-17; sa 10-12"' },
  { name: 'MOLT_DELAY', default: '0', meaning: 'wait this long after a release is first seen before applying it' },
  { name: 'MOLT_JITTER', default: '0', meaning: 'add a random [0, JITTER) to each poll interval, at most 7d' },
  { name: 'MOLT_ROLLOUT', default: '0', meaning: 'spread a fleet: each host waits a delay in [0, ROLLOUT) fixed by a hash of its hostname and the version' },
  { name: 'MOLT_HOME', default: '/var/lib/molt', meaning: 'versions/, current, previous, state.json, cache/, staging/' },
  { name: 'MOLT_KEEP', default: '3', meaning: 'how many versions to keep on disk (integer >= 1)' },
  { name: 'MOLT_APP', default: 'app', meaning: 'the service (directory under MOLT_SERVICES) that runs the release' },
  { name: 'MOLT_APP_DIR', default: '', meaning: 'a symlink kept pointing at the version in use (for run scripts that cannot use MOLT_HOME/current)' },
  { name: 'MOLT_VERSION_FILE', default: '/version', meaning: 'file holding the version in use' },
  { name: 'MOLT_TRIAL', default: '30s', meaning: 'a new version is committed after staying up this long (and passing check), or at once when it reports ready' },
  { name: 'MOLT_READY', default: 'auto', meaning: 'auto: surviving the trial commits; explicit: the app must report ready (molt ready) before the trial ends' },
  { name: 'MOLT_HANDOVER', default: 'restart', meaning: 'restart: stop the old version, then start the new one; overlap: start the new one beside the old one on the app\'s listen sockets, stop the old one only once the new one passed its trial' },
  { name: 'MOLT_CRASH_LIMIT', default: '2', meaning: 'deaths during the trial that roll it back (integer >= 1)' },
  { name: 'MOLT_SOCKET', default: '/run/molt/molt.sock', meaning: 'the API socket (mode 0600) that the CLI and apps talk to' },
  { name: 'MOLT_SERVICES', default: '/etc/service', meaning: 'service directories (environment only, shared with molt init)' },
  { name: 'SVDIR', default: '', meaning: 'seed/runit form of MOLT_SERVICES (environment only)' },
  { name: 'MOLT_STOP_TIMEOUT', default: '7s', meaning: 'how long a service may take to stop before SIGKILL' },
  { name: 'SVWAIT', default: '', meaning: 'seed form of MOLT_STOP_TIMEOUT, in seconds' },
  { name: 'MOLT_ADMIN_ADDR', default: 'off', meaning: 'host:port for the API over TCP; a non-loopback address needs MOLT_ADMIN_TOKEN' },
  { name: 'MOLT_ADMIN_TOKEN', default: '', meaning: 'Bearer token for MOLT_ADMIN_ADDR, at least 16 characters; never logged' },
  { name: 'MOLT_WEBHOOK_SECRET', default: '', meaning: 'HMAC secret checked on POST /api/notify (X-Hub-Signature-256)' },
  { name: 'MOLT_NOTIFY_URL', default: '', meaning: 'URL that receives commit, rollback, block and crash-loop events (Discord and Slack understood); never logged' },
  { name: 'MOLT_LOG_LEVEL', default: 'info', meaning: 'error, warn, info or debug' },
  { name: 'VERBOSE', default: '', meaning: 'seed switch: any value but 0/false means MOLT_LOG_LEVEL=debug' },
  { name: 'MOLT_MAX_BACKOFF', default: '30s', meaning: 'molt init: longest wait between restarts of a dying service (environment only)' },
  { name: 'MOLT_FINISH_TIMEOUT', default: '5s', meaning: 'molt init: how long a finish script may run (environment only)' },
  { name: 'MOLT_LOG_PREFIX', default: '1', meaning: 'molt init: 0 stops prefixing service output with [name] (environment only)' },
];

/** Read by molt init from its environment only: a different value in the file would split init and updater. */
const ENV_ONLY = new Set(['MOLT_CONFIG', 'MOLT_SERVICES', 'SVDIR', 'MOLT_MAX_BACKOFF', 'MOLT_FINISH_TIMEOUT', 'MOLT_LOG_PREFIX']);
const KNOWN = new Set(configReference.map((r) => r.name));
/** Values never shown in messages. MOLT_NOTIFY_URL is here because webhook URLs carry their token. */
const SECRET = new Set(['GITHUB_TOKEN', 'MOLT_OCI_PASSWORD', 'MOLT_ADMIN_TOKEN', 'MOLT_WEBHOOK_SECRET', 'MOLT_NOTIFY_URL']);
/** Node's timers take at most 2^31-1 ms; a longer one fires after 1 ms, so every duration is bounded by it. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
const MAX_TIMER_TEXT = '24d (2^31-1 ms, the longest timer)';
const MAX_POLL_MS = 7 * 24 * 3600_000; // interval + jitter stay far below MAX_TIMER_MS
const SOCKET_PATH_MAX = 107; // sun_path is 108 bytes with its NUL

/** A well-formed duration longer than MAX_TIMER_MS (read as parseDuration reads it, without any bound). */
function pastLongestTimer(raw: string, bare: 'ms' | 's'): boolean {
  const t = raw.trim();
  const v = /^\d+(\.\d+)?$/.test(t) ? Number(t) * (bare === 's' ? 1000 : 1) : msParse(t as msParse.StringValue);
  return typeof v === 'number' && Number.isFinite(v) && v > MAX_TIMER_MS;
}

interface Raw {
  value: string;
  file?: string;
}

function defaultReadFile(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(`MOLT_CONFIG file ${p} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim().replace(/:$/, '');
}

/** The file's settings as strings, keyed by variable name. */
function readFileSettings(file: string, text: string): Map<string, Raw> {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new ConfigError(`MOLT_CONFIG file ${file} is not valid YAML: ${firstLine((err as Error).message)}`);
  }
  const out = new Map<string, Raw>();
  if (doc === null || doc === undefined) return out;
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`MOLT_CONFIG file ${file} must be a mapping of variable names to values (e.g. "MOLT_POLICY: minor")`);
  for (const [key, v] of Object.entries(doc as Record<string, unknown>)) {
    if (!KNOWN.has(key)) {
      const upper = key.toUpperCase();
      const meant = KNOWN.has('MOLT_' + upper) ? 'MOLT_' + upper : KNOWN.has(upper) ? upper : undefined;
      if (meant) throw new ConfigError(`unknown key ${JSON.stringify(key)} in MOLT_CONFIG file ${file}: write ${meant} (keys are the variable names)`);
      throw new ConfigError(`unknown key ${JSON.stringify(key)} in MOLT_CONFIG file ${file} (keys are the variable names, e.g. MOLT_POLICY; see molt help config)`);
    }
    if (ENV_ONLY.has(key)) throw new ConfigError(`${key} in MOLT_CONFIG file ${file} is read from the environment only (molt init reads it too)`);
    let value: string;
    if (v === null || v === undefined) continue;
    if (typeof v === 'string') {
      if (v.trim() === '') continue; // as in the environment: empty is unset
      value = v;
    }
    else if (typeof v === 'number' && Number.isFinite(v)) value = String(v);
    else if (typeof v === 'boolean') value = v ? '1' : '0';
    else if (key === 'MOLT_SCHEDULE' && Array.isArray(v) && v.every((x) => typeof x === 'string')) value = v.join('; ');
    else throw new ConfigError(`${key} in MOLT_CONFIG file ${file} must be a string, number or boolean`);
    out.set(key, { value, file });
  }
  return out;
}

class Settings {
  constructor(private readonly values: Map<string, Raw>) {}

  raw(name: string): Raw | undefined {
    return this.values.get(name);
  }
  get(name: string): string | undefined {
    return this.values.get(name)?.value;
  }
  has(name: string): boolean {
    return this.values.has(name);
  }

  /** `NAME="value"` (or just NAME for secrets), and where it came from when that was the file. */
  show(name: string): string {
    const r = this.values.get(name);
    if (!r) return name;
    const v = SECRET.has(name) ? name : `${name}=${JSON.stringify(r.value)}`;
    return r.file ? `${v} (in ${r.file})` : v;
  }
  fail(name: string, allowed: string): never {
    throw new ConfigError(`${this.show(name)} ${allowed}`);
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const v = this.get(name)?.trim().toLowerCase();
    if (v === undefined) return fallback;
    if ((allowed as readonly string[]).includes(v)) return v as T;
    return this.fail(name, `must be one of ${allowed.join(', ')}`);
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.get(name)?.trim().toLowerCase();
    if (v === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    return this.fail(name, 'must be 1 or 0 (or true/false, yes/no, on/off)');
  }

  int(name: string, fallback: number, min: number): number {
    const v = this.get(name)?.trim();
    if (v === undefined) return fallback;
    if (!/^\d{1,9}$/.test(v) || Number(v) < min) return this.fail(name, `must be an integer >= ${min}`);
    return Number(v);
  }

  duration(name: string, fallback: number, o: { bare?: 'ms' | 's'; min?: number; max?: number; minText?: string; maxText?: string } = {}): number {
    const v = this.get(name);
    if (v === undefined) return fallback;
    const bare = o.bare ?? 'ms';
    const ms = parseDuration(v, bare);
    // parseDuration may itself refuse a duration past the longest timer (common/duration.ts): say so, not "not a duration".
    if (ms === undefined && pastLongestTimer(v, bare)) return this.fail(name, `is too long (at most ${o.maxText ?? MAX_TIMER_TEXT})`);
    if (ms === undefined) {
      return this.fail(name, bare === 's' ? 'must be a number of seconds (or a duration such as 30s, 5m)' : 'must be a duration such as 500ms, 30s, 5m, 1h (bare numbers are milliseconds)');
    }
    const r = Math.round(ms);
    if (o.min !== undefined && r < o.min) return this.fail(name, `is too short (at least ${o.minText})`);
    if (o.max !== undefined && r > o.max) return this.fail(name, `is too long (at most ${o.maxText})`);
    if (r > MAX_TIMER_MS) return this.fail(name, `is too long (at most ${MAX_TIMER_TEXT})`);
    return r;
  }

  /** An absolute path other than "/", normalized. */
  absPath(name: string, fallback: string): string;
  absPath(name: string, fallback?: undefined): string | undefined;
  absPath(name: string, fallback?: string): string | undefined {
    const v = this.get(name)?.trim();
    if (v === undefined) return fallback;
    if (!v.startsWith('/') || v.includes('\0')) return this.fail(name, 'must be an absolute path');
    const p = path.posix.normalize(v).replace(/\/+$/, '');
    if (p === '') return this.fail(name, 'must be an absolute path other than /');
    return p;
  }

  secret(name: string): string | undefined {
    const v = this.get(name)?.trim();
    if (v === undefined) return undefined;
    if (/[\s\0]/.test(v)) throw new ConfigError(`${this.show(name)} must not contain spaces or line breaks`);
    return v;
  }
}

const GH_OWNER_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
const GH_NAME_RE = /^[A-Za-z0-9._-]{1,100}$/;

function githubSource(s: Settings, requireChecksum: boolean): SourceConfig {
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

function ociSource(s: Settings, requireChecksum: boolean): SourceConfig {
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
  const trialMs = s.duration('MOLT_TRIAL', 30_000, { min: 1, minText: '1ms' });
  const ready = s.oneOf('MOLT_READY', ['auto', 'explicit'] as const, 'auto');
  const crashLimit = s.int('MOLT_CRASH_LIMIT', 2, 1);
  const handover = s.oneOf('MOLT_HANDOVER', ['restart', 'overlap'] as const, 'restart');
  const socket = s.absPath('MOLT_SOCKET', '/run/molt/molt.sock');
  if (Buffer.byteLength(socket) > SOCKET_PATH_MAX) s.fail('MOLT_SOCKET', `is too long for a Unix socket path (at most ${SOCKET_PATH_MAX} bytes)`);
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

  return {
    source,
    policy,
    prerelease,
    intervalMs,
    schedule,
    delayMs,
    jitterMs,
    rolloutMs,
    home,
    keep,
    app,
    appDir,
    versionFile,
    trialMs,
    ready,
    crashLimit,
    handover,
    socket,
    servicesDir,
    stopTimeoutMs,
    adminAddr,
    adminToken,
    webhookSecret,
    notifyUrl,
    logLevel,
  };
}
