// GitHubSource against a local server that answers like GitHub's releases API
// (test/helpers/fake-github.ts), with @octokit/rest as the real client.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { create as tarCreate } from 'tar';
import { FakeGitHub, type FakeReleaseSpec } from '../helpers/fake-github.js';
import { GitHubSource, type GitHubSourceOptions } from '../../src/update/sources/github.js';
import { VersionStore } from '../../src/update/store.js';
import { UpdateError, type Release } from '../../src/update/types.js';
import { setLogSink } from '../../src/common/log.js';
import { loadTrustConfig } from '../../src/update/trust/config.js';

const TOKEN = 'ghp_faketoken0123456789';
const linux64 = { os: 'linux', arch: 'x64' };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-gh-'));
const logLines: string[] = [];
setLogSink((l) => logLines.push(l));

let fixtureN = 0;
/** A .tar.gz holding `files`, as bytes. */
async function tgz(files: Record<string, string>): Promise<Buffer> {
  const dir = path.join(tmp, `fixture-${fixtureN++}`);
  fs.mkdirSync(dir);
  for (const [n, c] of Object.entries(files)) fs.writeFileSync(path.join(dir, n), c, { mode: 0o755 });
  const out = `${dir}.tgz`;
  await tarCreate({ gzip: true, cwd: dir, file: out, portable: true }, Object.keys(files));
  return fs.readFileSync(out);
}
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

