import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseRelease, compareVersions, findNamed, isSemver, sortNewestFirst, type Candidate, type Policy } from '../../src/update/policy.js';

const rel = (version: string, prerelease = false): Candidate => ({ version, prerelease });
const versions = (xs: Candidate[]) => xs.map((x) => x.version);
const none: ReadonlySet<string> = new Set();

function choose(list: string[], opts: { current?: string; policy?: Policy; prerelease?: boolean; blocked?: string[] } = {}): string | undefined {
  return chooseRelease(
    list.map((v) => rel(v)),
    { current: opts.current, policy: opts.policy ?? 'latest', prerelease: opts.prerelease ?? false, blocked: new Set(opts.blocked ?? []) },
  )?.version;
}

describe('compareVersions', () => {
  test('0.10.0 is newer than 0.9.0 (knockknock took the lexically last tag)', () => {
    assert.ok(compareVersions('0.10.0', '0.9.0') > 0);
    assert.ok(compareVersions('0.9.0', '0.10.0') < 0);
    assert.ok(compareVersions('1.10.0', '1.9.99') > 0);
    assert.ok(compareVersions('2.0.0', '10.0.0') < 0);
  });

  test('a release is newer than its prereleases; prerelease identifiers order numerically then lexically', () => {
    assert.ok(compareVersions('1.0.0', '1.0.0-rc.2') > 0);
    assert.ok(compareVersions('1.0.0-rc.10', '1.0.0-rc.2') > 0);
    assert.ok(compareVersions('1.0.0-beta', '1.0.0-alpha.1') > 0);
    assert.ok(compareVersions('1.0.0-alpha.1', '1.0.0-alpha') > 0);
    assert.ok(compareVersions('1.0.1-rc.1', '1.0.0') > 0);
  });

  test('a leading v is tolerated on either side', () => {
    assert.equal(compareVersions('v1.2.3', '1.2.3'), 0);
    assert.ok(compareVersions('v0.10.0', 'v0.9.0') > 0);
    assert.ok(compareVersions('V2.0.0', '1.9.0') > 0);
  });

  test('build metadata has no precedence', () => {
    assert.equal(compareVersions('1.0.0+build.1', '1.0.0+build.2'), 0);
    assert.equal(compareVersions('1.0.0+abc', '1.0.0'), 0);
    assert.ok(compareVersions('1.0.1+a', '1.0.0+z') > 0);
  });

  test('labels that are not semver sort below every semver, among themselves by string with numbers by value', () => {
    assert.ok(compareVersions('sha-0123abcd4567', '0.0.1-alpha') < 0);
    assert.ok(compareVersions('0.0.1', 'nightly') > 0);
    assert.ok(compareVersions('nightly', 'latest') > 0);
    assert.ok(compareVersions('build-10', 'build-9') > 0);
    assert.equal(compareVersions('nightly', 'nightly'), 0);
    // Not semver: two-part, leading zeros, '=' prefix, whitespace.
    assert.ok(compareVersions('1.2', '0.0.1') < 0);
    assert.ok(compareVersions('01.2.3', '0.0.1') < 0);
  });
});

describe('isSemver', () => {
  test('accepts exact semver with an optional v, and nothing looser', () => {
    for (const v of ['1.2.3', 'v1.2.3', '1.2.3-rc.1', '1.2.3+build.5', '1.2.3-rc.1+b', '0.0.0']) assert.equal(isSemver(v), true, v);
    for (const v of ['1.2', '01.2.3', '=1.2.3', ' 1.2.3', '1.2.3 ', 'vv1.2.3', 'latest', 'sha-0123abcd4567', '', '1.2.3-01']) assert.equal(isSemver(v), false, v);
  });
});

describe('sortNewestFirst', () => {
  test('orders a lexically sorted tag list by semver, non-semver last, without touching the input', () => {
    const input = ['0.1.0', '0.10.0', '0.2.0', '0.9.0', '1.0.0-rc.1', 'nightly', 'v1.0.0'].map((v) => rel(v));
    const copy = [...input];
    assert.deepEqual(versions(sortNewestFirst(input)), ['v1.0.0', '1.0.0-rc.1', '0.10.0', '0.9.0', '0.2.0', '0.1.0', 'nightly']);
    assert.deepEqual(input, copy);
  });

  test('releases of equal precedence keep the source order', () => {
    const a = { version: '1.0.0+a', prerelease: false, id: 1 };
    const b = { version: '1.0.0+b', prerelease: false, id: 2 };
    assert.deepEqual(sortNewestFirst([a, b]).map((x) => x.id), [1, 2]);
    assert.deepEqual(sortNewestFirst([b, a]).map((x) => x.id), [2, 1]);
  });
});

