// Pure decisions of the OCI source and `molt publish`: references, challenges, manifests,
// platform choice, layer plans, retry timing, pagination links, credentials.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseReference, isLoopbackHost } from '../../src/update/oci/reference.js';
import { parseChallenges, credentialsFromDockerConfig, parseTokenResponse } from '../../src/update/oci/auth.js';
import { parseManifest, choosePlatform, planLayer, ociArch, looksLikeTar, versionFromLabel, digestLabel, MT, type ImageIndex, type Descriptor } from '../../src/update/oci/manifest.js';
import { parseRetryAfter, retryDelayMs, parseLinkNext } from '../../src/update/oci/http.js';
import { registryErrorText } from '../../src/update/oci/client.js';
import { releasesFromTags, semverTagVersion, ociSourceFromEnv } from '../../src/update/sources/oci.js';
import { parsePublishArgs, layerMediaType, buildManifest } from '../../src/update/publish.js';
import { UpdateError } from '../../src/update/types.js';

const D1 = 'sha256:' + 'a'.repeat(64);
const D2 = 'sha256:' + 'b'.repeat(64);
const D3 = 'sha256:' + 'c'.repeat(64);

function isUpdateError(code: string, re?: RegExp) {
  return (e: unknown) => e instanceof UpdateError && e.code === code && (!re || re.test(e.message));
}

describe('parseReference', () => {
  test('host:port/repo:tag on loopback is plain http', () => {
    const r = parseReference('127.0.0.1:5000/team/app:1.2.3');
    assert.deepEqual(r, { registry: '127.0.0.1:5000', baseUrl: 'http://127.0.0.1:5000', repository: 'team/app', tag: '1.2.3', digest: undefined, insecure: true });
  });
  test('a public host is https; no tag means semver mode', () => {
    const r = parseReference('ghcr.io/owner/app');
    assert.equal(r.baseUrl, 'https://ghcr.io');
    assert.equal(r.tag, undefined);
    assert.equal(r.insecure, false);
  });
  test('insecure option forces http for another host', () => {
    assert.equal(parseReference('registry.lan:5000/app:edge', { insecure: true }).baseUrl, 'http://registry.lan:5000');
  });
  test('localhost and digests', () => {
    const r = parseReference(`localhost:5000/app@${D1}`);
    assert.equal(r.digest, D1);
    assert.equal(r.tag, undefined);
    assert.equal(r.baseUrl, 'http://localhost:5000');
  });
  test('docker.io maps to the Hub API host and library/', () => {
    const r = parseReference('docker.io/alpine:3');
    assert.equal(r.baseUrl, 'https://registry-1.docker.io');
    assert.equal(r.repository, 'library/alpine');
    assert.equal(r.registry, 'docker.io');
  });
  for (const bad of ['', 'app', 'app:1.0', 'Host/app', 'ghcr.io/App', 'ghcr.io/app:bad tag', 'https://ghcr.io/app', 'ghcr.io/app@sha256:123', 'ghcr.io/a//b', 'ghcr.io/app:.x']) {
    test(`refuses ${JSON.stringify(bad)} as config error`, () => {
      assert.throws(() => parseReference(bad), isUpdateError('config'));
    });
  }
  test('loopback detection', () => {
    assert.equal(isLoopbackHost('127.8.9.1:1'), true);
    assert.equal(isLoopbackHost('[::1]:5000'), true);
    assert.equal(isLoopbackHost('127.example.com'), false);
  });
});

