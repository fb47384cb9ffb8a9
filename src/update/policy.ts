// Which release to take: semver ordering (never the registry's or the API's
// order: knockknock took the last tag of a lexical list and went from 0.9.0 to
// 0.10.0's predecessor), update policies, prereleases, the blocklist and the
// no-downgrade rule. Pure functions; the updater supplies the facts.
import semver from 'semver';

export type Policy = 'latest' | 'minor' | 'patch' | 'manual';

export interface Candidate {
  version: string;
  prerelease: boolean;
}

function stripV(v: string): string {
  return /^[vV]\d/.test(v) ? v.slice(1) : v;
}

/** The parsed version when `v` is exactly a semver (after one optional leading 'v'), else undefined.
 *  semver.parse alone tolerates spaces and '=' prefixes, which no tag should carry. */
function parse(v: string): semver.SemVer | undefined {
  const s = stripV(v);
  const p = semver.parse(s);
  if (!p) return undefined;
  const exact = p.version + (p.build.length ? '+' + p.build.join('.') : '');
  return exact === s ? p : undefined;
}

export function isSemver(v: string): boolean {
  return parse(v) !== undefined;
}

/** Natural string order for labels that are not semver: digit runs compare by value
 *  ("build-10" after "build-9"), the rest by code unit, so the order never depends on a locale. */
function compareLabels(a: string, b: string): number {
  const ra = a.match(/\d+|\D+/g) ?? [];
  const rb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(ra.length, rb.length); i++) {
    const x = ra[i]!;
    const y = rb[i]!;
    if (x === y) continue;
    const dx = /^\d/.test(x);
    const dy = /^\d/.test(y);
    if (dx && dy) {
      const nx = x.replace(/^0+/, '');
      const ny = y.replace(/^0+/, '');
      if (nx.length !== ny.length) return nx.length < ny.length ? -1 : 1;
      if (nx !== ny) return nx < ny ? -1 : 1;
      if (x.length !== y.length) return x.length < y.length ? -1 : 1;
      continue;
    }
    return x < y ? -1 : 1;
  }
  if (ra.length !== rb.length) return ra.length < rb.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Semver order (0.10.0 > 0.9.0, 1.0.0 > 1.0.0-rc.2); a leading 'v' tolerated; labels that are not
 *  semver sort below every semver and compare by string. Build metadata has no precedence (semver §10):
 *  1.0.0+a and 1.0.0+b compare equal. */
export function compareVersions(a: string, b: string): number {
  const pa = parse(a);
  const pb = parse(b);
  if (pa && pb) return semver.compare(pa, pb);
  if (pa) return 1;
  if (pb) return -1;
  return compareLabels(a, b);
}

/** Newest first. Stable: releases of equal precedence keep the source's order. */
export function sortNewestFirst<T extends Candidate>(releases: T[]): T[] {
  return [...releases].sort((x, y) => compareVersions(y.version, x.version));
}

/** A prerelease by the source's flag or by its version (1.2.0-rc.1): a GitHub release tagged
 *  -rc.1 but not flagged must not reach a host that did not ask for prereleases. */
function isPrerelease(c: Candidate): boolean {
  if (c.prerelease) return true;
  const p = parse(c.version);
  return p !== undefined && p.prerelease.length > 0;
}

function isBlocked(version: string, blocked: ReadonlySet<string>): boolean {
  return blocked.has(version) || blocked.has(stripV(version)) || blocked.has('v' + stripV(version));
}

function samePolicyLine(p: semver.SemVer, cur: semver.SemVer, policy: Policy): boolean {
  if (policy === 'minor') return p.major === cur.major;
  if (policy === 'patch') return p.major === cur.major && p.minor === cur.minor;
  return true;
}

function sameVersion(a: string, b: string): boolean {
  return a === b || stripV(a) === stripV(b);
}