describe('chooseRelease', () => {
  const list = ['0.9.0', '0.10.0', '0.10.1', '0.11.0', '1.0.0', '1.1.0', '1.1.1', '2.0.0'];

  test('latest takes the newest release whatever the list order', () => {
    assert.equal(choose(list, { current: '0.9.0' }), '2.0.0');
    assert.equal(choose([...list].reverse(), { current: '0.9.0' }), '2.0.0');
    assert.equal(choose(['0.9.0', '0.10.0'], { current: '0.9.0' }), '0.10.0');
  });

  test('minor stays within the major version', () => {
    assert.equal(choose(list, { current: '1.0.0', policy: 'minor' }), '1.1.1');
    assert.equal(choose(list, { current: '0.9.0', policy: 'minor' }), '0.11.0');
    assert.equal(choose(list, { current: '2.0.0', policy: 'minor' }), undefined);
  });

  test('patch stays within major.minor', () => {
    assert.equal(choose(list, { current: '1.1.0', policy: 'patch' }), '1.1.1');
    assert.equal(choose(list, { current: '0.10.0', policy: 'patch' }), '0.10.1');
    assert.equal(choose(list, { current: '1.0.0', policy: 'patch' }), undefined);
  });

  test('manual chooses like latest (the caller decides not to apply)', () => {
    assert.equal(choose(list, { current: '1.0.0', policy: 'manual' }), '2.0.0');
  });

  test('nothing when already on the newest, and never a downgrade', () => {
    assert.equal(choose(list, { current: '2.0.0' }), undefined);
    assert.equal(choose(list, { current: '3.0.0' }), undefined);
    assert.equal(choose(['1.0.0', '1.0.1'], { current: 'v1.0.1' }), undefined);
    assert.equal(choose(['1.0.0+b'], { current: '1.0.0+a' }), undefined);
  });

  test('with no current version, the newest release is taken', () => {
    assert.equal(choose(list), '2.0.0');
    assert.equal(choose(list, { policy: 'patch' }), '2.0.0');
  });

  test('a blocked release is skipped but a newer one is taken', () => {
    assert.equal(choose(['1.0.0', '1.1.0'], { current: '1.0.0', blocked: ['1.1.0'] }), undefined);
    assert.equal(choose(['1.0.0', '1.1.0', '1.2.0'], { current: '1.0.0', blocked: ['1.1.0'] }), '1.2.0');
    // The newest blocked: the next newer than current is taken instead.
    assert.equal(choose(['1.0.0', '1.1.0', '1.2.0'], { current: '1.0.0', blocked: ['1.2.0'] }), '1.1.0');
    // Blocked with or without a v.
    assert.equal(choose(['v1.1.0'], { current: '1.0.0', blocked: ['1.1.0'] }), undefined);
    assert.equal(choose(['1.1.0'], { current: '1.0.0', blocked: ['v1.1.0'] }), undefined);
  });

  test('prereleases only when asked, by flag or by version', () => {
    const rs = [rel('1.0.0'), rel('1.1.0-rc.1', true), rel('1.1.0-rc.2'), rel('1.0.1', true)];
    const pick = (prerelease: boolean) => chooseRelease(rs, { current: '1.0.0', policy: 'latest', prerelease, blocked: none })?.version;
    // 1.1.0-rc.2 carries no flag but its version says prerelease; 1.0.1 is flagged by the source.
    assert.equal(pick(false), undefined);
    assert.equal(pick(true), '1.1.0-rc.2');
    assert.equal(chooseRelease([rel('1.0.0'), rel('1.1.0-rc.1', true), rel('1.0.1')], { current: '1.0.0', policy: 'latest', prerelease: false, blocked: none })?.version, '1.0.1');
  });

  test('a prerelease host moves on to the final release', () => {
    assert.equal(choose(['1.0.0-rc.1', '1.0.0-rc.2', '1.0.0'], { current: '1.0.0-rc.1' }), '1.0.0');
    assert.equal(choose(['1.0.0-rc.1', '1.0.0-rc.2'], { current: '1.0.0-rc.1', prerelease: true }), '1.0.0-rc.2');
  });

  test('a followed OCI tag without a version label is taken when its digest label differs', () => {
    assert.equal(choose(['sha-0123abcd4567'], { current: 'sha-89abcdef0123' }), 'sha-0123abcd4567');
    assert.equal(choose(['sha-0123abcd4567'], { current: 'sha-0123abcd4567' }), undefined);
    assert.equal(choose(['sha-0123abcd4567']), 'sha-0123abcd4567');
    // The annotation disappeared from the new manifest: the tag moved, so follow it.
    assert.equal(choose(['sha-0123abcd4567'], { current: '1.2.0' }), 'sha-0123abcd4567');
    assert.equal(choose(['sha-0123abcd4567'], { current: 'sha-89abcdef0123', blocked: ['sha-0123abcd4567'] }), undefined);
  });

  test('from a non-semver current, any semver release is newer', () => {
    assert.equal(choose(['1.0.0', '0.9.0'], { current: 'sha-0123abcd4567', policy: 'patch' }), '1.0.0');
  });

  test('a non-semver release beside semver ones is never taken by itself (no flip-flop between them)', () => {
    assert.equal(choose(['1.2.0', 'nightly'], { current: '1.2.0' }), undefined);
    assert.equal(choose(['1.2.0', 'nightly'], { current: 'nightly' }), '1.2.0');
    assert.equal(choose(['1.2.0', 'nightly'], { current: '1.2.0', policy: 'manual' }), undefined);
  });

  test('among non-semver releases, nothing at or below a listed current', () => {
    assert.equal(choose(['build-9', 'build-10', 'build-11'], { current: 'build-10' }), 'build-11');
    assert.equal(choose(['build-9', 'build-10'], { current: 'build-10' }), undefined);
  });

  test('returns the caller\'s own object', () => {
    const r = { version: '1.1.0', prerelease: false, tag: 'v1.1.0', locator: { x: 1 } };
    assert.equal(chooseRelease([r], { current: '1.0.0', policy: 'latest', prerelease: false, blocked: none }), r);
  });
});

