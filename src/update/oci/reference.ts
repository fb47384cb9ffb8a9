// MOLT_OCI / `molt publish` references: host[:port]/repo[:tag|@digest]. Pure parsing.
import { UpdateError } from '../types.js';

export interface OciReference {
  /** Host and port as written (the key for credentials), e.g. "127.0.0.1:5000", "ghcr.io". */
  registry: string;
  /** Base URL of the registry API, e.g. "https://ghcr.io" (no trailing slash). */
  baseUrl: string;
  repository: string;
  tag?: string;
  digest?: string;
  insecure: boolean;
}

// Distribution spec grammar for repository names and tags.
const NAME_RE = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
const HOST_RE = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*)(:\d{1,5})?$/;

/** Loopback hosts speak plain http by default: a registry there is a test or a sidecar. */
export function isLoopbackHost(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1';
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

/**
 * Parse `host[:port]/repo[:tag][@sha256:...]`. The first component must be a host: it holds a dot
 * or a port, or is "localhost". `docker.io` maps to Docker Hub's API host (and `library/` for
 * single-component names), since that is how people write Hub references.
 */
export function parseReference(raw: string, opts: { insecure?: boolean } = {}): OciReference {
  let s = raw.trim();
  const bad = (why: string) => new UpdateError(`bad OCI reference '${raw}': ${why}`, 'config');
  if (s === '') throw bad('empty');
  s = s.replace(/^oci:\/\//, '');
  if (/^[a-z]+:\/\//i.test(s)) throw bad('write host/repo without a URL scheme');
  let digest: string | undefined;
  const at = s.indexOf('@');
  if (at >= 0) {
    digest = s.slice(at + 1);
    s = s.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw bad(`digest '${digest}' is not sha256:<64 hex>`);
  }
  const slash = s.indexOf('/');
  if (slash <= 0) throw bad('expected host[:port]/repository');
  let registry = s.slice(0, slash);
  let rest = s.slice(slash + 1);
  if (!HOST_RE.test(registry) || !(registry.includes('.') || registry.includes(':') || registry === 'localhost')) {
    throw bad(`'${registry}' is not a registry host (it needs a dot, a port, or to be localhost)`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw bad(`tag '${tag}' is not a valid tag`);
  }
  if (!NAME_RE.test(rest)) throw bad(`repository '${rest}' is not a valid name (lower case, digits, . _ - /)`);
  let apiHost = registry;
  if (registry === 'docker.io' || registry === 'index.docker.io') {
    apiHost = 'registry-1.docker.io';
    if (!rest.includes('/')) rest = `library/${rest}`;
  }
  const insecure = opts.insecure === true || isLoopbackHost(registry);
  return { registry, baseUrl: `${insecure ? 'http' : 'https'}://${apiHost}`, repository: rest, tag, digest, insecure };
}

export function formatReference(ref: OciReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? ':' + ref.tag : ''}${ref.digest ? '@' + ref.digest : ''}`;
}
