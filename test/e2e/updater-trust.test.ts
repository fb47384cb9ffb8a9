// Signed releases end to end (issue 12): molt init as PID 1 of a PID namespace
// runs the example app and updater services with MOLT_TRUST_KEYS set to a key
// Debian's minisign made. A release signed by it installs and `molt status`
// and /api/status name the key; an unsigned release, one signed by a stranger's
// key, one whose bytes changed after signing and a signed old release renamed
// to a higher version are each refused and blocked with the reason,
// one log line, a notification and molt_signature_failures_total, while the
// running version keeps running (same pid). The same through GitHub Releases
// (the loopback fake) and through an OCI registry (Debian's docker-registry:
// `molt publish --sign`, cosign's .sig tag, referrers by the tag schema), and a
// malformed MOLT_TRUST_KEYS stops the updater with exit 2 and one line naming it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cli, tmpdir } from '../helpers/molt.js';
import { FakeGitHub } from '../helpers/fake-github.js';
import { freePort, startRegistry, type Registry } from '../helpers/registry.js';
import { testSigstore } from '../helpers/sigstore.js';
import { TestTufRepo } from '../helpers/tuf.js';
import { Readable } from 'node:stream';
import { createPublicKey } from 'node:crypto';
import { RegistryClient, sha256Hex } from '../../src/update/oci/client.js';
import { EMPTY_CONFIG, MT } from '../../src/update/oci/manifest.js';
import { parseReference } from '../../src/update/oci/reference.js';
import { cosignSignatureTag, SIG } from '../../src/update/oci/referrers.js';
import { attachReferrer, pushCosignSignature } from '../../src/update/oci/attach.js';
import { parseSigningKey } from '../../src/update/trust/sign.js';
import { pemKeyId } from '../../src/update/trust/keys.js';
import { packHello, Stack } from './updater-stack.js';
import { appPid, assertRefused, makeKeys, metric, minisign, notifySink, packSigned, publishDir, type Keys } from './trust-helpers.js';