describe('findNamed', () => {
  const rs = [
    { version: '1.0.0', prerelease: false, tag: 'v1.0.0' },
    { version: '1.1.0', prerelease: false, tag: 'v1.1.0' },
    { version: '2.0.0-rc.1', prerelease: true, tag: 'v2.0.0-rc.1' },
    { version: 'sha-0123abcd4567', prerelease: false, tag: 'stable' },
  ];

  test('finds a named older version (a named downgrade) by exact or v-prefixed name', () => {
    assert.equal(findNamed(rs, '1.0.0')?.version, '1.0.0');
    assert.equal(findNamed(rs, 'v1.0.0')?.version, '1.0.0');
    assert.equal(findNamed(rs, ' 1.1.0 ')?.version, '1.1.0');
  });

  test('finds prereleases and non-semver labels, and the source tag', () => {
    assert.equal(findNamed(rs, '2.0.0-rc.1')?.version, '2.0.0-rc.1');
    assert.equal(findNamed(rs, 'sha-0123abcd4567')?.version, 'sha-0123abcd4567');
    assert.equal(findNamed(rs, 'stable')?.version, 'sha-0123abcd4567');
  });

  test('no fuzzy matches', () => {
    assert.equal(findNamed(rs, '1.0'), undefined);
    assert.equal(findNamed(rs, '1'), undefined);
    assert.equal(findNamed(rs, '3.0.0'), undefined);
    assert.equal(findNamed(rs, ''), undefined);
  });

  test('an exact version match wins over a v-prefixed one', () => {
    const both = [rel('v1.0.0'), rel('1.0.0')];
    assert.equal(findNamed(both, '1.0.0'), both[1]);
    assert.equal(findNamed(both, 'v1.0.0'), both[0]);
  });
});