describe('parseChallenges', () => {
  test('Bearer with realm, service and scope', () => {
    const c = parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"');
    assert.deepEqual(c, [{ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:samalba/my-app:pull,push' } }]);
  });
  test('two challenges, unquoted values, escapes', () => {
    const c = parseChallenges('Basic realm="Registry \\"x\\"", Bearer realm=https://t/token , service=reg');
    assert.equal(c.length, 2);
    assert.deepEqual(c[0], { scheme: 'basic', params: { realm: 'Registry "x"' } });
    assert.deepEqual(c[1], { scheme: 'bearer', params: { realm: 'https://t/token', service: 'reg' } });
  });
  test('missing header gives nothing', () => {
    assert.deepEqual(parseChallenges(undefined), []);
  });
});

describe('credentials and tokens', () => {
  const auth = Buffer.from('bob:s3:cret').toString('base64');
  test('docker config auths by host, scheme/path stripped', () => {
    assert.deepEqual(credentialsFromDockerConfig({ auths: { 'https://reg.example:5000/v1/': { auth } } }, 'reg.example:5000'), { username: 'bob', password: 's3:cret' });
    assert.equal(credentialsFromDockerConfig({ auths: { 'other.example': { auth } } }, 'reg.example'), undefined);
  });
  test('Docker Hub key index.docker.io serves docker.io', () => {
    assert.equal(credentialsFromDockerConfig({ auths: { 'https://index.docker.io/v1/': { auth } } }, 'docker.io')?.username, 'bob');
  });
  test('token response: token or access_token, default 60 s life', () => {
    assert.deepEqual(parseTokenResponse({ access_token: 'x' }, 1000), { token: 'x', expiresAtMs: 1000 + 50_000 });
    assert.equal(parseTokenResponse({ token: 'y', expires_in: 300 }, 0)?.expiresAtMs, 290_000);
    assert.equal(parseTokenResponse({ nothing: 1 }, 0), undefined);
  });
});

function manifestBytes(doc: unknown): Buffer {
  return Buffer.from(JSON.stringify(doc));
}

describe('parseManifest', () => {
  const good = { schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.empty, digest: D1, size: 2 }, layers: [{ mediaType: MT.layerTarGzip, digest: D2, size: 10, annotations: { 'org.opencontainers.image.title': 'app.tgz' } }], annotations: { 'org.opencontainers.image.version': '1.0.0' } };
  test('an OCI artifact manifest', () => {
    const m = parseManifest(manifestBytes(good), MT.ociManifest, 'x');
    assert.equal(m.kind, 'manifest');
    assert.equal(m.annotations['org.opencontainers.image.version'], '1.0.0');
  });
  test('malformed JSON is a bad-input error', () => {
    assert.throws(() => parseManifest(Buffer.from('{"schemaVersion":2,'), MT.ociManifest, 'x'), isUpdateError('bad-input', /malformed manifest JSON/));
  });
  test('unknown media type is refused by name', () => {
    assert.throws(() => parseManifest(manifestBytes({ ...good, mediaType: 'application/vnd.example.thing+json' }), undefined, 'x'), isUpdateError('bad-input', /unknown manifest media type 'application\/vnd\.example\.thing\+json'/));
  });
  test('body type must agree with Content-Type', () => {
    assert.throws(() => parseManifest(manifestBytes(good), MT.ociIndex, 'x'), isUpdateError('bad-input', /served as/));
  });
  test('schema 1 and bad digests are refused', () => {
    assert.throws(() => parseManifest(manifestBytes({ ...good, schemaVersion: 1 }), undefined, 'x'), isUpdateError('bad-input', /schemaVersion/));
    const bad = { ...good, layers: [{ mediaType: MT.layerTar, digest: 'sha512:' + 'a'.repeat(128), size: 1 }] };
    assert.throws(() => parseManifest(manifestBytes(bad), undefined, 'x'), isUpdateError('bad-input', /only sha256/));
    const neg = { ...good, layers: [{ mediaType: MT.layerTar, digest: D2, size: -1 }] };
    assert.throws(() => parseManifest(manifestBytes(neg), undefined, 'x'), isUpdateError('bad-input', /bad size/));
  });
  test('Docker manifest list parses as an index', () => {
    const m = parseManifest(manifestBytes({ schemaVersion: 2, mediaType: MT.dockerList, manifests: [{ mediaType: MT.dockerManifest, digest: D1, size: 5, platform: { os: 'linux', architecture: 'amd64' } }] }), `${MT.dockerList}; charset=utf-8`, 'x');
    assert.equal(m.kind, 'index');
  });
});

describe('choosePlatform', () => {
  const index: ImageIndex = {
    kind: 'index',
    mediaType: MT.ociIndex,
    annotations: {},
    manifests: [
      { mediaType: MT.ociManifest, digest: D3, size: 1, platform: { os: 'unknown', architecture: 'unknown' }, annotations: { 'vnd.docker.reference.type': 'attestation-manifest' } },
      { mediaType: MT.ociManifest, digest: D1, size: 1, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: MT.ociManifest, digest: D2, size: 1, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ],
  };
  test('node arch names map to OCI names', () => {
    assert.equal(ociArch('x64'), 'amd64');
    assert.equal(ociArch('arm64'), 'arm64');
  });
  test('picks linux/amd64 and linux/arm64 (variant v8)', () => {
    assert.equal(choosePlatform(index, { os: 'linux', architecture: 'amd64' })?.digest, D1);
    assert.equal(choosePlatform(index, { os: 'linux', architecture: 'arm64', variant: 'v8' })?.digest, D2);
    assert.equal(choosePlatform(index, { os: 'linux', architecture: 'arm64' })?.digest, D2);
  });
  test('missing platform gives undefined; attestations never chosen', () => {
    assert.equal(choosePlatform(index, { os: 'linux', architecture: 's390x' }), undefined);
    assert.equal(choosePlatform(index, { os: 'unknown', architecture: 'unknown' }), undefined);
  });
});

describe('planLayer', () => {
  const d = (mediaType: string, title?: string): Descriptor => ({ mediaType, digest: D1, size: 1, annotations: title === undefined ? {} : { 'org.opencontainers.image.title': title } });
  test('tar+gzip, tar and Docker rootfs layers are extracted', () => {
    assert.deepEqual(planLayer(d(MT.layerTarGzip)), { action: 'extract', compressed: true });
    assert.deepEqual(planLayer(d(MT.layerTar, 'x.bin')), { action: 'extract', compressed: false, title: 'x.bin' });
    assert.deepEqual(planLayer(d('application/vnd.docker.image.rootfs.diff.tar.gzip')), { action: 'extract', compressed: true });
  });
  test('other types are saved under their title', () => {
    assert.deepEqual(planLayer(d(MT.octetStream, 'app')), { action: 'file', name: 'app' });
    assert.deepEqual(planLayer(d('application/vnd.unknown.layer.v1+binary', 'run.sh')), { action: 'file', name: 'run.sh' });
  });
  for (const t of ['../evil', '/etc/passwd', 'a/b', '..', '.', '', 'x\ny', 'a\\b']) {
    test(`unsafe title ${JSON.stringify(t)} is refused`, () => {
      assert.throws(() => planLayer(d(MT.octetStream, t)), isUpdateError('bad-input', /title/));
    });
  }
  test('no title is refused; zstd is refused', () => {
    assert.throws(() => planLayer(d(MT.octetStream)), isUpdateError('bad-input', /no org\.opencontainers\.image\.title/));
    assert.throws(() => planLayer(d('application/vnd.oci.image.layer.v1.tar+zstd', 'x')), isUpdateError('bad-input', /zstd/));
  });
  test('ustar magic sniff', () => {
    const h = Buffer.alloc(512);
    assert.equal(looksLikeTar(h), false);
    h.write('ustar', 257, 'latin1');
    assert.equal(looksLikeTar(h), true);
  });
});

describe('version labels', () => {
  test('annotation versions lose a leading v; unsafe labels are rejected', () => {
    assert.equal(versionFromLabel('v1.2.3'), '1.2.3');
    assert.equal(versionFromLabel('2024.05.01-rc1'), '2024.05.01-rc1');
    assert.equal(versionFromLabel('../x'), undefined);
    assert.equal(versionFromLabel('a b'), undefined);
    assert.equal(digestLabel(D1), 'sha-aaaaaaaaaaaa');
  });
  test('semver tags become releases, newest first, prerelease flagged, v-duplicates folded', () => {
    const ref = parseReference('127.0.0.1:1/app');
    const rs = releasesFromTags(['latest', '1.0.0', 'v1.0.0', '1.10.0', '1.9.0', '2.0.0-rc.1', 'v3', 'sha-abc'], ref);
    assert.deepEqual(rs.map((r) => [r.version, r.tag, r.prerelease]), [
      ['2.0.0-rc.1', '2.0.0-rc.1', true],
      ['1.10.0', '1.10.0', false],
      ['1.9.0', '1.9.0', false],
      ['1.0.0', '1.0.0', false],
    ]);
    assert.equal(semverTagVersion('v1.2.3'), '1.2.3');
    assert.equal(semverTagVersion('1.2'), undefined);
  });
});

describe('retry timing and links', () => {
  test('Retry-After in seconds or as a date', () => {
    assert.equal(parseRetryAfter('3', 0), 3000);
    assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4000), 6000);
    assert.equal(parseRetryAfter('soon', 0), undefined);
  });
  test('backoff doubles with jitter within [d/2, d], capped; Retry-After wins', () => {
    const o = { baseMs: 100, maxMs: 1000 };
    assert.equal(retryDelayMs(0, undefined, o, 0), 50);
    assert.equal(retryDelayMs(0, undefined, o, 1), 100);
    assert.equal(retryDelayMs(3, undefined, o, 0.5), 600);
    assert.equal(retryDelayMs(10, undefined, o, 1), 1000);
    assert.equal(retryDelayMs(2, 7000, o, 0.3), 7000);
  });
  test('Link rel=next, relative to the request', () => {
    const base = new URL('http://r:5000/v2/app/tags/list?n=2');
    assert.equal(parseLinkNext('</v2/app/tags/list?n=2&last=b>; rel="next"', base)?.href, 'http://r:5000/v2/app/tags/list?n=2&last=b');
    assert.equal(parseLinkNext('<http://r:5000/x>; rel="prev", <http://r:5000/y>; rel=next', base)?.href, 'http://r:5000/y');
    assert.equal(parseLinkNext('<http://r:5000/x>; rel="prev"', base), undefined);
  });
  test('registry error bodies give one line', () => {
    assert.equal(registryErrorText(Buffer.from('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')), 'MANIFEST_UNKNOWN: manifest unknown');
    assert.equal(registryErrorText(Buffer.from('<html>')), '');
  });
});

describe('publish arguments and manifest', () => {
  test('REF, files, --version, repeated --annotation, --chunk-size', () => {
    const a = parsePublishArgs(['127.0.0.1:1/app:edge', 'a.tgz', '--version', 'v1.2.3', '--annotation', 'k=v=w', '-a', 'x=', 'b', '--chunk-size=1024']);
    assert.deepEqual(a, { ref: '127.0.0.1:1/app:edge', files: ['a.tgz', 'b'], version: '1.2.3', annotations: { k: 'v=w', x: '' }, insecure: false, chunkSize: 1024 });
  });
  for (const [argv, re] of [
    [[], /missing REF/],
    [['r/a:1'], /missing FILE/],
    [['r/a:1', 'f', '--version'], /needs a value/],
    [['r/a:1', 'f', '--bogus'], /unknown option/],
    [['r/a:1', 'f', '--annotation', 'novalue'], /key=value/],
    [['r/a:1', 'f', '--version', '../x'], /version/],
  ] as [string[], RegExp][]) {
    test(`usage error: ${argv.join(' ') || '(none)'}`, () => {
      assert.throws(() => parsePublishArgs(argv), re);
    });
  }
  test('layer media types by file name', () => {
    assert.equal(layerMediaType('app-1.0.tar.gz'), MT.layerTarGzip);
    assert.equal(layerMediaType('APP.TGZ'), MT.layerTarGzip);
    assert.equal(layerMediaType('app'), MT.octetStream);
    assert.equal(layerMediaType('notes.tar'), MT.octetStream);
  });
  test('artifact manifest: empty config, artifactType, titles, annotations', () => {
    const bytes = buildManifest([{ mediaType: MT.octetStream, digest: D2, size: 3, annotations: { 'org.opencontainers.image.title': 'app' } }], { 'org.opencontainers.image.version': '1.0.0' });
    const m = parseManifest(bytes, MT.ociManifest, 'x');
    assert.equal(m.kind, 'manifest');
    if (m.kind !== 'manifest') return;
    assert.equal(m.artifactType, 'application/vnd.molt.release.v1');
    assert.deepEqual(m.config, { mediaType: MT.empty, digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2, annotations: {} });
    assert.equal(m.layers[0]!.annotations!['org.opencontainers.image.title'], 'app');
  });
});

describe('MOLT_OCI configuration', () => {
  test('unset means no OCI source; MOLT_OCI_INSECURE=1 gives plain http to a LAN registry', () => {
    assert.equal(ociSourceFromEnv({}), undefined);
    const s = ociSourceFromEnv({ MOLT_OCI: 'registry.lan:5000/team/app:stable', MOLT_OCI_INSECURE: '1' });
    assert.equal(s?.ref.baseUrl, 'http://registry.lan:5000');
    assert.equal(s?.description, 'oci registry.lan:5000/team/app:stable');
    assert.equal(ociSourceFromEnv({ MOLT_OCI: 'registry.lan:5000/team/app' })?.ref.baseUrl, 'https://registry.lan:5000');
  });
  test('a bad MOLT_OCI or a pinned digest is a config error', () => {
    assert.throws(() => ociSourceFromEnv({ MOLT_OCI: 'app:1' }), isUpdateError('config', /bad OCI reference 'app:1'/));
    assert.throws(() => ociSourceFromEnv({ MOLT_OCI: `r.io/app@${D1}` }), isUpdateError('config', /pins a digest/));
  });
});
