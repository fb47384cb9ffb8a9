// The GitHub source's pure decisions: asset choice, checksum files, tags,
// release JSON checks, and rate-limit/backoff decisions from headers.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assetKind, assetPattern, selectAsset, type AssetInfo, type Platform } from '../../src/update/github/assets.js';
import { checksumAssets, lookupChecksum, parseChecksumFile, parseDigestField } from '../../src/update/github/checksums.js';
import { versionFromTag } from '../../src/update/github/tags.js';
import { MalformedRelease, parseReleaseList } from '../../src/update/github/releases.js';
import { backoffDelay, decide, gateWait, parseRetryAfter, readRateLimit, type RetryPolicy } from '../../src/update/github/ratelimit.js';

const amd64: Platform = { os: 'linux', arch: 'x64' };
const arm64: Platform = { os: 'linux', arch: 'arm64' };
let nextId = 1;
const A = (name: string, digest?: string): AssetInfo => ({ id: nextId++, name, size: 10, url: `https://api.github.com/repos/o/r/releases/assets/${nextId}`, ...(digest ? { digest } : {}) });
const names = (...ns: string[]) => ns.map((n) => A(n));
const chosen = (s: ReturnType<typeof selectAsset>) => (s.ok ? s.asset.name : `!${s.reason}`);

describe('versionFromTag', () => {
  test('strips the v of v1.2.3 only', () => {
    assert.equal(versionFromTag('v1.2.3'), '1.2.3');
    assert.equal(versionFromTag('V2.0.0-rc.1'), '2.0.0-rc.1');
    assert.equal(versionFromTag('1.2.3'), '1.2.3');
    assert.equal(versionFromTag('vanilla'), 'vanilla');
    assert.equal(versionFromTag('release-7'), 'release-7');
    assert.equal(versionFromTag('1.0.0+build.5'), '1.0.0+build.5');
  });
  test('refuses tags that are not safe directory names', () => {
    for (const t of ['../x', 'a/b', '.hidden', '..', 'v1..2', 'a b', '', 'x'.repeat(200), 'v1.0\n']) assert.equal(versionFromTag(t), undefined, t);
  });
});