/** The release the policy takes now: newest release that is newer than `current` (any newer when current is unknown or not semver —
 *  except that a non-semver release (an OCI tag followed by digest, version like "sha-0123abcd4567") is taken when it differs from current),
 *  within the policy (minor: same major; patch: same major.minor; latest and manual: any — manual is decided by the caller),
 *  prereleases only when `prerelease`, never a blocked one, never a downgrade. undefined when nothing qualifies.
 *
 *  Non-semver releases are considered only when the list holds no semver release at all (a followed tag lists exactly one
 *  release). Otherwise a "nightly" beside "1.2.0" would be taken from 1.2.0 and left again for 1.2.0 on the next poll, forever.
 *  Among non-semver releases the list order bounds the choice: when current is listed, nothing at or below it is taken. */
export function chooseRelease<T extends Candidate>(
  releases: T[],
  opts: { current?: string; policy: Policy; prerelease: boolean; blocked: ReadonlySet<string> },
): T | undefined {
  const sorted = sortNewestFirst(releases);
  const eligible = (r: T) => (opts.prerelease || !isPrerelease(r)) && !isBlocked(r.version, opts.blocked);
  const cur = opts.current !== undefined ? parse(opts.current) : undefined;
  const anySemver = sorted.some((r) => isSemver(r.version));

  if (anySemver) {
    for (const r of sorted) {
      const p = parse(r.version);
      if (!p) continue;
      if (cur) {
        // Sorted newest first: once at or below current, nothing further is newer.
        if (semver.compare(p, cur) <= 0) return undefined;
        if (!samePolicyLine(p, cur, opts.policy)) continue;
      }
      if (eligible(r)) return r;
    }
    return undefined;
  }

  for (const r of sorted) {
    if (opts.current !== undefined && sameVersion(r.version, opts.current)) return undefined;
    if (eligible(r)) return r;
  }
  return undefined;
}

/** A version asked for by name (molt update VERSION): found by exact or 'v'-prefixed match; may be older (a named downgrade),
 *  may be blocked only because it was named. An exact match on the version wins over a 'v' match, and either over a match
 *  on the source's tag (when the candidate carries one, as Release does). */
export function findNamed<T extends Candidate>(releases: T[], name: string): T | undefined {
  const n = name.trim();
  if (n === '') return undefined;
  return (
    releases.find((r) => r.version === n) ??
    releases.find((r) => sameVersion(r.version, n)) ??
    releases.find((r) => {
      const tag = (r as { tag?: unknown }).tag;
      return typeof tag === 'string' && sameVersion(tag, n);
    })
  );
}

export type BundledDecision = { install: true; why: string } | { install: false; why: string };

/** MOLT_BUNDLED at start: does the image's release become `current`? Yes when nothing is installed, or when it is newer
 *  than `current` by semver (a newer image on an older persistent volume). Never a blocked version (it failed here
 *  before), never a downgrade or the same version, and never over a current it cannot be ordered against (either
 *  label not semver: which is newer is unknown). Neither the policy nor prereleases limit it: the image is what was deployed. */
export function decideBundled(o: { bundled: string; current?: string; blocked: ReadonlySet<string> }): BundledDecision {
  if (isBlocked(o.bundled, o.blocked)) return { install: false, why: `${o.bundled} is blocked` };
  if (o.current === undefined) return { install: true, why: 'nothing is installed' };
  if (sameVersion(o.bundled, o.current)) return { install: false, why: `${o.current} is already current` };
  if (!isSemver(o.bundled) || !isSemver(o.current)) return { install: false, why: `${o.bundled} and current ${o.current} cannot be ordered (not both semver)` };
  const cmp = compareVersions(o.bundled, o.current);
  if (cmp > 0) return { install: true, why: `newer than current ${o.current}` };
  if (cmp === 0) return { install: false, why: `current ${o.current} is the same version` };
  return { install: false, why: `current ${o.current} is newer (never a downgrade)` };
}
