// Registry authentication: WWW-Authenticate challenges, credentials from the environment or a
// docker config.json, and a cache of Bearer tokens per (realm, service, scope).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parse a WWW-Authenticate header (RFC 7235 auth-params): `Bearer realm="...",service="...",scope="..."`.
 * Several challenges may share one header; each starts with a bare scheme token.
 */
export function parseChallenges(header: string | undefined): Challenge[] {
  if (!header) return [];
  const out: Challenge[] = [];
  let i = 0;
  const s = header;
  const skipWs = () => {
    while (i < s.length && /[\s,]/.test(s[i]!)) i++;
  };
  while (i < s.length) {
    skipWs();
    const m = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+/.exec(s.slice(i));
    if (!m) break;
    i += m[0].length;
    const ch: Challenge = { scheme: m[0].toLowerCase(), params: {} };
    out.push(ch);
    // auth-params until the next token that is not followed by '='.
    for (;;) {
      const save = i;
      while (i < s.length && /[\s,]/.test(s[i]!)) i++;
      const k = /^([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*/.exec(s.slice(i));
      if (!k) {
        i = save;
        break;
      }
      i += k[0].length;
      let value = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i];
          i++;
        }
        i++;
      } else {
        const v = /^[^\s,]*/.exec(s.slice(i))![0];
        value = v;
        i += v.length;
      }
      ch.params[k[1]!.toLowerCase()] = value;
    }
    if (i === 0) break;
  }
  return out;
}

export interface Credentials {
  username: string;
  password: string;
}

function decodeAuth(b64: string): Credentials | undefined {
  const raw = Buffer.from(b64, 'base64').toString('utf8');
  const c = raw.indexOf(':');
  if (c <= 0) return undefined;
  return { username: raw.slice(0, c), password: raw.slice(c + 1) };
}

/** docker config.json keys come as "host", "host:port", "https://host/v1/" and the like. */
function normaliseAuthKey(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
}

/** Credentials for a registry from a parsed docker config.json (`auths[host].auth`, or username/password). */
export function credentialsFromDockerConfig(config: unknown, registry: string): Credentials | undefined {
  if (typeof config !== 'object' || config === null) return undefined;
  const auths = (config as { auths?: unknown }).auths;
  if (typeof auths !== 'object' || auths === null) return undefined;
  const want = normaliseAuthKey(registry);
  const hub = want === 'docker.io' || want === 'index.docker.io' || want === 'registry-1.docker.io';
  for (const [key, entry] of Object.entries(auths as Record<string, unknown>)) {
    const k = normaliseAuthKey(key);
    const match = k === want || (hub && (k === 'index.docker.io' || k === 'docker.io' || k === 'registry-1.docker.io'));
    if (!match || typeof entry !== 'object' || entry === null) continue;
    const e = entry as { auth?: unknown; username?: unknown; password?: unknown };
    if (typeof e.auth === 'string' && e.auth !== '') {
      const c = decodeAuth(e.auth);
      if (c) return c;
    }
    if (typeof e.username === 'string' && typeof e.password === 'string') return { username: e.username, password: e.password };
  }
  return undefined;
}

/** MOLT_OCI_USER/MOLT_OCI_PASSWORD, else `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function loadCredentials(registry: string, env: NodeJS.ProcessEnv = process.env): Credentials | undefined {
  if (env.MOLT_OCI_USER && env.MOLT_OCI_PASSWORD !== undefined) return { username: env.MOLT_OCI_USER, password: env.MOLT_OCI_PASSWORD };
  const dir = env.DOCKER_CONFIG || path.join(env.HOME || os.homedir(), '.docker');
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, 'config.json'), 'utf8');
  } catch {
    return undefined;
  }
  try {
    return credentialsFromDockerConfig(JSON.parse(text), registry);
  } catch {
    return undefined; // a broken config.json means no credentials, not a crash
  }
}

export function basicHeader(c: Credentials): string {
  return 'Basic ' + Buffer.from(`${c.username}:${c.password}`).toString('base64');
}

/** Parse a token endpoint answer: `token` or `access_token`, `expires_in` (default 60 s). */
export function parseTokenResponse(body: unknown, nowMs: number): { token: string; expiresAtMs: number } | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const b = body as { token?: unknown; access_token?: unknown; expires_in?: unknown };
  const token = typeof b.token === 'string' && b.token ? b.token : typeof b.access_token === 'string' && b.access_token ? b.access_token : undefined;
  if (!token) return undefined;
  const ttl = typeof b.expires_in === 'number' && b.expires_in > 0 ? b.expires_in : 60;
  // Renew a little early so a token never expires between check and use.
  return { token, expiresAtMs: nowMs + Math.max(1, ttl - 10) * 1000 };
}