describe('selectAsset', () => {
  test('default: the single .tar.gz/.tgz asset', () => {
    assert.equal(chosen(selectAsset(names('app.tar.gz', 'SHA256SUMS', 'app.tar.gz.sig'), amd64, '1.0.0')), 'app.tar.gz');
    assert.equal(chosen(selectAsset(names('app-1.0.0.tgz', 'README.md'), amd64, '1.0.0')), 'app-1.0.0.tgz');
  });
  test('default: among several, the one naming linux and this arch (any spelling)', () => {
    const gorel = names('app_1.0.0_linux_amd64.tar.gz', 'app_1.0.0_linux_arm64.tar.gz', 'app_1.0.0_darwin_amd64.tar.gz', 'app_1.0.0_checksums.txt');
    assert.equal(chosen(selectAsset(gorel, amd64, '1.0.0')), 'app_1.0.0_linux_amd64.tar.gz');
    assert.equal(chosen(selectAsset(gorel, arm64, '1.0.0')), 'app_1.0.0_linux_arm64.tar.gz');
    const rusty = names('app-x86_64-unknown-linux-gnu.tar.gz', 'app-aarch64-unknown-linux-gnu.tar.gz', 'app-x86_64-apple-darwin.tar.gz');
    assert.equal(chosen(selectAsset(rusty, amd64, '1.0.0')), 'app-x86_64-unknown-linux-gnu.tar.gz');
    assert.equal(chosen(selectAsset(rusty, arm64, '1.0.0')), 'app-aarch64-unknown-linux-gnu.tar.gz');
  });
  test('"arm" does not match inside "arm64"', () => {
    const list = names('app_linux_arm64.tar.gz', 'app_linux_armv7.tar.gz');
    assert.equal(chosen(selectAsset(list, { os: 'linux', arch: 'arm' }, '1')), 'app_linux_armv7.tar.gz');
  });
  test('default: a single archive built for another platform is not taken', () => {
    assert.equal(chosen(selectAsset(names('app_darwin_arm64.tar.gz'), amd64, '1')), '!none');
    assert.equal(chosen(selectAsset(names('app_linux_arm64.tar.gz'), amd64, '1')), '!none');
    assert.equal(chosen(selectAsset(names('app.zip', 'app.exe'), amd64, '1')), '!none');
    assert.equal(chosen(selectAsset([], amd64, '1')), '!none');
  });
  test('default: two archives for this platform are ambiguous, listed by name', () => {
    const s = selectAsset(names('app_linux_amd64.tar.gz', 'app_linux_amd64_debug.tar.gz'), amd64, '1');
    assert.equal(s.ok, false);
    assert.ok(!s.ok && s.reason === 'ambiguous' && s.candidates.length === 2);
  });
  test('glob: {os}, {arch} and {version} are substituted', () => {
    const list = names('tool-1.4.0-linux-x86_64', 'tool-1.4.0-linux-aarch64', 'tool-1.3.0-linux-x86_64', 'tool-1.4.0-linux-x86_64.sha256');
    assert.equal(chosen(selectAsset(list, amd64, '1.4.0', 'tool-{version}-{os}-{arch}')), 'tool-1.4.0-linux-x86_64');
    assert.equal(chosen(selectAsset(list, arm64, '1.4.0', 'tool-{version}-{os}-{arch}')), 'tool-1.4.0-linux-aarch64');
    assert.equal(chosen(selectAsset(names('app_v2.0.0_linux_amd64.tar.gz'), amd64, '2.0.0', 'app_{version}_{os}_{arch}.tar.gz')), 'app_v2.0.0_linux_amd64.tar.gz');
    assert.equal(chosen(selectAsset(list, amd64, '1.4.0', 'tool-*-{os}-{arch}')), '!ambiguous');
    assert.equal(chosen(selectAsset(list, amd64, '9.9.9', 'tool-{version}-*')), '!none');
  });
  test('glob: * and ? only; other characters are literal', () => {
    const re = assetPattern('a.b?(c)*', amd64, '1');
    assert.ok(re.test('a.bX(c)zzz'));
    assert.ok(!re.test('aXbX(c)'));
    assert.ok(!re.test('a.b(c)'));
  });
  test('assetKind: archives extracted, other formats refused, the rest are bare executables', () => {
    assert.equal(assetKind('a.tar.gz'), 'tar');
    assert.equal(assetKind('a.TGZ'), 'tar');
    assert.equal(assetKind('a.tar'), 'tar');
    assert.equal(assetKind('a.zip'), 'unsupported');
    assert.equal(assetKind('a.tar.xz'), 'unsupported');
    assert.equal(assetKind('app_linux_amd64'), 'bare');
  });
});

