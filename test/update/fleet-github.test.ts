// The fleet's GitHub board against the local GitHub fake (real API paths, uploads
// with the token only, 403 for a token that may not write, 422 for a taken name):
// a shared block is read back by another replica from the release list; a token
// that may not write is one warning line; garbage, oversized and unsigned verdict
// assets are ignored; a verdict asset is never the release's download.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import { setLogSink } from '../../src/common/log.js';
import { Fleet } from '../../src/update/fleet/fleet.js';
import { encodeVerdictAsset, GitHubFleetBoard, MAX_VERDICT_ASSET_BYTES } from '../../src/update/fleet/github-board.js';
import { encodeVerdict, type Verdict } from '../../src/update/fleet/verdict.js';
import { selectAsset } from '../../src/update/github/assets.js';
import { GitHubSource } from '../../src/update/sources/github.js';
import { parseTrustKey, type TrustKey } from '../../src/update/trust/keys.js';
import { parseSigningKey, type SigningKey } from '../../src/update/trust/sign.js';
import { VersionStore } from '../../src/update/store.js';
import type { Release } from '../../src/update/types.js';
import { tmpdir } from '../helpers/molt.js';
import { FakeGitHub } from '../helpers/fake-github.js';

const TOKEN = 'ghp_boardFakeToken0123456789abcdefABCDE';
const none = { required: false, keys: [] as TrustKey[] };
const tarball = { name: 'app-linux-amd64.tar.gz', data: Buffer.from('not really a tarball') };

function keyPair(): { key: SigningKey; pub: TrustKey } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    key: parseSigningKey(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()) as SigningKey,
    pub: parseTrustKey(publicKey.export({ type: 'spki', format: 'pem' }).toString(), 'fleet.pem') as TrustKey,
  };
}

/** Log lines written while `fn` runs. */
async function capture(fn: () => Promise<unknown>): Promise<string[]> {
  const lines: string[] = [];
  setLogSink((l) => lines.push(l));
  try {
    await fn();
  } finally {
    setLogSink((l) => process.stderr.write(l + '\n'));
  }
  return lines;
}

