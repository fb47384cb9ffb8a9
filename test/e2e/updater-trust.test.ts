// Signed releases end to end (issue 12): molt init as PID 1 of a PID namespace
// runs the example app and updater services with MOLT_TRUST_KEYS set to a key
// Debian's minisign made. A release signed by it installs and `molt status`
// and /api/status name the key; an unsigned release, one signed by a stranger's
// key, one whose bytes changed after signing and a signed old release renamed
// to a higher version are each refused and blocked with the reason,
// one log line, a notification and molt_signature_failures_total, while the
// running version keeps running (same pid). The same through GitHub Releases
// (the loopback fake), and a malformed MOLT_TRUST_KEYS stops the updater with
// exit 2 and one line naming it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cli, tmpdir } from '../helpers/molt.js';
import { FakeGitHub } from '../helpers/fake-github.js';
import { testSigstore } from '../helpers/sigstore.js';
import { packHello, Stack } from './updater-stack.js';
import { appPid, assertRefused, makeKeys, metric, minisign, notifySink, type Keys } from './trust-helpers.js';

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
  const pack = (version: string, key: string | null): string => {
    const out = path.join(build, version);
    const tarball = packHello(version, out);
    if (key) minisign(out, '-S', '-s', key, '-m', path.basename(tarball));
    return tarball;
  };
  /** Into MOLT_DIR, signature first, so that a poll never sees the tarball without it. */
  const publish = (tarball: string, as = path.basename(tarball)): void => {
    if (fs.existsSync(`${tarball}.minisig`)) fs.copyFileSync(`${tarball}.minisig`, path.join(releases, `${as}.minisig`));
    fs.copyFileSync(tarball, path.join(releases, `.${as}.tmp`));
    fs.renameSync(path.join(releases, `.${as}.tmp`), path.join(releases, as));
  };

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