describe('checksums', () => {
  const h1 = 'a'.repeat(64);
  const h2 = 'B'.repeat(64);
  test('digest field: sha256 normalised, null/other algorithms ignored, malformed refused', () => {
    assert.equal(parseDigestField(`sha256:${h2}`), `sha256:${h2.toLowerCase()}`);
    assert.equal(parseDigestField(null), undefined);
    assert.equal(parseDigestField(undefined), undefined);
    assert.equal(parseDigestField('sha512:abcd'), undefined);
    assert.throws(() => parseDigestField('sha256:xyz'), /64 hex/);
    assert.throws(() => parseDigestField('deadbeef'), /algorithm/);
    assert.throws(() => parseDigestField(42), /not a string/);
  });
  test('sha256sum text and binary lines, BSD lines, ./ prefixes, comments', () => {
    const m = parseChecksumFile(`# sums\n${h1}  app.tar.gz\n${h2} *./other.bin\r\nSHA256 (third.tgz) = ${h1}\ngarbage line\n`);
    assert.equal(m.get('app.tar.gz'), `sha256:${h1}`);
    assert.equal(m.get('other.bin'), `sha256:${h2.toLowerCase()}`);
    assert.equal(m.get('third.tgz'), `sha256:${h1}`);
    assert.equal(m.size, 3);
  });
  test('lookup: by name, by base name, and a lone hash only in a per-asset file', () => {
    assert.equal(lookupChecksum(parseChecksumFile(`${h1}  dist/app.tar.gz\n`), 'app.tar.gz', false), `sha256:${h1}`);
    assert.equal(lookupChecksum(parseChecksumFile(`${h1}\n`), 'app.tar.gz', true), `sha256:${h1}`);
    assert.equal(lookupChecksum(parseChecksumFile(`${h1}\n`), 'app.tar.gz', false), undefined);
    assert.equal(lookupChecksum(parseChecksumFile(`${h1}  other.tar.gz\n`), 'app.tar.gz', false), undefined);
  });
  test('checksum assets: <asset>.sha256 first, then SHA256SUMS / checksums.txt (goreleaser names too)', () => {
    const list = names('app_1.0_checksums.txt', 'SHA256SUMS', 'app.tar.gz.sha256', 'other.tar.gz.sha256', 'app.tar.gz');
    assert.deepEqual(
      checksumAssets(list, 'app.tar.gz').map((c) => [c.asset.name, c.perAsset]),
      [
        ['app.tar.gz.sha256', true],
        ['app_1.0_checksums.txt', false],
        ['SHA256SUMS', false],
      ],
    );
    assert.deepEqual(checksumAssets(names('app.tar.gz'), 'app.tar.gz'), []);
  });
});

describe('release JSON', () => {
  const asset = { id: 2, name: 'a.tgz', size: 3, url: 'https://api.github.com/repos/o/r/releases/assets/2', digest: null };
  const rel = { id: 1, tag_name: 'v1.0.0', draft: false, prerelease: true, published_at: '2025-01-01T00:00:00Z', assets: [asset] };
  test('reads the fields molt uses', () => {
    const [r] = parseReleaseList([rel], 'x');
    assert.deepEqual(r, { id: 1, tag: 'v1.0.0', draft: false, prerelease: true, publishedAt: '2025-01-01T00:00:00Z', assets: [{ id: 2, name: 'a.tgz', size: 3, url: asset.url }] });
  });
  test('names what is wrong', () => {
    const cases: [unknown, RegExp][] = [
      ['<html>', /expected a JSON list of releases, got text "<html>"/],
      [{ message: 'x' }, /got object/],
      [[{ ...rel, tag_name: 5 }], /no tag_name/],
      [[{ ...rel, draft: 'no' }], /v1.0.0: draft is not a boolean/],
      [[{ ...rel, assets: null }], /assets is not a list/],
      [[{ ...rel, assets: [{ ...asset, size: -1 }] }], /a.tgz has no valid size/],
      [[{ ...rel, assets: [{ ...asset, digest: 'sha256:nothex' }] }], /a.tgz: digest/],
      [[{ ...rel, assets: [{ ...asset, url: 'file:///etc/passwd' }] }], /no API url/],
    ];
    for (const [data, re] of cases) assert.throws(() => parseReleaseList(data, 'x'), (e: Error) => e instanceof MalformedRelease && re.test(e.message), String(re));
  });
});

