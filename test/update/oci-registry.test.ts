// The OCI source against Debian's real docker-registry on loopback, with artifacts pushed by
// molt's own publish: extraction, bare files, following a tag, semver tags, image indexes,
// corrupted blobs, the blob cache, chunked uploads.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import * as tar from 'tar';
import { startRegistry, type Registry } from '../helpers/registry.js';
import { OciSource, hostPlatform } from '../../src/update/sources/oci.js';
import { publish } from '../../src/update/publish.js';
import { parseReference } from '../../src/update/oci/reference.js';
import { RegistryClient, sha256Hex } from '../../src/update/oci/client.js';
import { MT, EMPTY_CONFIG } from '../../src/update/oci/manifest.js';
import { VersionStore } from '../../src/update/store.js';
import { UpdateError } from '../../src/update/types.js';
import { setLogLevel } from '../../src/common/log.js';

setLogLevel('warn');

let reg: Registry;
let tmp: string;

before(async () => {
  reg = await startRegistry();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-oci-'));
});
after(async () => {
  await reg?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A release tarball holding bin/app with `content`, and a bare config file beside it. */
async function makeRelease(name: string, content: string): Promise<{ tgz: string; bare: string }> {
  const src = path.join(tmp, `${name}-src`);
  fs.mkdirSync(path.join(src, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(src, 'bin', 'app'), content, { mode: 0o755 });
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  const tgz = path.join(dir, 'app-linux.tar.gz');
  await tar.c({ gzip: true, file: tgz, cwd: src, portable: true }, ['bin']);
  const bare = path.join(dir, 'settings.json');
  fs.writeFileSync(bare, JSON.stringify({ release: name }));
  return { tgz, bare };
}

function staging(): string {
  return fs.mkdtempSync(path.join(tmp, 'staging-'));
}

describe('OciSource with docker-registry', () => {
  test('publish, list by semver tags, fetch: tarball extracted, bare file saved under its title', async () => {
    const { tgz, bare } = await makeRelease('r1', 'app v1.0.0\n');
    const ref = parseReference(`${reg.host}/demo/app:1.0.0`);
    const digest = await publish(ref, [tgz, bare], {});
    assert.match(digest, /^sha256:[0-9a-f]{64}$/);
    await publish(parseReference(`${reg.host}/demo/app:latest`), [tgz], {});

    const src = new OciSource(`${reg.host}/demo/app`);
    const { releases } = await src.list();
    assert.deepEqual(releases.map((r) => r.version), ['1.0.0']);
    const root = staging();
    const got = await src.fetch(releases[0]!, root);
    assert.equal(fs.readFileSync(path.join(got.dir, 'bin', 'app'), 'utf8'), 'app v1.0.0\n');
    assert.equal(fs.readFileSync(path.join(got.dir, 'settings.json'), 'utf8'), JSON.stringify({ release: 'r1' }));
    assert.equal(got.release.digest, digest);
    assert.ok(got.verified.includes(digest));
    assert.ok(got.verified.includes(sha256Hex(fs.readFileSync(tgz))));
    assert.ok(got.downloaded > 0);
    // Only the release tree is left in staging: the blob work dir is gone.
    assert.deepEqual(fs.readdirSync(root), [path.basename(got.dir)]);
  });

  test('semver tags are sorted as versions, not as registry order; prereleases flagged', async () => {
    const { tgz } = await makeRelease('sv', 'x');
    for (const t of ['0.9.0', '0.10.0', 'v1.0.0-rc.1', 'edge', '0.2']) await publish(parseReference(`${reg.host}/demo/sv:${t}`), [tgz], {});
    const { releases, notModified } = await new OciSource(`${reg.host}/demo/sv`).list();
    assert.equal(notModified, false);
    assert.deepEqual(releases.map((r) => [r.version, r.tag, r.prerelease]), [
      ['1.0.0-rc.1', 'v1.0.0-rc.1', true],
      ['0.10.0', '0.10.0', false],
      ['0.9.0', '0.9.0', false],
    ]);
  });

  test('following a tag: HEAD polls, a republish is a new digest and version, the checked digest is what is pulled', async () => {
    const a = await makeRelease('fa', 'first\n');
    const b = await makeRelease('fb', 'second\n');
    const ref = parseReference(`${reg.host}/demo/follow:stable`);
    const d1 = await publish(ref, [a.tgz], { version: '1.0.0' });
    const src = new OciSource(`${reg.host}/demo/follow:stable`);
    const l1 = await src.list();
    assert.equal(l1.notModified, false);
    assert.equal(l1.releases.length, 1);
    const r1 = l1.releases[0]!;
    assert.equal(r1.version, '1.0.0');
    assert.equal(r1.digest, d1);
    assert.equal(r1.tag, 'stable');

    const l2 = await src.list();
    assert.equal(l2.notModified, true);
    assert.equal(l2.releases[0]!.digest, d1);

    const d2 = await publish(ref, [b.tgz], { version: '1.1.0' });
    assert.notEqual(d2, d1);
    const l3 = await src.list();
    assert.equal(l3.notModified, false);
    assert.equal(l3.releases[0]!.digest, d2);
    assert.equal(l3.releases[0]!.version, '1.1.0');

    // The release checked earlier still fetches its own digest, although the tag has moved.
    const old = await src.fetch(r1, staging());
    assert.equal(fs.readFileSync(path.join(old.dir, 'bin', 'app'), 'utf8'), 'first\n');
    // A fresh source (after a restart) fetches from the locator alone.
    const again = await new OciSource(`${reg.host}/demo/follow:stable`).fetch(JSON.parse(JSON.stringify(l3.releases[0])), staging());
    assert.equal(fs.readFileSync(path.join(again.dir, 'bin', 'app'), 'utf8'), 'second\n');
  });

  test('a followed tag without a version annotation gets a sha-<12 hex> label', async () => {
    const { bare } = await makeRelease('nv', 'x');
    const d = await publish(parseReference(`${reg.host}/demo/nover:edge`), [bare], {});
    const { releases } = await new OciSource(`${reg.host}/demo/nover:edge`).list();
    assert.equal(releases[0]!.version, `sha-${d.slice(7, 19)}`);
    assert.equal(releases[0]!.prerelease, false);
  });

  test('blobs are cached by verified digest in the version store', async () => {
    const { tgz } = await makeRelease('cache', 'cached\n');
    await publish(parseReference(`${reg.host}/demo/cache:2.0.0`), [tgz], {});
    const store = new VersionStore(path.join(tmp, 'home-cache'));
    const src = new OciSource(`${reg.host}/demo/cache`, { cache: store });
    const [rel] = (await src.list()).releases;
    const first = await src.fetch(rel!, store.stagingRoot());
    assert.equal(first.downloaded, fs.statSync(tgz).size);
    const blob = sha256Hex(fs.readFileSync(tgz));
    assert.ok(fs.existsSync(store.cachePath(blob)));
    fs.rmSync(first.dir, { recursive: true });
    const second = await src.fetch(rel!, store.stagingRoot());
    assert.equal(second.downloaded, 0);
    assert.equal(fs.readFileSync(path.join(second.dir, 'bin', 'app'), 'utf8'), 'cached\n');
  });

  test('a corrupted blob in the registry is an integrity error and leaves no debris', async () => {
    const { tgz } = await makeRelease('bad', 'will be corrupted\n');
    await publish(parseReference(`${reg.host}/demo/corrupt:1.0.0`), [tgz], {});
    const blob = sha256Hex(fs.readFileSync(tgz));
    const file = reg.blobFile(blob);
    const bytes = fs.readFileSync(file);
    const mid = bytes.length >> 1;
    bytes[mid] = bytes[mid]! ^ 0xff;
    fs.writeFileSync(file, bytes);
    const store = new VersionStore(path.join(tmp, 'home-corrupt'));
    const src = new OciSource(`${reg.host}/demo/corrupt`, { cache: store });
    const [rel] = (await src.list()).releases;
    await assert.rejects(src.fetch(rel!, store.stagingRoot()), (e: unknown) => e instanceof UpdateError && e.code === 'integrity' && /digest mismatch/.test(e.message));
    assert.deepEqual(fs.readdirSync(store.stagingRoot()), []);
    assert.deepEqual(fs.readdirSync(path.dirname(store.cachePath(blob))), []);
  });

  test('an image index resolves to linux/<this arch>; a missing platform is named', async () => {
    const ref = parseReference(`${reg.host}/demo/multi:3.0.0`);
    const client = new RegistryClient(ref, { push: true });
    const me = hostPlatform();
    const other = me.architecture === 'amd64' ? { os: 'linux', architecture: 'arm64', variant: 'v8' } : { os: 'linux', architecture: 'amd64' };
    const put = async (title: string, content: string): Promise<{ digest: string; size: number }> => {
      const data = Buffer.from(content);
      const digest = sha256Hex(data);
      if (!(await client.blobExists(EMPTY_CONFIG.digest))) await client.uploadBlob(EMPTY_CONFIG.digest, 2, () => Readable.from([Buffer.from('{}')]));
      await client.uploadBlob(digest, data.length, () => Readable.from([data]));
      const m = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, artifactType: MT.moltRelease, config: EMPTY_CONFIG, layers: [{ mediaType: MT.octetStream, digest, size: data.length, annotations: { 'org.opencontainers.image.title': title } }], annotations: { 'org.opencontainers.image.version': '3.0.0' } }));
      return { digest: await client.putManifest(sha256Hex(m), m, MT.ociManifest), size: m.length };
    };
    const mine = await put('app', `built for ${me.architecture}`);
    const theirs = await put('app', `built for ${other.architecture}`);
    const attest = await put('provenance.json', '{}');
    const index = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociIndex,
      manifests: [
        { mediaType: MT.ociManifest, ...theirs, platform: other },
        { mediaType: MT.ociManifest, ...attest, platform: { os: 'unknown', architecture: 'unknown' }, annotations: { 'vnd.docker.reference.type': 'attestation-manifest' } },
        { mediaType: MT.ociManifest, ...mine, platform: me },
      ],
    }));
    const indexDigest = await client.putManifest('3.0.0', index, MT.ociIndex);

    const src = new OciSource(`${reg.host}/demo/multi:3.0.0`);
    const [rel] = (await src.list()).releases;
    assert.equal(rel!.digest, indexDigest);
    assert.equal(rel!.version, '3.0.0');
    const got = await src.fetch(rel!, staging());
    assert.equal(fs.readFileSync(path.join(got.dir, 'app'), 'utf8'), `built for ${me.architecture}`);
    assert.ok(got.verified.includes(mine.digest));

    const root = staging();
    const s390 = new OciSource(`${reg.host}/demo/multi`, { platform: { os: 'linux', architecture: 's390x' } });
    await assert.rejects(s390.fetch({ ...rel!, locator: { tag: '3.0.0' }, digest: undefined }, root), (e: unknown) => e instanceof UpdateError && e.code === 'not-found' && /no linux\/s390x manifest/.test(e.message));
    assert.deepEqual(fs.readdirSync(root), []);
  });

  test('an ORAS-style plain file labelled ...tar is saved under its title, a real tar layer is extracted', async () => {
    const ref = parseReference(`${reg.host}/demo/oras:1.0.0`);
    const client = new RegistryClient(ref, { push: true });
    const plain = Buffer.from('#!/bin/sh\necho plain\n');
    const tarFile = path.join(tmp, 'layer.tar');
    const tsrc = path.join(tmp, 'tsrc');
    fs.mkdirSync(tsrc, { recursive: true });
    fs.writeFileSync(path.join(tsrc, 'inside.txt'), 'from a tar layer');
    await tar.c({ file: tarFile, cwd: tsrc, portable: true }, ['inside.txt']);
    const tarBytes = fs.readFileSync(tarFile);
    await client.uploadBlob(EMPTY_CONFIG.digest, 2, () => Readable.from([Buffer.from('{}')]));
    await client.uploadBlob(sha256Hex(plain), plain.length, () => Readable.from([plain]));
    await client.uploadBlob(sha256Hex(tarBytes), tarBytes.length, () => Readable.from([tarBytes]));
    const m = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: MT.ociManifest, artifactType: 'application/vnd.unknown.artifact.v1', config: EMPTY_CONFIG,
      layers: [
        { mediaType: MT.layerTar, digest: sha256Hex(plain), size: plain.length, annotations: { 'org.opencontainers.image.title': 'run.sh' } },
        { mediaType: MT.layerTar, digest: sha256Hex(tarBytes), size: tarBytes.length, annotations: { 'org.opencontainers.image.title': 'layer.tar' } },
      ],
    }));
    await client.putManifest('1.0.0', m, MT.ociManifest);
    const src = new OciSource(`${reg.host}/demo/oras`);
    const [rel] = (await src.list()).releases;
    const got = await src.fetch(rel!, staging());
    assert.deepEqual(fs.readdirSync(got.dir).sort(), ['inside.txt', 'run.sh']);
    assert.equal(fs.readFileSync(path.join(got.dir, 'run.sh'), 'utf8'), plain.toString());
    assert.equal(fs.readFileSync(path.join(got.dir, 'inside.txt'), 'utf8'), 'from a tar layer');
  });

  test('the release root is 0755 (an app that dropped root can enter it)', async () => {
    const { tgz, bare } = await makeRelease('r-mode', 'mode\n');
    await publish(parseReference(`${reg.host}/demo/mode:1.0.0`), [tgz, bare], {});
    const src = new OciSource(`${reg.host}/demo/mode`);
    const [rel] = (await src.list()).releases;
    const got = await src.fetch(rel!, staging());
    assert.equal(fs.statSync(got.dir).mode & 0o7777, 0o755);
  });

  test('a symlink chain split across 9 layers, each harmless alone, is refused on the merged tree', async () => {
    // Layer i holds l<i>/s -> ../l<i-1>/s/.. : lexically inside, but once l<i-1>/s is a symlink (from
    // an earlier layer) each link climbs one level more; the last layer adds pw through l9/s.
    const layers: string[] = [];
    for (let i = 1; i <= 9; i++) {
      const src = path.join(tmp, `chain-${i}`);
      fs.mkdirSync(path.join(src, `l${i}`), { recursive: true });
      fs.symlinkSync(i === 1 ? '..' : `../l${i - 1}/s/..`, path.join(src, `l${i}`, 's'));
      const names = [`l${i}`];
      if (i === 9) {
        fs.symlinkSync('l9/s/etc/passwd', path.join(src, 'pw'));
        names.push('pw');
      }
      const file = path.join(tmp, `chain-${i}.tar.gz`);
      await tar.c({ gzip: true, file, cwd: src, portable: true }, names);
      layers.push(file);
    }
    await publish(parseReference(`${reg.host}/demo/chain:1.0.0`), layers, {});
    const src = new OciSource(`${reg.host}/demo/chain`);
    const [rel] = (await src.list()).releases;
    const root = staging();
    await assert.rejects(src.fetch(rel!, root), (e: unknown) => e instanceof UpdateError && e.code === 'hostile-archive' && /resolves outside the release/.test(e.message));
    assert.deepEqual(fs.readdirSync(root), [], 'no debris');
  });

  test('the limits hold for the release, not per layer: two layers of 6 entries pass no limit of 10', async () => {
    const layers: string[] = [];
    for (const n of [1, 2]) {
      const src = path.join(tmp, `six-${n}`);
      fs.mkdirSync(src, { recursive: true });
      const names = Array.from({ length: 6 }, (_, i) => `l${n}-${i}`);
      for (const f of names) fs.writeFileSync(path.join(src, f), f);
      const file = path.join(tmp, `six-${n}.tar.gz`);
      await tar.c({ gzip: true, file, cwd: src, portable: true }, names);
      layers.push(file);
    }
    await publish(parseReference(`${reg.host}/demo/six:1.0.0`), layers, {});
    const ok = new OciSource(`${reg.host}/demo/six`, { extractLimits: { maxEntries: 12 } });
    const [rel] = (await ok.list()).releases;
    assert.equal(fs.readdirSync((await ok.fetch(rel!, staging())).dir).length, 12);
    const src = new OciSource(`${reg.host}/demo/six`, { extractLimits: { maxEntries: 10 } });
    const root = staging();
    await assert.rejects(src.fetch(rel!, root), (e: unknown) => e instanceof UpdateError && e.code === 'hostile-archive' && /more than 4 entries/.test(e.message));
    assert.deepEqual(fs.readdirSync(root), [], 'no debris');
  });

  test('a later layer replacing an earlier file is a hostile archive', async () => {
    const layers: string[] = [];
    for (const n of [1, 2]) {
      const src = path.join(tmp, `collide-${n}`);
      fs.mkdirSync(src, { recursive: true });
      fs.writeFileSync(path.join(src, 'run'), `layer ${n}`);
      const file = path.join(tmp, `collide-${n}.tar.gz`);
      await tar.c({ gzip: true, file, cwd: src, portable: true }, ['run']);
      layers.push(file);
    }
    await publish(parseReference(`${reg.host}/demo/collide:1.0.0`), layers, {});
    const src = new OciSource(`${reg.host}/demo/collide`);
    const [rel] = (await src.list()).releases;
    await assert.rejects(src.fetch(rel!, staging()), (e: unknown) => e instanceof UpdateError && e.code === 'hostile-archive' && /layers collide on 'run'/.test(e.message));
  });

  test('chunked upload (PATCH with Content-Range) round-trips a file byte for byte', async () => {
    const big = path.join(tmp, 'blob.bin');
    fs.writeFileSync(big, crypto.randomBytes(100_000 + 17));
    const d = await publish(parseReference(`${reg.host}/demo/chunked:1.0.0`), [big], {}, { chunkSize: 30_000 });
    const src = new OciSource(`${reg.host}/demo/chunked:1.0.0`);
    const [rel] = (await src.list()).releases;
    assert.equal(rel!.digest, d);
    const got = await src.fetch(rel!, staging());
    assert.deepEqual(fs.readFileSync(path.join(got.dir, 'blob.bin')), fs.readFileSync(big));
  });

  test('an unknown repository is a not-found error naming it', async () => {
    await assert.rejects(new OciSource(`${reg.host}/demo/nothing:1.0.0`).list(), (e: unknown) => e instanceof UpdateError && e.code === 'not-found' && /demo\/nothing/.test(e.message));
    await assert.rejects(new OciSource(`${reg.host}/demo/nothing`).list(), (e: unknown) => e instanceof UpdateError && e.code === 'not-found');
  });
});
