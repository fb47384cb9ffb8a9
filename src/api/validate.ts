// Input checks of the API as pure functions: version strings, request bodies,
// credentials in URLs. Each returns a one-line reason a person can act on.

export const MAX_VERSION_LENGTH = 128;

/** Why `v` is not acceptable as a version name, or undefined when it is. Versions become
 *  directory names under versions/, so anything that could walk the file system is refused. */
export function versionProblem(v: unknown): string | undefined {
  if (typeof v !== 'string') return 'version must be a string';
  if (v.length === 0) return 'version is empty';
  if (v.length > MAX_VERSION_LENGTH) return `version is longer than ${MAX_VERSION_LENGTH} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(v)) return 'version contains control characters';
  if (/[/\\]/.test(v)) return 'version contains a path separator';
  if (v.includes('..')) return "version contains '..'";
  if (v === '.') return "version is '.'";
  if (/\s/.test(v)) return 'version contains white space';
  return undefined;
}

/** Parse a JSON request body; empty means `{}`. Throws a one-line Error when malformed or not an object. */
export function parseJsonObject(raw: Buffer): Record<string, unknown> {
  const text = raw.toString('utf8').trim();
  if (text === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error('request body is not valid JSON');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('request body must be a JSON object');
  return v as Record<string, unknown>;
}

/** Query parameters whose names look like credentials: a token in a URL ends up in logs,
 *  proxies and browser history, so such a request is refused outright. */
const CREDENTIAL_PARAM = /token|auth|key|secret|pass|bearer|credential|sig/i;

export function credentialInQuery(query: string): boolean {
  if (!query) return false;
  for (const part of query.split('&')) {
    const name = part.split('=')[0] ?? '';
    let decoded = name;
    try {
      decoded = decodeURIComponent(name.replace(/\+/g, ' '));
    } catch {
      // A malformed escape is judged as written.
    }
    if (CREDENTIAL_PARAM.test(decoded)) return true;
  }
  return false;
}

/** Split a raw request target into path and query without normalising `..`
 *  (new URL() would turn /api/blocked/../status into /api/status). */
export function splitTarget(target: string): { path: string; query: string } {
  const q = target.indexOf('?');
  const hash = target.indexOf('#');
  const end = hash >= 0 ? hash : target.length;
  if (q >= 0 && q < end) return { path: target.slice(0, q), query: target.slice(q + 1, end) };
  return { path: target.slice(0, end), query: '' };
}

/** Decode one path segment; undefined when the escape is malformed. */
export function decodeSegment(seg: string): string | undefined {
  try {
    return decodeURIComponent(seg);
  } catch {
    return undefined;
  }
}

/** The body of PUT /api/blocked/VERSION: an optional reason, made one line (at most 200 characters), or the problem. */
export function blockReason(body: Record<string, unknown>): string | undefined | { problem: string } {
  for (const k of Object.keys(body)) if (k !== 'reason') return { problem: `unknown field ${JSON.stringify(k).slice(0, 40)} (only "reason")` };
  const r = body.reason;
  if (r === undefined || r === null) return undefined;
  if (typeof r !== 'string' || r.length > 200) return { problem: 'reason must be a string of at most 200 characters' };
  return r.replace(/\s+/g, ' ').trim() || undefined;
}