describe('rate limits and backoff', () => {
  const policy: RetryPolicy = { attempts: 4, baseMs: 1000, capMs: 30_000, maxInlineWaitMs: 10_000 };
  test('reset is read through the Date header, so a skewed local clock does not matter', () => {
    const serverNow = Date.UTC(2025, 5, 1, 12, 0, 0);
    const h = { date: new Date(serverNow).toUTCString(), 'x-ratelimit-remaining': '0', 'x-ratelimit-limit': '5000', 'x-ratelimit-reset': String(serverNow / 1000 + 120) };
    // Our monotonic clock reads 500, the wall clock is an hour off: the reset is still 2 minutes (+1 s margin) away.
    const rl = readRateLimit(h, 500, serverNow + 3_600_000);
    assert.equal(rl.resetAtMs, 500 + 121_000);
    assert.equal(rl.remaining, 0);
    assert.equal(rl.limit, 5000);
    const noDate = readRateLimit({ 'x-ratelimit-reset': String(serverNow / 1000 + 10) }, 0, serverNow);
    assert.equal(noDate.resetAtMs, 11_000);
  });
  test('Retry-After: seconds or an HTTP date', () => {
    assert.equal(parseRetryAfter('7', 0), 7000);
    assert.equal(parseRetryAfter(new Date(Date.UTC(2025, 0, 1, 0, 0, 30)).toUTCString(), Date.UTC(2025, 0, 1)), 30_000);
    assert.equal(parseRetryAfter('soon', 0), undefined);
    assert.equal(parseRetryAfter(undefined, 0), undefined);
  });
  test('decisions', () => {
    const now = 1_000_000;
    // Short Retry-After: wait it out inside the call.
    const d1 = decide(429, { 'retry-after': '2' }, '', 0, policy, now, 0);
    assert.deepEqual(d1, { action: 'retry', delayMs: 2000 });
    // Long Retry-After: hand back to the caller.
    const d2 = decide(403, { 'retry-after': '120' }, 'secondary rate limit', 0, policy, now, 0.5);
    assert.equal(d2.action, 'rate-limited');
    assert.equal(d2.action === 'rate-limited' && d2.waitMs, 120_000);
    // Primary limit spent: never retried inside the call, however close the reset.
    const reset = { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1000', date: new Date(999_000).toUTCString() };
    const d3 = decide(403, reset, 'API rate limit exceeded', 0, policy, now, 0);
    assert.equal(d3.action, 'rate-limited');
    // A secondary limit without Retry-After waits at least a minute.
    const d4 = decide(403, {}, 'You have exceeded a secondary rate limit', 0, policy, now, 0);
    assert.ok(d4.action === 'rate-limited' && d4.waitMs >= 60_000);
    // A plain 403 (no access) is not retried.
    assert.deepEqual(decide(403, {}, 'Resource not accessible by integration', 0, policy, now, 0.5), { action: 'fail' });
    // 5xx and network errors: back off, until the attempts run out.
    const d5 = decide(502, {}, '', 1, policy, now, 1);
    assert.deepEqual(d5, { action: 'retry', delayMs: 2000 });
    assert.deepEqual(decide(500, {}, '', 3, policy, now, 0.5), { action: 'fail' });
    assert.equal(decide(0, {}, '', 0, policy, now, 0.5).action, 'retry');
    // Other 4xx: fail at once.
    assert.deepEqual(decide(404, {}, '', 0, policy, now, 0.5), { action: 'fail' });
    assert.deepEqual(decide(401, {}, '', 0, policy, now, 0.5), { action: 'fail' });
  });
  test('backoff has full jitter within [base/4, min(cap, base*2^n)]', () => {
    assert.equal(backoffDelay(0, 1000, 30_000, 0), 250);
    assert.equal(backoffDelay(3, 1000, 30_000, 1), 8000);
    assert.equal(backoffDelay(10, 1000, 30_000, 1), 30_000);
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(2, 1000, 30_000, Math.random());
      assert.ok(d >= 250 && d <= 4000);
    }
  });
  test('gate: closed while remaining is 0 before the reset, or before a Retry-After ends', () => {
    assert.equal(gateWait({ remaining: 0, resetAtMs: 5000 }, undefined, 1000), 4000);
    assert.equal(gateWait({ remaining: 0, resetAtMs: 5000 }, undefined, 6000), 0);
    assert.equal(gateWait({ remaining: 3, resetAtMs: 5000 }, undefined, 1000), 0);
    assert.equal(gateWait({}, 3000, 1000), 2000);
    assert.equal(gateWait({ remaining: 0, resetAtMs: 2000 }, 9000, 1000), 8000);
  });
});