describe('signed releases from a local directory (MOLT_DIR + MOLT_TRUST_KEYS)', { timeout: 240_000 }, () => {
  let stack: Stack | undefined;
  let root: string;
  let notes: Awaited<ReturnType<typeof notifySink>>;
  let keys: Keys;
  let releases: string;
  let build: string;

  before(async () => {
    root = tmpdir('trust-dir');
    keys = makeKeys(root);
    releases = path.join(root, 'releases');
    build = path.join(root, 'build');
    fs.mkdirSync(releases);
    notes = await notifySink();
  });
  after(async () => {
    await stack?.dispose();
    await notes?.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  /** hello VERSION packed in build/VERSION/, signed by `key` unless null; returns the tarball's path there. */
  const pack = (version: string, key: string | null): string => packSigned(build, version, key);
  /** Into MOLT_DIR, signature first, so that a poll never sees the tarball without it. */
  const publish = (tarball: string, as?: string): void => publishDir(releases, tarball, as);

  test('a signed release installs and shows its key; unsigned, stranger-signed, altered and renamed ones are refused while it keeps running', async () => {
    stack = await Stack.create({ label: 'e2e-trust-dir', env: { MOLT_DIR: releases, MOLT_TRUST_KEYS: keys.trustedPub, MOLT_NOTIFY_URL: notes.url } });
    const v1 = pack('1.0.0', keys.trustedKey);
    publish(v1);
    stack.start();
    await stack.waitAppVersion('1.0.0', 60_000);
    let s = await stack.waitStatus('1.0.0 committed', (x) => x.phase === 'idle' && x.history.some((h) => h.event === 'commit' && h.version === '1.0.0'));
    assert.equal(s.verifiedBy, keys.trustedId, '/api/status names the key that verified the running version');
    assert.equal(stack.state().verifiedBy?.['1.0.0'], keys.trustedId, 'state.json keeps it');
    const st = await stack.cli(['status']);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, new RegExp(`signed by\\s+${keys.trustedId}`), `molt status shows the key:\n${st.stdout}`);
    assert.ok(!stack.logs().includes('releases are installed without a signature check'), 'no warning when a key is pinned');
    const running = { version: '1.0.0', pid: appPid(stack), by: keys.trustedId };

    publish(pack('2.0.0', null));
    await assertRefused(stack, notes, '2.0.0', 'no signature', running);

    publish(pack('3.0.0', keys.strangerKey));
    await assertRefused(stack, notes, '3.0.0', `unknown key ${keys.strangerId}`, running);

    // Signed, then its bytes replaced by another build of the same name.
    const v4 = pack('4.0.0', keys.trustedKey);
    const other = packHello('4.0.0', path.join(build, '4.0.0-other'), 'crash');
    fs.copyFileSync(other, v4);
    publish(v4);
    await assertRefused(stack, notes, '4.0.0', 'bad signature', running);

    // The signed 1.0.0, served under a higher version with its own signature beside it.
    publish(v1, '5.0.0.tar.gz');
    await assertRefused(stack, notes, '5.0.0', 'signed for 1.0.0.tar.gz, served as 5.0.0.tar.gz (version 5.0.0)', running);

    assert.equal(await metric(stack, 'molt_signature_failures_total'), 4, 'each refusal counted');

    // A properly signed newer release still goes through.
    publish(pack('6.0.0', keys.trustedKey));
    await stack.waitAppVersion('6.0.0', 60_000);
    s = await stack.waitStatus('6.0.0 committed', (x) => x.phase === 'idle' && x.history.some((h) => h.event === 'commit' && h.version === '6.0.0'));
    assert.equal(s.verifiedBy, keys.trustedId);
    assert.equal(await metric(stack, 'molt_signature_failures_total'), 4);
  });

  test('a malformed MOLT_TRUST_KEYS stops the updater: exit 2, one line naming it', () => {
    const bad = path.join(root, 'bad.pub');
    fs.writeFileSync(bad, 'untrusted comment: not a key\nRWnot-base64!!\n');
    const home = path.join(root, 'home-bad');
    const r = spawnSync(process.execPath, [cli, 'updater'], {
      env: { ...process.env, MOLT_DIR: releases, MOLT_HOME: home, MOLT_SOCKET: path.join(root, 'bad.sock'), MOLT_SERVICES: path.join(root, 'no-services'), MOLT_TRUST_KEYS: bad },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.status, 2, r.stdout + r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^molt updater: MOLT_TRUST_KEYS: /);
    assert.ok(lines[0]!.includes(bad), 'it names the file');
    assert.ok(!fs.existsSync(path.join(home, 'versions')) || fs.readdirSync(path.join(home, 'versions')).length === 0, 'nothing was installed');
  });
});

describe('signed releases from GitHub Releases (loopback fake + MOLT_TRUST_KEYS)', { timeout: 240_000 }, () => {
  const TOKEN = 'ghp_e2eFakeToken0123456789abcdefABCDEF';
  const arch = os.arch() === 'x64' ? 'amd64' : os.arch();
  let gh: FakeGitHub | undefined;
  let stack: Stack | undefined;
  let root: string;
  let notes: Awaited<ReturnType<typeof notifySink>>;

  before(async () => {
    root = tmpdir('trust-gh');
    notes = await notifySink();
  });
  after(async () => {
    await stack?.dispose();
    await gh?.close();
    await notes?.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('a release with a .minisig asset installs; an unsigned one and a renamed signed one are refused', async () => {
    const keys = makeKeys(root);
    gh = await FakeGitHub.start({ owner: 'acme', repo: 'hello', token: TOKEN });
    stack = await Stack.create({ label: 'e2e-trust-gh', env: { MOLT_GITHUB: 'acme/hello', MOLT_GITHUB_API: gh.baseUrl, GITHUB_TOKEN: TOKEN, MOLT_TRUST_KEYS: keys.trustedPub, MOLT_NOTIFY_URL: notes.url } });
    /** hello VERSION as the release asset, with `<asset>.minisig` by `key` unless null. */
    const asset = (version: string, key: string | null): { name: string; data: Buffer; sig?: Buffer } => {
      const out = path.join(root, version);
      const name = `hello-${version}-linux-${arch}.tar.gz`;
      fs.renameSync(packHello(version, out), path.join(out, name));
      if (key) minisign(out, '-S', '-s', key, '-m', name);
      return { name, data: fs.readFileSync(path.join(out, name)), ...(key ? { sig: fs.readFileSync(path.join(out, `${name}.minisig`)) } : {}) };
    };
    const release = (version: string, a: { name: string; data: Buffer; sig?: Buffer }) =>
      gh!.addRelease({ tag: `v${version}`, assets: [{ name: a.name, data: a.data }, ...(a.sig ? [{ name: `${a.name}.minisig`, data: a.sig, contentType: 'text/plain' }] : [])] });

    const v1 = asset('1.0.0', keys.trustedKey);
    release('1.0.0', v1);
    stack.start();
    await stack.waitAppVersion('1.0.0', 60_000);
    const s = await stack.waitStatus('1.0.0 committed', (x) => x.phase === 'idle' && x.history.some((h) => h.event === 'commit' && h.version === '1.0.0'));
    assert.equal(s.verifiedBy, keys.trustedId, '/api/status names the key');
    const running = { version: '1.0.0', pid: appPid(stack), by: keys.trustedId };

    release('2.0.0', asset('2.0.0', null));
    await assertRefused(stack, notes, '2.0.0', 'no signature', running);

    // 1.0.0's signed asset and signature, renamed as the assets of v3.0.0.
    const renamed = `hello-3.0.0-linux-${arch}.tar.gz`;
    release('3.0.0', { name: renamed, data: v1.data, sig: v1.sig! });
    await assertRefused(stack, notes, '3.0.0', `signed for ${v1.name}, served as ${renamed} (version 3.0.0)`, running);
    assert.equal(await metric(stack, 'molt_signature_failures_total'), 2);
  });
});

describe('keyless: GitHub artifact attestations against a pinned workflow (MOLT_TRUST_IDENTITY + MOLT_TRUST_ROOT)', { timeout: 240_000 }, () => {
  const arch = os.arch() === 'x64' ? 'amd64' : os.arch();
  const PINNED = 'https://github.com/acme/hello/.github/workflows/release.yml@refs/tags/v*';
  const workflow = (v: string, file = 'release.yml') => `https://github.com/acme/hello/.github/workflows/${file}@refs/tags/v${v}`;
  let gh: FakeGitHub | undefined;
  let stack: Stack | undefined;
  let root: string;
  let notes: Awaited<ReturnType<typeof notifySink>>;

  before(async () => {
    root = tmpdir('trust-keyless');
    notes = await notifySink();
  });
  after(async () => {
    await stack?.dispose();
    await gh?.close();
    await notes?.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('a release attested by the pinned workflow installs and shows the identity; one attested by another workflow is refused', async () => {
    const sigstore = testSigstore(root);
    const rootFile = path.join(root, 'trusted_root.json');
    fs.writeFileSync(rootFile, JSON.stringify(sigstore.root()));
    gh = await FakeGitHub.start({ owner: 'acme', repo: 'hello' });
    stack = await Stack.create({
      label: 'e2e-trust-keyless',
      env: { MOLT_GITHUB: 'acme/hello', MOLT_GITHUB_API: gh.baseUrl, MOLT_TRUST_IDENTITY: PINNED, MOLT_TRUST_ROOT: rootFile, MOLT_NOTIFY_URL: notes.url },
    });
    /** hello VERSION as the release asset (GitHub fills its digest field), attested by `by`. */
    const release = (version: string, by: string) => {
      const name = `hello-${version}-linux-${arch}.tar.gz`;
      const data = fs.readFileSync(packHello(version, path.join(root, version)));
      const sha256 = createHash('sha256').update(data).digest('hex');
      gh!.addAttestation(`sha256:${sha256}`, sigstore.bundle([{ name, sha256 }], by));
      gh!.addRelease({ tag: `v${version}`, assets: [{ name, data }] });
    };

    release('1.0.0', workflow('1.0.0'));
    stack.start();
    await stack.waitAppVersion('1.0.0', 60_000);
    const s = await stack.waitStatus('1.0.0 committed', (x) => x.phase === 'idle' && x.history.some((h) => h.event === 'commit' && h.version === '1.0.0'));
    assert.equal(s.verifiedBy, workflow('1.0.0'), '/api/status names the workflow identity');
    const st = await stack.cli(['status']);
    assert.ok(st.stdout.includes(workflow('1.0.0')), `molt status shows the identity:\n${st.stdout}`);
    const running = { version: '1.0.0', pid: appPid(stack), by: workflow('1.0.0') };

    release('2.0.0', workflow('2.0.0', 'other.yml'));
    await assertRefused(stack, notes, '2.0.0', `identity ${workflow('2.0.0', 'other.yml')} not trusted`, running);
    assert.equal(await metric(stack, 'molt_signature_failures_total'), 1);
    assert.ok(gh.log.some((e) => /\/attestations\/sha256(:|%3A)[0-9a-f]{64}/i.test(e.path)), 'the attestations API was asked');
  });
});

describe('keyless through TUF: MOLT_TRUST_IDENTITY without MOLT_TRUST_ROOT (a loopback TUF repository as MOLT_TRUST_TUF_URL)', { timeout: 240_000 }, () => {
  const arch = os.arch() === 'x64' ? 'amd64' : os.arch();
  const PINNED = 'https://github.com/acme/hello/.github/workflows/release.yml@refs/tags/v*';
  const workflow = (v: string) => `https://github.com/acme/hello/.github/workflows/release.yml@refs/tags/v${v}`;
  let gh: FakeGitHub | undefined;
  let stack: Stack | undefined;
  let tuf: TestTufRepo | undefined;
  let root: string;

  before(() => {
    root = tmpdir('trust-tuf');
  });
  after(async () => {
    await stack?.dispose();
    await gh?.close();
    await tuf?.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('with the repository down and nothing cached, an attested release waits (not blocked); once TUF answers it installs, and the root is cached under MOLT_HOME', async () => {
    const sigstore = testSigstore(root);
    tuf = new TestTufRepo(Buffer.from(JSON.stringify(sigstore.root())));
    const tufRoot = path.join(root, 'tuf-root.json');
    fs.writeFileSync(tufRoot, tuf.rootJson());
    const port = await freePort();
    const tufUrl = `http://127.0.0.1:${port}`;
    gh = await FakeGitHub.start({ owner: 'acme', repo: 'hello' });
    stack = await Stack.create({
      label: 'e2e-trust-tuf',
      env: { MOLT_GITHUB: 'acme/hello', MOLT_GITHUB_API: gh.baseUrl, MOLT_TRUST_IDENTITY: PINNED, MOLT_TRUST_TUF_URL: tufUrl, MOLT_TRUST_TUF_ROOT: tufRoot },
    });
    const name = `hello-1.0.0-linux-${arch}.tar.gz`;
    const data = fs.readFileSync(packHello('1.0.0', path.join(root, '1.0.0')));
    const sha256 = createHash('sha256').update(data).digest('hex');
    gh.addAttestation(`sha256:${sha256}`, sigstore.bundle([{ name, sha256 }], workflow('1.0.0')));
    gh.addRelease({ tag: 'v1.0.0', assets: [{ name, data }] });

    stack.start();
    await stack.waitStatus('the keyless release waiting for a trusted root', () => stack!.logs().includes('no signature (no Sigstore trusted root: TUF repository unreachable)'), 60_000);
    let s = await stack.waitStatus('status names the TUF repository', (x) => x.trustRoot !== undefined);
    assert.equal(s.trustRoot!.mirror, tufUrl);
    assert.equal(s.trustRoot!.verifiedAt, undefined, 'no root yet');
    assert.match(s.trustRoot!.lastError ?? '', /ECONNREFUSED/);
    assert.equal(s.current, undefined, 'nothing installed');
    assert.deepEqual(s.blocked, [], 'not blocked: the fault is the missing root, not the release');
    assert.ok(stack.logs().includes('no Sigstore trusted root: TUF repository unreachable; keyless signatures cannot be verified until it answers'), 'one line says why');
    assert.ok(!gh.log.some((e) => e.path.includes('/releases/assets/')), 'the release was not downloaded without a root to check it');

    await tuf.serve(port);
    await stack.waitAppVersion('1.0.0', 90_000);
    s = await stack.waitStatus('1.0.0 committed', (x) => x.phase === 'idle' && x.history.some((h) => h.event === 'commit' && h.version === '1.0.0'));
    assert.equal(s.verifiedBy, workflow('1.0.0'), 'verified by the pinned workflow through the root TUF vouched for');
    assert.ok(s.trustRoot!.verifiedAt && s.trustRoot!.lastError === undefined, JSON.stringify(s.trustRoot));
    assert.ok(s.blocked.length === 0 && !s.history.some((h) => h.event === 'block'), 'never blocked');
    const cache = path.join(stack.home, 'trust', 'tuf', encodeURIComponent(`127.0.0.1:${port}`));
    for (const f of ['root.json', 'timestamp.json', 'snapshot.json', 'targets.json', 'last-good.json']) assert.ok(fs.existsSync(path.join(cache, f)), `${f} cached under MOLT_HOME`);
    assert.ok(stack.logs().includes('Sigstore trusted root fetched through TUF'));
    const st = await stack.cli(['status']);
    assert.match(st.stdout, /trust root\s+http:\/\/127\.0\.0\.1:\d+ \(TUF\), verified /, st.stdout);
    const m = await stack.api('GET', '/metrics');
    assert.match(m.text, /^molt_trust_root_age_seconds \d+$/m);
  });
});

describe('signed releases from an OCI registry (Debian docker-registry: .sig tag, referrers tag schema)', { timeout: 300_000 }, () => {
  const PINNED = 'https://github.com/acme/hello/.github/workflows/release.yml@refs/tags/v*';
  const WORKFLOW_7 = 'https://github.com/acme/hello/.github/workflows/release.yml@refs/tags/v7.0.0';
  let reg: Registry | undefined;
  let stack: Stack | undefined;
  let root: string;
  let notes: Awaited<ReturnType<typeof notifySink>>;

  before(async () => {
    root = tmpdir('trust-oci');
    notes = await notifySink();
    reg = await startRegistry();
  });
  after(async () => {
    await stack?.dispose();
    await reg?.stop();
    await notes?.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('publish --sign installs and shows the key; unsigned, retagged, other-reference, other-digest and huge signatures are refused; a keyless bundle referrer and a minisign referrer install', async () => {
    const keys = makeKeys(root);
    const pem = path.join(keys.dir, 'p256.pem');
    execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', pem]);
    const trustDir = path.join(root, 'trusted');
    fs.mkdirSync(trustDir);
    execFileSync('openssl', ['pkey', '-in', pem, '-pubout', '-out', path.join(trustDir, 'p256.pub')]);
    fs.copyFileSync(keys.trustedPub, path.join(trustDir, 'minisign.pub'));
    const pemId = pemKeyId(createPublicKey(fs.readFileSync(path.join(trustDir, 'p256.pub'))));
    const sigstore = testSigstore(root);
    const rootFile = path.join(root, 'trusted_root.json');
    fs.writeFileSync(rootFile, JSON.stringify(sigstore.root()));
    const host = reg!.host;
    stack = await Stack.create({
      label: 'e2e-trust-oci',
      env: { MOLT_OCI: `${host}/hello`, MOLT_TRUST_KEYS: trustDir, MOLT_TRUST_IDENTITY: PINNED, MOLT_TRUST_ROOT: rootFile, MOLT_NOTIFY_URL: notes.url },
    });
    const client = new RegistryClient(parseReference(`${host}/hello`), { credentials: null, push: true });
    /** hello VERSION published as `<host>/hello:<tag>`; returns the manifest digest. */
    const publishAs = async (tag: string, version: string, ...extra: string[]): Promise<string> => {
      const r = await stack!.cli(['publish', `${host}/hello:${tag}`, packHello(version, path.join(root, version)), '--version', version, ...extra]);
      assert.equal(r.code, 0, `molt publish ${version}: ${r.stderr}`);
      return r.stdout.trim();
    };
    const publish = (version: string, ...extra: string[]) => publishAs(version, version, ...extra);
    // Pushed under a tag molt does not follow, signed there by digest, then tagged: no poll sees it unsigned.
    const unseen = (version: string) => publishAs(`pre-${version}`, version);
    const reveal = async (version: string, digest: string) => client.putManifest(version, (await client.getManifest(digest)).bytes, MT.ociManifest);

    const d1 = await publish('1.0.0', '--sign', pem);
    stack.start();
    await stack.waitAppVersion('1.0.0', 60_000);
    const s = await stack.waitStatus('1.0.0 committed', (x) => x.phase === 'idle' && x.history.some((h) => h.event === 'commit' && h.version === '1.0.0'));
    assert.equal(s.verifiedBy, pemId, '/api/status names the PEM key');
    const st = await stack.cli(['status']);
    assert.match(st.stdout, new RegExp(`signed by\\s+${pemId}`), `molt status shows the key:\n${st.stdout}`);
    const running = { version: '1.0.0', pid: appPid(stack), by: pemId };

    await publish('2.0.0');
    await assertRefused(stack, notes, '2.0.0', 'no signature', running);

    // The signed 1.0.0 manifest, tagged 3.0.0: its signature holds, its version annotation says 1.0.0.
    await client.putManifest('3.0.0', (await client.getManifest(d1)).bytes, MT.ociManifest);
    await assertRefused(stack, notes, '3.0.0', `signed for ${host}/hello:1.0.0, served as ${host}/hello:3.0.0`, running);

    // A trusted key's signature made for another repository name.
    const d4 = await unseen('4.0.0');
    const elsewhere = new RegistryClient({ ...parseReference(`${host}/hello`), registry: 'mirror.example:5000' }, { credentials: null, push: true });
    const signer = parseSigningKey(fs.readFileSync(pem, 'utf8'));
    assert.ok(typeof signer !== 'string' && signer.kind === 'pem');
    await pushCosignSignature(elsewhere, d4, signer);
    await reveal('4.0.0', d4);
    await assertRefused(stack, notes, '4.0.0', `signed for mirror.example:5000/hello:4.0.0, served as ${host}/hello:4.0.0`, running);

    // 1.0.0's .sig manifest copied to 5.0.0's tag: the payload names 1.0.0's digest.
    const d5 = await unseen('5.0.0');
    await client.putManifest(cosignSignatureTag(d5), (await client.getManifest(cosignSignatureTag(d1))).bytes, MT.ociManifest);
    await reveal('5.0.0', d5);
    await assertRefused(stack, notes, '5.0.0', 'bad signature', running);

    // A 2 MiB signature manifest: read up to the 1 MiB bound, then refused.
    const d6 = await unseen('6.0.0');
    const junk = Buffer.from('junk');
    await client.uploadBlob(sha256Hex(junk), junk.length, () => Readable.from([junk]));
    const huge = { schemaVersion: 2, mediaType: MT.ociManifest, config: EMPTY_CONFIG, layers: [{ mediaType: SIG.simpleSigning, digest: sha256Hex(junk), size: junk.length, annotations: { [SIG.cosignAnnotation]: 'A'.repeat(2 << 20) } }] };
    await client.putManifest(cosignSignatureTag(d6), Buffer.from(JSON.stringify(huge)), MT.ociManifest);
    await reveal('6.0.0', d6);
    await assertRefused(stack, notes, '6.0.0', 'bad signature', running);
    assert.match(stack.logs(), /version=6\.0\.0.*more than the 1048576 allowed/, 'the detail says it was too big');

    // Keyless: a Sigstore bundle attached as a referrer (the tag schema, as this registry has no API).
    const d7 = await unseen('7.0.0');
    const size7 = (await client.getManifest(d7)).bytes.length;
    const bundle = sigstore.bundle([{ name: `${host}/hello`, sha256: d7.slice('sha256:'.length) }], WORKFLOW_7);
    await attachReferrer(client, { mediaType: MT.ociManifest, digest: d7, size: size7 }, { artifactType: SIG.bundle, blob: Buffer.from(bundle), mediaType: SIG.bundle, title: 'release.sigstore.json' });
    await reveal('7.0.0', d7);
    await stack.waitAppVersion('7.0.0', 60_000);
    let s7 = await stack.waitStatus('7.0.0 committed', (x) => x.phase === 'idle' && x.history.some((h) => h.event === 'commit' && h.version === '7.0.0'));
    assert.equal(s7.verifiedBy, WORKFLOW_7, 'the workflow identity verified 7.0.0');

    // A minisign key: publish --sign attaches the .minisig as a referrer.
    await publish('8.0.0', '--sign', keys.trustedKey);
    await stack.waitAppVersion('8.0.0', 60_000);
    s7 = await stack.waitStatus('8.0.0 committed', (x) => x.phase === 'idle' && x.history.some((h) => h.event === 'commit' && h.version === '8.0.0'));
    assert.equal(s7.verifiedBy, keys.trustedId);
    assert.equal(await metric(stack, 'molt_signature_failures_total'), 5, 'each refusal counted');
  });
});
