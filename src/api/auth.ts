// Admin TCP access: the listen address, the loopback rule, and the Bearer token
// compared in constant time. Pure functions; the token itself is never logged.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import net from 'node:net';

export interface AdminAddr {
  host: string;
  port: number;
}

/** `host:port`, `[v6]:port`, or `:port` (all interfaces). Throws a one-line Error naming the value. */
export function parseAdminAddr(raw: string): AdminAddr {
  const s = raw.trim();
  const bad = () => new Error(`MOLT_ADMIN_ADDR=${JSON.stringify(raw)} is not host:port (e.g. 127.0.0.1:8080)`);
  let host: string;
  let portText: string;
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(s);
  if (v6) {
    host = v6[1]!;
    portText = v6[2]!;
    if (net.isIPv6(host) === false) throw bad();
  } else {
    const i = s.lastIndexOf(':');
    if (i < 0) throw bad();
    host = s.slice(0, i);
    portText = s.slice(i + 1);
    if (host.includes(':')) throw bad();
    if (host === '') host = '0.0.0.0';
  }
  if (!/^\d{1,5}$/.test(portText)) throw bad();
  const port = Number(portText);
  if (port > 65535) throw bad();
  if (host !== 'localhost' && !net.isIP(host) && !/^[A-Za-z0-9.-]+$/.test(host)) throw bad();
  return { host, port };
}

export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  if (net.isIPv6(host)) return host === '::1' || /^::ffff:127\./i.test(host);
  return false;
}

export const MIN_TOKEN_LENGTH = 16;

/** Why the admin listener must not start with this address and token, or undefined. */
export function adminProblem(addr: AdminAddr, token: string | undefined): string | undefined {
  if (token !== undefined && token.length < MIN_TOKEN_LENGTH) {
    return `MOLT_ADMIN_TOKEN is too short (at least ${MIN_TOKEN_LENGTH} characters)`;
  }
  if (!token && !isLoopbackHost(addr.host)) {
    return `MOLT_ADMIN_ADDR=${addr.host}:${addr.port} is not a loopback address; set MOLT_ADMIN_TOKEN to serve it`;
  }
  return undefined;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** A checker bound to one token: compares SHA-256 digests (equal length) with timingSafeEqual,
 *  so neither the content nor the length of the token leaks through timing. */
export function bearerChecker(token: string): (authorization: string | undefined) => boolean {
  const want = digest(token);
  return (authorization) => {
    if (!authorization) return false;
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (!m) return false;
    return timingSafeEqual(digest(m[1]!), want);
  };
}

/** GitHub's `X-Hub-Signature-256: sha256=<hex>` over the raw body, checked in constant time. */
export function githubSignatureValid(secret: string, body: Buffer, header: string | undefined): boolean {
  if (!header) return false;
  const m = /^sha256=([0-9a-fA-F]{64})$/.exec(header.trim());
  if (!m) return false;
  const got = Buffer.from(m[1]!.toLowerCase(), 'hex');
  const want = createHmac('sha256', secret).update(body).digest();
  return got.length === want.length && timingSafeEqual(got, want);
}

export function githubSignature(secret: string, body: Buffer | string): string {
  return 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
}

/** Browsers on the same machine are the TCP listener's other danger: a page elsewhere may
 *  POST to it (CSRF) or rebind its own DNS name to 127.0.0.1. A cross-origin request is
 *  refused; without a token (loopback only) the Host must also name a loopback address. */
export function browserProblem(host: string | undefined, origin: string | undefined, fetchSite: string | undefined, hasToken: boolean): string | undefined {
  if (fetchSite === 'cross-site') return 'cross-site request refused';
  if (origin !== undefined) {
    let originHost: string | undefined;
    try {
      originHost = new URL(origin).host;
    } catch {
      originHost = undefined;
    }
    if (!host || originHost !== host.toLowerCase()) return 'cross-origin request refused';
  }
  if (!hasToken) {
    const name = (host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '').toLowerCase();
    if (!isLoopbackHost(name)) return `Host ${JSON.stringify((host ?? '').slice(0, 100))} is not a loopback name; refused without MOLT_ADMIN_TOKEN`;
  }
  return undefined;
}