describe('fleet board on GitHub (release assets)', () => {
  let gh: FakeGitHub;
  let home: string;
  const source = () => new GitHubSource({ repo: 'acme/app', token: TOKEN, baseUrl: gh.baseUrl, store: new VersionStore(home), platform: { os: 'linux', arch: 'x64' }, timeoutMs: 5000 });
  const release = async (src: GitHubSource, version: string): Promise<Release> => (await src.list()).releases.find((r) => r.version === version)!;
  const replica = (id: string, src: GitHubSource, trust = none, key?: SigningKey) =>
    new Fleet({ mode: 'write', replica: id, canaryShare: 0, needCommits: 1, trust, ...(key ? { key } : {}) }, new GitHubFleetBoard(src.fleetPort(), { trust, ...(key ? { key } : {}) }), home);

  before(async () => {
    gh = await FakeGitHub.start({ owner: 'acme', repo: 'app', token: TOKEN }, [{ tag: 'v2.0.0', assets: [tarball] }, { tag: 'v1.0.0', assets: [tarball] }]);
    home = tmpdir('fleet-gh-board');
  });
  after(async () => {
    await gh.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  test('a block shared by one replica is read by another from the next release list; the verdict asset is never the download', async () => {
    const a = source();
    await replica('web-1', a).share(await release(a, '2.0.0'), 'blocked', 'crashed 2 times during its trial');
    assert.equal(gh.uploads.length, 1);
    assert.match(gh.uploads[0]!.name, /^molt-verdict-web-1-blocked-\d+\.json$/);
    const b = source();
    const rel = await release(b, '2.0.0');
    const view = await replica('web-2', b).view(rel);
    assert.equal(view?.blocked?.replica, 'web-1');
    assert.equal(view?.blocked?.reason, 'crashed 2 times during its trial');
    // A glob that would take any asset still never takes a verdict.
    const assets = (rel.locator as { assets: { name: string; id: number; size: number; url: string }[] }).assets;
    const plain = assets.map((x) => (x.name === tarball.name ? { ...x, name: 'app.tar.gz' } : x));
    const sel = selectAsset(plain, { os: 'linux', arch: 'x64' }, '2.0.0', '*');
    assert.ok(sel.ok && sel.asset.name === 'app.tar.gz', JSON.stringify(sel));
  });

  test('a name already taken (422, as GitHub answers) is written again under the next name', async () => {
    const src = source();
    const rel = await release(src, '2.0.0');
    const board = new GitHubFleetBoard(src.fleetPort(), { trust: none, now: () => 1_700_000_000_000 });
    const v: Verdict = { kind: 'committed', subject: await board.subject(rel), reason: 'ok', replica: 'web-9', time: new Date().toISOString() };
    assert.equal(await board.write(rel, v), 'molt-verdict-web-9-committed-1700000000000.json');
    assert.equal(await board.write(rel, v), 'molt-verdict-web-9-committed-1700000000001.json');
    assert.ok(gh.apiRequests().some((e) => e.method === 'POST' && e.status === 422));
  });

  test('a token that may not write: one warning line, nothing uploaded, share does not throw', async () => {
    gh.uploadDenied = true;
    try {
      const src = source();
      const before = gh.uploads.length;
      const rel = await release(src, '1.0.0');
      const got = await capture(() => replica('web-3', src).share(rel, 'committed', 'ok'));
      const warned = got.filter((l) => /cannot share the verdict/.test(l));
      assert.equal(warned.length, 1, got.join('\n'));
      assert.match(warned[0]!, /403/);
      assert.equal(gh.uploads.length, before);
    } finally {
      gh.uploadDenied = false;
    }
  });

  test('garbage and oversized verdict assets are ignored with one line each; a good one beside them counts', async () => {
    const src = source();
    const subject = await new GitHubFleetBoard(src.fleetPort(), { trust: none }).subject(await release(src, '1.0.0'));
    const good: Verdict = { kind: 'blocked', subject, reason: 'bad config', replica: 'ops', time: new Date().toISOString() };
    gh.addAsset('v1.0.0', { name: 'molt-verdict-x-blocked-1.json', data: 'this is not json' });
    gh.addAsset('v1.0.0', { name: 'molt-verdict-y-blocked-2.json', data: Buffer.alloc(MAX_VERDICT_ASSET_BYTES + 1, 0x20) });
    gh.addAsset('v1.0.0', { name: 'molt-verdict-z-blocked-3.json', data: encodeVerdictAsset(encodeVerdict({ ...good, subject: 'github:acme/app/releases/1' })) });
    gh.addAsset('v1.0.0', { name: 'molt-verdict-ops-blocked-4.json', data: encodeVerdictAsset(encodeVerdict(good)) });
    const storageBefore = gh.log.filter((e) => e.server === 'storage').length;
    const fleet = replica('web-4', src);
    let view: Awaited<ReturnType<Fleet['view']>>;
    const lines = await capture(async () => {
      view = await fleet.view(await release(src, '1.0.0'));
    });
    assert.equal(view!?.blocked?.replica, 'ops');
    const ignored = lines.filter((l) => /verdict ignored/.test(l));
    assert.equal(ignored.length, 3, lines.join('\n'));
    assert.ok(ignored.some((l) => /not JSON/.test(l)));
    assert.ok(ignored.some((l) => /verdict asset of \d+ bytes/.test(l)));
    assert.ok(ignored.some((l) => /not github:acme\/app\/releases/.test(l)), 'a verdict about another release');
    assert.equal(gh.log.filter((e) => e.server === 'storage').length - storageBefore, 3, 'the oversized one is never downloaded');
    // Read once: assets are immutable, the next view fetches nothing and says nothing again.
    const storageNow = gh.log.filter((e) => e.server === 'storage').length;
    const quiet = await capture(async () => {
      await fleet.view(await release(src, '1.0.0'));
    });
    assert.equal(gh.log.filter((e) => e.server === 'storage').length, storageNow);
    assert.equal(quiet.filter((l) => /verdict ignored/.test(l)).length, 0);
  });

  test('with fleet keys, an unsigned verdict asset is ignored and a signed one counts', async () => {
    const { key, pub } = keyPair();
    const trust = { required: true, keys: [pub] };
    gh.addRelease({ tag: 'v3.0.0', assets: [tarball] });
    const src = source();
    const rel = await release(src, '3.0.0');
    const subject = await new GitHubFleetBoard(src.fleetPort(), { trust }).subject(rel);
    gh.addAsset('v3.0.0', { name: 'molt-verdict-mallory-blocked-1.json', data: encodeVerdictAsset(encodeVerdict({ kind: 'blocked', subject, reason: 'dos', replica: 'mallory', time: new Date().toISOString() })) });
    const readOnly = replica('web-5', source(), trust);
    const lines = await capture(async () => {
      assert.equal((await readOnly.view(await release(source(), '3.0.0')))?.blocked, undefined);
    });
    assert.ok(lines.some((l) => /verdict ignored.*unsigned verdict/.test(l)), lines.join('\n'));
    await replica('web-6', src, trust, key).share(await release(src, '3.0.0'), 'blocked', 'crashed');
    const view = await replica('web-7', source(), trust).view(await release(source(), '3.0.0'));
    assert.equal(view?.blocked?.replica, 'web-6');
  });
});