function isErr(code: UpdateError['code'], re?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof UpdateError, `not an UpdateError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), 'one line');
    assert.ok(!e.message.includes(TOKEN), 'no token in messages');
    return true;
  };
}

let home = 0;
function freshStore(): VersionStore {
  return new VersionStore(path.join(tmp, `home-${home++}`));
}
function source(fake: FakeGitHub, extra: Partial<GitHubSourceOptions> = {}): GitHubSource {
  return new GitHubSource({
    repo: `${fake.owner}/${fake.repo}`,
    token: TOKEN,
    baseUrl: fake.baseUrl,
    store: extra.store ?? freshStore(),
    platform: linux64,
    timeoutMs: 2000,
    retry: { baseMs: 20, capMs: 100, maxInlineWaitMs: 3000 },
    ...extra,
  });
}
/** Every file under cache/ and every entry of staging/ (debris check). */
function debris(store: VersionStore): string[] {
  const out: string[] = [];
  (function walk(p: string) {
    for (const e of fs.readdirSync(p, { withFileTypes: true })) {
      const q = path.join(p, e.name);
      if (e.isDirectory()) walk(q);
      else out.push(path.relative(store.home, q));
    }
  })(path.join(store.home, 'cache'));
  return out.concat(fs.readdirSync(store.stagingRoot()).map((n) => `staging/${n}`));
}
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

let app1: Buffer;
let app2: Buffer;
before(async () => {
  app1 = await tgz({ app: '#!/bin/sh\necho one\n' });
  app2 = await tgz({ app: '#!/bin/sh\necho two\n' });
});
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('listing releases', () => {
  let fake: FakeGitHub;
  beforeEach(async () => {
    await fake?.close();
    const specs: FakeReleaseSpec[] = [];
    for (let i = 7; i >= 1; i--) specs.push({ tag: `v1.${i}.0`, assets: [{ name: 'app_linux_amd64.tar.gz', data: app1 }] });
    specs.splice(1, 0, { tag: 'v2.0.0-rc.1', prerelease: true, assets: [{ name: 'app_linux_amd64.tar.gz', data: app2 }] });
    specs.unshift({ tag: 'v3.0.0', draft: true, assets: [{ name: 'app_linux_amd64.tar.gz', data: app2 }] });
    fake = await FakeGitHub.start({ token: TOKEN }, specs);
  });
  after(() => fake.close());

  test('follows the Link header across 3 pages, newest first', async () => {
    const src = source(fake, { perPage: 3 });
    const { releases, notModified } = await src.list();
    assert.equal(notModified, false);
    assert.deepEqual(
      releases.map((r) => r.version),
      ['1.7.0', '2.0.0-rc.1', '1.6.0', '1.5.0', '1.4.0', '1.3.0', '1.2.0', '1.1.0'],
    );
    const reqs = fake.apiRequests().map((e) => e.path);
    // 9 visible to the token (the draft included) = 3 pages; pages 2 and 3 at the URLs GitHub's Link gave.
    assert.deepEqual(reqs, [
      `/repos/acme/app/releases?per_page=3`,
      `/repositories/${fake.repoId}/releases?per_page=3&page=2`,
      `/repositories/${fake.repoId}/releases?per_page=3&page=3`,
    ]);
    assert.ok(fake.apiRequests().every((e) => e.authorized));
  });

  test('drafts are never returned, even though the token can see them', async () => {
    // The fake does show the draft to this token: molt must drop it itself.
    const raw = await fetch(`${fake.baseUrl}/repos/acme/app/releases`, { headers: { authorization: `token ${TOKEN}`, 'user-agent': 't' } });
    assert.ok(((await raw.json()) as { draft: boolean }[]).some((r) => r.draft));
    const { releases } = await source(fake).list();
    assert.equal(releases.length, 8);
    assert.ok(!releases.some((r) => r.tag === 'v3.0.0'));
  });

  test('prereleases are listed and flagged; the rest carry their asset digest and a locator', async () => {
    const { releases } = await source(fake).list();
    const rc = releases.find((r) => r.tag === 'v2.0.0-rc.1')!;
    assert.equal(rc.prerelease, true);
    const full = releases.find((r) => r.tag === 'v1.7.0')!;
    assert.equal(full.prerelease, false);
    assert.equal(full.digest, `sha256:${sha(app1)}`);
    assert.match(full.publishedAt!, /^\d{4}-\d\d-\d\dT/);
    assert.deepEqual(JSON.parse(JSON.stringify(full.locator)), full.locator, 'locator is JSON-serialisable');
  });

  test('tags unsafe as a directory, or naming a version twice, are skipped', async () => {
    fake.addRelease({ tag: '1.7.0' }); // same version as v1.7.0, and newer
    fake.addRelease({ tag: '../../etc' });
    const { releases } = await source(fake).list();
    assert.deepEqual(releases.filter((r) => r.version === '1.7.0').map((r) => r.tag), ['1.7.0']);
    assert.ok(!releases.some((r) => r.tag === '../../etc'));
    assert.equal(releases.length, 8);
  });

  test('latest() and byTag() use the single-release endpoints', async () => {
    const src = source(fake);
    assert.equal((await src.latest())!.version, '1.7.0');
    assert.equal((await src.byTag('v2.0.0-rc.1'))!.prerelease, true);
    assert.equal(await src.byTag('v9.9.9'), undefined);
    assert.equal(await src.byTag('v3.0.0'), undefined, 'a draft is not found by tag');
    const paths = fake.apiRequests().map((e) => e.path);
    assert.deepEqual(paths, ['/repos/acme/app/releases/latest', '/repos/acme/app/releases/tags/v2.0.0-rc.1', '/repos/acme/app/releases/tags/v9.9.9', '/repos/acme/app/releases/tags/v3.0.0']);
  });

  test('ETag round trip: an unchanged list is a 304, notModified, and costs no rate limit', async () => {
    const src = source(fake, { perPage: 3 });
    const first = await src.list();
    const used = fake.rateLimit().used;
    const second = await src.list();
    assert.equal(second.notModified, true);
    assert.deepEqual(second.releases, first.releases);
    const polls = fake.apiRequests().slice(3);
    assert.equal(polls.length, 3);
    assert.ok(polls.every((e) => e.status === 304 && e.ifNoneMatch && !e.counted), JSON.stringify(polls));
    assert.equal(fake.rateLimit().used, used, 'the fake counted nothing for the 304s');
    assert.equal(src.rateLimit().remaining, fake.rateLimit().remaining);
    // A new release changes page 1 (and shifts the rest): a fresh list, not from the cache.
    fake.addRelease({ tag: 'v1.8.0', assets: [{ name: 'app_linux_amd64.tar.gz', data: app2 }] });
    const third = await src.list();
    assert.equal(third.notModified, false);
    assert.equal(third.releases[0]!.version, '1.8.0');
  });

  test('without a token a 304 still counts, as GitHub documents', async () => {
    const src = source(fake, { token: undefined });
    await src.list();
    const before = fake.rateLimit('anon').used;
    const again = await src.list();
    assert.equal(again.notModified, true);
    assert.equal(fake.rateLimit('anon').used, before + 1);
    assert.equal(again.releases.length, 8);
  });

  test('a bad token is a configuration error naming GITHUB_TOKEN, not a retry loop', async () => {
    await assert.rejects(source(fake, { token: 'wrong' }).list(), isErr('config', /GITHUB_TOKEN was refused \(401/));
    assert.equal(fake.apiRequests().length, 1);
  });

  test('an unknown repository is not-found naming it', async () => {
    await assert.rejects(source(fake, { repo: 'acme/nope' }).list(), isErr('not-found', /acme\/nope/));
  });
});

describe('rate limits and retries', () => {
  let fake: FakeGitHub;
  const specs: FakeReleaseSpec[] = [{ tag: 'v1.0.0', assets: [{ name: 'app.tar.gz', data: Buffer.from('x') }] }];
  beforeEach(async () => {
    await fake?.close();
    fake = await FakeGitHub.start({ token: TOKEN }, specs);
  });
  after(() => fake.close());

  test('when remaining reaches 0, no request is made until the reset', async () => {
    fake.setRemaining(1, 2);
    const src = source(fake);
    await src.list();
    assert.equal(src.rateLimit().remaining, 0);
    fake.addRelease({ tag: 'v1.1.0' }); // would not be a 304 anyway
    let wait = 0;
    await assert.rejects(src.list(), (e) => {
      isErr('rate-limited', /no request for \d+s/)(e);
      wait = (e as UpdateError).retryAfterMs!;
      return wait > 0 && wait <= 4000;
    });
    await assert.rejects(src.latest(), isErr('rate-limited'));
    assert.equal(fake.apiRequests().length, 1, 'nothing reached the server while exhausted');
    // After the reset the gate opens again.
    await tick(wait + 50);
    const { releases } = await src.list();
    assert.equal(releases[0]!.version, '1.1.0');
    assert.equal(fake.apiRequests().length, 2);
  });

  test('a 403 with remaining 0 is rate-limited with the time to the reset, and the gate stays shut', async () => {
    fake.faults.push({ status: 403, exhaust: true, resetIn: 30 });
    const src = source(fake);
    await assert.rejects(src.list(), (e) => isErr('rate-limited', /rate limit exhausted/)(e) && (e as UpdateError).retryAfterMs! > 25_000);
    await assert.rejects(src.list(), isErr('rate-limited'));
    assert.equal(fake.apiRequests().length, 1);
  });

  test('a short Retry-After is waited out, then the request succeeds', async () => {
    fake.faults.push({ status: 429, retryAfter: 1 });
    const src = source(fake);
    const { releases } = await src.list();
    assert.equal(releases.length, 1);
    const reqs = fake.apiRequests();
    assert.deepEqual(reqs.map((e) => e.status), [429, 200]);
    assert.ok(reqs[1]!.at - reqs[0]!.at >= 950, `second request came ${reqs[1]!.at - reqs[0]!.at}ms after the 429`);
  });

  test('a long Retry-After is handed back to the caller, and no request goes out before it ends', async () => {
    fake.faults.push({ status: 403, retryAfter: 120 });
    const src = source(fake);
    await assert.rejects(src.list(), (e) => isErr('rate-limited', /Retry-After 120s/)(e) && (e as UpdateError).retryAfterMs === 120_000);
    await assert.rejects(src.list(), isErr('rate-limited'));
    assert.equal(fake.apiRequests().length, 1);
  });

  test('a 503 with a long Retry-After is rate-limited, and nothing goes out before it ends', async () => {
    fake.faults.push({ status: 503, retryAfter: 120 });
    const src = source(fake);
    await assert.rejects(src.list(), (e) => isErr('rate-limited', /Retry-After 120s/)(e) && (e as UpdateError).retryAfterMs === 120_000);
    await assert.rejects(src.list(), (e) => isErr('rate-limited', /no request for 1[12]\ds/)(e));
    assert.equal(fake.apiRequests().length, 1);
  });

  test('while one request waits out a short Retry-After, the others are refused without a request', async () => {
    fake.faults.push({ status: 429, retryAfter: 1 });
    logLines.length = 0;
    const src = source(fake);
    const first = src.list();
    for (let i = 0; i < 200 && !logLines.some((l) => /retrying .*status=429/.test(l)); i++) await tick(10);
    await assert.rejects(src.latest(), (e) => isErr('rate-limited', /no request for [12]s/)(e) && (e as UpdateError).retryAfterMs! <= 1250);
    assert.equal(fake.apiRequests().length, 1, 'the second request did not reach GitHub');
    assert.equal((await first).releases.length, 1);
    assert.deepEqual(fake.apiRequests().map((e) => e.status), [429, 200]);
  });

  test('5xx are retried with backoff, then succeed', async () => {
    fake.faults.push({ status: 500 }, { status: 502 }, { status: 503 });
    const { releases } = await source(fake).list();
    assert.equal(releases.length, 1);
    assert.deepEqual(fake.apiRequests().map((e) => e.status), [500, 502, 503, 200]);
    assert.ok(logLines.some((l) => /molt: github: retrying .*status=502 attempt=2/.test(l)));
  });

  test('5xx past the attempts is a clear http error', async () => {
    fake.faults.push({ status: 500 }, { status: 500 }, { status: 500 });
    await assert.rejects(source(fake, { retry: { attempts: 3, baseMs: 10, capMs: 20 } }).list(), isErr('http', /answered 500 \(Server Error\) after 3 attempts/));
    assert.equal(fake.apiRequests().length, 3);
  });

  test('malformed release JSON is a clear bad-input error', async () => {
    fake.malformedBody = '<html><body>Unicorn!</body></html>';
    await assert.rejects(source(fake).list(), isErr('bad-input', /malformed release JSON .*non-JSON "<html>/));
    fake.malformedBody = '[{"id":1,"tag_name":"v1.0.0","draft":false,"prerelease":false,"assets":[{"id":"two"}]}]';
    await assert.rejects(source(fake).list(), isErr('bad-input', /malformed release JSON from GitHub acme\/app releases v1.0.0: asset id is not an integer/));
    fake.malformedBody = '{"message":"ok"}';
    await assert.rejects(source(fake).list(), isErr('bad-input', /expected a JSON list of releases, got object/));
  });

  test('an API answer over 16 MiB is refused with one line, not read into memory', async () => {
    fake.malformedBody = '[' + ' '.repeat(17 << 20) + ']';
    await assert.rejects(source(fake, { retry: { attempts: 1 } }).list(), isErr('bad-input', /GitHub API answer from \/repos\/acme\/app\/releases is larger than 16777216 bytes/));
    fake.malformedBody = undefined;
  });

  test('a hanging server is a time-out error, after bounded attempts', async () => {
    fake.hang = true;
    const src = source(fake, { timeoutMs: 300, retry: { attempts: 2, baseMs: 10, capMs: 20 } });
    await assert.rejects(src.list(), isErr('network', /timed out after 300ms after 2 attempts/));
    assert.equal(fake.apiRequests().length, 2);
  });

  test('an abort signal stops a call at once', async () => {
    fake.hang = true;
    const ac = new AbortController();
    const p = source(fake, { timeoutMs: 10_000 }).list({ signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(p, isErr('aborted'));
  });
});

describe('fetching assets', () => {
  let fake: FakeGitHub;
  const name = 'app_linux_amd64.tar.gz';
  async function startWith(spec: FakeReleaseSpec, opts: Parameters<typeof FakeGitHub.start>[0] = {}): Promise<{ release: Release }> {
    await fake?.close();
    fake = await FakeGitHub.start({ token: TOKEN, ...opts }, [spec]);
    const { releases } = await source(fake).list();
    fake.log.length = 0;
    return { release: releases[0]! };
  }
  after(() => fake.close());

  test('downloads through the API URL, follows the 302 itself, and never sends the token to the storage host', async () => {
    const { release } = await startWith({ tag: 'v1.0.0', assets: [{ name, data: app1 }, { name: 'app_darwin_arm64.tar.gz', data: app2 }] });
    const store = freshStore();
    const got = await source(fake, { store }).fetch(release, store.stagingRoot());
    assert.equal(fs.readFileSync(path.join(got.dir, 'app'), 'utf8'), '#!/bin/sh\necho one\n');
    assert.deepEqual(got.verified, [`sha256:${sha(app1)}`]);
    assert.equal(got.downloaded, app1.length);
    const [api, storage] = fake.log;
    assert.match(api!.path, /^\/repos\/acme\/app\/releases\/assets\/\d+$/);
    assert.equal(api!.status, 302);
    assert.equal(api!.authorized, true, 'the token went to the API');
    assert.equal(storage!.server, 'storage');
    assert.equal(storage!.status, 200);
    assert.equal(storage!.sentAuthorization, false, 'the token did not follow the redirect');
    assert.equal(fake.log.length, 2);
    assert.deepEqual(debris(store).filter((p) => !p.startsWith('cache/sha256/')), [`staging/${path.basename(got.dir)}`]);
  });

  test('the storage host really refuses an Authorization header (the check above can fail)', async () => {
    const { release } = await startWith({ tag: 'v1.0.0', assets: [{ name, data: app1 }] });
    const asset = (release.locator.assets as { url: string }[])[0]!;
    const r302 = await fetch(asset.url, { redirect: 'manual', headers: { accept: 'application/octet-stream', authorization: `token ${TOKEN}`, 'user-agent': 't' } });
    assert.equal(r302.status, 302);
    const leaked = await fetch(r302.headers.get('location')!, { headers: { authorization: `token ${TOKEN}` } });
    assert.equal(leaked.status, 400);
  });

  test('a second fetch of the same digest comes from the verified cache', async () => {
    const { release } = await startWith({ tag: 'v1.0.0', assets: [{ name, data: app1 }] });
    const store = freshStore();
    const src = source(fake, { store });
    const a = await src.fetch(release, store.stagingRoot());
    const b = await src.fetch(release, store.stagingRoot());
    assert.equal(b.downloaded, 0);
    assert.notEqual(a.dir, b.dir);
    assert.equal(fs.readFileSync(path.join(b.dir, 'app'), 'utf8'), '#!/bin/sh\necho one\n');
    assert.equal(fake.log.filter((e) => e.server === 'storage').length, 1);
  });

  test('an asset over the size limit is a hostile archive, refused before it is downloaded', async () => {
    const { release } = await startWith({ tag: 'v1.0.0', assets: [{ name, data: app1 }] });
    const store = freshStore();
    await assert.rejects(source(fake, { store, maxBytes: 100 }).fetch(release, store.stagingRoot()), isErr('hostile-archive', /over the limit of 100/));
    assert.equal(fake.log.filter((e) => e.server === 'storage').length, 0);
    assert.deepEqual(debris(store), []);
  });

  test('an archive over the entry limit is a hostile archive', async () => {
    const three = await tgz({ a: '1', b: '2', c: '3' });
    const { release } = await startWith({ tag: 'v1.0.0', assets: [{ name, data: three }] });
    const store = freshStore();
    await assert.rejects(source(fake, { store, maxEntries: 2 }).fetch(release, store.stagingRoot()), isErr('hostile-archive', /more than 2 entries/));
    assert.deepEqual(debris(store).filter((p) => !p.startsWith('cache/')), []);
  });

  test('bytes that do not match the digest field are refused, with no debris', async () => {
    const corrupt = Buffer.from(app1);
    corrupt[corrupt.length - 5]! ^= 0xff; // same length, one byte flipped in transit
    const { release } = await startWith({ tag: 'v1.0.0', assets: [{ name, data: app1, served: corrupt }] });
    const store = freshStore();
    await assert.rejects(source(fake, { store }).fetch(release, store.stagingRoot()), isErr('integrity', /asset app_linux_amd64.tar.gz of release v1.0.0: digest mismatch/));
    assert.deepEqual(debris(store), []);
  });

  test('without a digest field, SHA256SUMS in the release verifies the asset', async () => {
    const sums = `${sha(app2)}  other.tar.gz\n${sha(app1)}  ${name}\n`;
    const { release } = await startWith({ tag: 'v1.0.0', assets: [{ name, data: app1, digest: null }, { name: 'SHA256SUMS', data: sums, digest: null, contentType: 'text/plain' }] });
    assert.equal(release.digest, undefined);
    const store = freshStore();
    const got = await source(fake, { store, requireChecksum: true }).fetch(release, store.stagingRoot());
    assert.deepEqual(got.verified, [`sha256:${sha(app1)}`]);
    assert.equal(fake.log.filter((e) => e.server === 'storage').length, 2, 'SHA256SUMS, then the asset');
  });

  test('a SHA256SUMS signed with minisign verifies the asset, and is downloaded once for both the digest and the signature', async () => {
    // The signed name carries the version: a name the same in every release could pass an old one off as new.
    const signed = 'app_1.0.0_linux_amd64.tar.gz';
    const keys = fs.mkdtempSync(path.join(tmp, 'keys-'));
    const minisign = (...args: string[]) => execFileSync('minisign', args, { cwd: keys, stdio: ['ignore', 'pipe', 'pipe'] });
    minisign('-G', '-W', '-p', 'k.pub', '-s', 'k.key');
    fs.writeFileSync(path.join(keys, 'SHA256SUMS'), `${sha(app1)}  ${signed}\n`);
    minisign('-S', '-s', 'k.key', '-m', 'SHA256SUMS');
    const keyId = /minisign public key ([0-9A-F]{1,16})/.exec(fs.readFileSync(path.join(keys, 'k.pub'), 'utf8'))![1]!.padStart(16, '0');
    const { release } = await startWith({
      tag: 'v1.0.0',
      assets: [
        { name: signed, data: app1, digest: null },
        { name: 'SHA256SUMS', data: fs.readFileSync(path.join(keys, 'SHA256SUMS')), digest: null },
        { name: 'SHA256SUMS.minisig', data: fs.readFileSync(path.join(keys, 'SHA256SUMS.minisig')), digest: null },
      ],
    });
    const store = freshStore();
    const trust = loadTrustConfig({ MOLT_TRUST_KEYS: path.join(keys, 'k.pub') });
    const got = await source(fake, { store }).fetch(release, store.stagingRoot(), { trust });
    assert.equal(got.trustedBy, keyId);
    assert.deepEqual(got.verified, [`sha256:${sha(app1)}`]);
    const storage = fake.log.filter((e) => e.server === 'storage').map((e) => decodeURIComponent(e.path).replace(/^.*filename=/, ''));
    assert.deepEqual(storage.sort(), ['SHA256SUMS', 'SHA256SUMS.minisig', signed].sort(), 'each asset once');
  });

  test('goreleaser checksums.txt and <asset>.sha256 work the same way', async () => {
    for (const sumsAsset of [
      { name: 'app_1.0.0_checksums.txt', data: `${sha(app1)}  ${name}\n` },
      { name: `${name}.sha256`, data: `${sha(app1)}\n` },
    ]) {
      const { release } = await startWith({ tag: 'v1.0.0', assets: [{ name, data: app1, digest: null }, { ...sumsAsset, digest: null }] });
      const store = freshStore();
      const got = await source(fake, { store, requireChecksum: true }).fetch(release, store.stagingRoot());
      assert.deepEqual(got.verified, [`sha256:${sha(app1)}`], sumsAsset.name);
    }
  });

  test('a wrong SHA256SUMS entry is refused, with no debris', async () => {
    const { release } = await startWith({ tag: 'v1.0.0', assets: [{ name, data: app1, digest: null }, { name: 'SHA256SUMS', data: `${sha(app2)}  ${name}\n`, digest: null }] });
    const store = freshStore();
    await assert.rejects(source(fake, { store }).fetch(release, store.stagingRoot()), isErr('integrity', /of release v1.0.0: digest mismatch for/));
    assert.deepEqual(debris(store), []);
  });

  test('MOLT_REQUIRE_CHECKSUM refuses an unverifiable asset before downloading it; without it the asset is installed unverified', async () => {
    const { release } = await startWith({ tag: 'v1.0.0', assets: [{ name, data: app1, digest: null }] });
    const store = freshStore();
    await assert.rejects(source(fake, { store, requireChecksum: true }).fetch(release, store.stagingRoot()), isErr('integrity', /refusing unverifiable asset app_linux_amd64.tar.gz of release v1.0.0/));
    assert.equal(fake.log.length, 0, 'nothing was downloaded');
    assert.deepEqual(debris(store), []);
    const got = await source(fake, { store }).fetch(release, store.stagingRoot());
    assert.deepEqual(got.verified, []);
    assert.ok(fs.existsSync(path.join(got.dir, 'app')));
    assert.ok(logLines.some((l) => /molt: github: unverified asset .*asset=app_linux_amd64.tar.gz/.test(l)));
    assert.deepEqual(debris(store), [`staging/${path.basename(got.dir)}`], 'an unverified blob is not cached');
  });

  test('MOLT_ASSET glob with {os}/{arch}/{version}; a bare binary is installed executable', async () => {
    const { release } = await startWith({
      tag: 'v2.1.0',
      assets: [
        { name: 'tool-2.1.0-linux-x86_64', data: 'ELF-amd64' },
        { name: 'tool-2.1.0-linux-aarch64', data: 'ELF-arm64' },
      ],
    });
    const store = freshStore();
    const got = await source(fake, { store, asset: 'tool-{version}-{os}-{arch}', binaryName: 'tool' }).fetch(release, store.stagingRoot());
    const file = path.join(got.dir, 'tool');
    assert.equal(fs.readFileSync(file, 'utf8'), 'ELF-amd64');
    assert.equal(fs.statSync(file).mode & 0o111, 0o111);
  });

  test('no asset for this arch is not-found naming the release and the pattern', async () => {
    const { release } = await startWith({ tag: 'v1.0.0', assets: [{ name: 'app_linux_arm64.tar.gz', data: app1 }] });
    const store = freshStore();
    await assert.rejects(source(fake, { store }).fetch(release, store.stagingRoot()), isErr('not-found', /release v1.0.0 of acme\/app has no asset for linux\/amd64 .*assets: app_linux_arm64.tar.gz/));
    await assert.rejects(source(fake, { store, asset: 'app_{os}_{arch}.zip' }).fetch(release, store.stagingRoot()), isErr('not-found', /matching "app_\{os\}_\{arch\}.zip"/));
    assert.deepEqual(debris(store), []);
  });

  test('a storage 5xx is retried through a fresh redirect; a storage 4xx is final', async () => {
    const { release } = await startWith({ tag: 'v1.0.0', assets: [{ name, data: app1 }] });
    const store = freshStore();
    fake.storageFaults.push(503);
    const got = await source(fake, { store }).fetch(release, store.stagingRoot());
    assert.deepEqual(got.verified, [`sha256:${sha(app1)}`]);
    assert.deepEqual(fake.log.map((e) => `${e.server} ${e.status}`), ['api 302', 'storage 503', 'api 302', 'storage 200']);
    fake.storageFaults.push(403);
    const other = freshStore();
    await assert.rejects(source(fake, { store: other }).fetch(release, other.stagingRoot()), isErr('http', /storage host 127.0.0.1:\d+ answered 403/));
    assert.deepEqual(debris(other), []);
  });

  test('a storage host that stalls mid-body is a time-out, with no debris', async () => {
    const { release } = await startWith({ tag: 'v1.0.0', assets: [{ name, data: app1 }] });
    const store = freshStore();
    fake.stallStorageAfter = 10;
    await assert.rejects(source(fake, { store, idleTimeoutMs: 300 }).fetch(release, store.stagingRoot()), isErr('network', /stalled: no data for 300ms/));
    assert.deepEqual(debris(store), []);
  });

  test('a storage host that trickles a few bytes just inside the idle time-out ends on the rate bound, with no debris', async () => {
    // 64 KiB at 100 bytes each 50 ms (2 KB/s) would take half a minute; the budget is 200 + 300 ms + 64 KiB at 32 KiB/s = 2.5 s.
    const big = Buffer.alloc(64 * 1024, 7);
    const { release } = await startWith({ tag: 'v1.0.0', assets: [{ name, data: big }] });
    const store = freshStore();
    fake.trickleStorage = { bytes: 100, everyMs: 50 };
    try {
      await assert.rejects(
        source(fake, { store, timeoutMs: 200, idleTimeoutMs: 300 }).fetch(release, store.stagingRoot()),
        isErr('network', /too slow: \d+ of 65536 bytes in 2500ms \(under 32768 bytes\/s\)/),
      );
    } finally {
      fake.trickleStorage = undefined;
    }
    assert.deepEqual(debris(store), []);
  });

  test('GitHub Enterprise: the API under /api/v3, downloads included', async () => {
    const { release } = await startWith({ tag: 'v1.0.0', assets: [{ name, data: app1 }] }, { prefix: '/api/v3' });
    assert.match(fake.baseUrl, /\/api\/v3$/);
    const store = freshStore();
    const src = source(fake, { store });
    assert.match(src.description, /at http:\/\/127\.0\.0\.1:\d+\/api\/v3/);
    const got = await src.fetch(release, store.stagingRoot());
    assert.ok(fs.existsSync(path.join(got.dir, 'app')));
    assert.match(fake.log[0]!.path, /^\/api\/v3\/repos\/acme\/app\/releases\/assets\/\d+$/);
    const { releases } = await src.list();
    assert.equal(releases[0]!.version, '1.0.0');
    assert.ok(fake.apiRequests().every((e) => e.path.startsWith('/api/v3/')));
  });
});

describe('polling cost', () => {
  test('polling at the default 5m interval with a token: every unchanged poll is a 304', async (t) => {
    const fake = await FakeGitHub.start({ token: TOKEN }, [{ tag: 'v1.0.0', assets: [{ name: 'app.tar.gz', data: app1 }] }]);
    try {
      const polls = 12; // one hour at one poll per 5 minutes
      const src = source(fake);
      for (let i = 0; i < polls; i++) await src.list();
      const api = fake.apiRequests();
      const counted = api.filter((e) => e.counted).length;
      assert.equal(api.length, polls);
      assert.equal(api.filter((e) => e.status === 304).length, polls - 1);
      assert.equal(counted, 1);
      const anon = source(fake, { token: undefined });
      const before = fake.rateLimit('anon').used;
      for (let i = 0; i < polls; i++) await anon.list();
      const anonCounted = fake.rateLimit('anon').used - before;
      assert.equal(anonCounted, polls);
      t.diagnostic(`per hour at 5m: token: ${api.length} requests, ${counted} counted against the limit (${polls - 1} were 304); anonymous: ${polls} requests, ${anonCounted} counted`);
    } finally {
      await fake.close();
    }
  });
});
