// TUF's attack list against molt's release channel (issue 12), each as one
// test under molt init as PID 1 with the example app and updater services and
// a pinned minisign key, the running version untouched every time:
// - arbitrary software: a release with a correct but unsigned SHA256SUMS;
// - rollback: the newer release withdrawn (only older signed ones served), and
//   a signed old release renamed to a higher version;
// - endless data: a signature that never ends (/dev/zero), an asset body that
//   runs past its declared size;
// - mix-and-match: another platform's signed asset and signature, served under
//   this platform's name in the same release;
// - slow retrieval: a storage host that stalls mid-body (MOLT_HTTP_TIMEOUT), or
//   trickles bytes just inside that time-out (the minimum average rate);
// - indefinite freeze: an API that answers 304 with the same old releases
//   forever, then not at all: molt reports the age of its last answer, of the
//   last new answer and of the newest release, and warns once it is stale.
// (Unsigned, stranger-signed and altered releases: updater-trust.test.ts.)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { tmpdir, waitFor } from '../helpers/molt.js';
import { FakeGitHub } from '../helpers/fake-github.js';
import { packHello, Stack } from './updater-stack.js';
import { appPid, assertRefused, makeKeys, metric, minisign, notifySink, type Keys } from './trust-helpers.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('attacks on a local release directory (MOLT_DIR + MOLT_TRUST_KEYS)', { timeout: 300_000 }, () => {
  let stack: Stack;
  let root: string;
  let notes: Awaited<ReturnType<typeof notifySink>>;
  let keys: Keys;
  let releases: string;
  let running: { version: string; pid: string; by: string };

  /** hello VERSION packed under root/build/VERSION/, signed by the trusted key unless `signed` is false. */
  const pack = (version: string, signed = true): string => {
    const out = path.join(root, 'build', version);
    const tarball = packHello(version, out);
    if (signed) minisign(out, '-S', '-s', keys.trustedKey, '-m', path.basename(tarball));
    return tarball;
  };
  /** Into MOLT_DIR as `as`, its signature first (when it has one), the tarball renamed in. */
  const publish = (tarball: string, as = path.basename(tarball)): void => {
    if (fs.existsSync(`${tarball}.minisig`)) fs.copyFileSync(`${tarball}.minisig`, path.join(releases, `${as}.minisig`));
    fs.copyFileSync(tarball, path.join(releases, `.${as}.tmp`));
    fs.renameSync(path.join(releases, `.${as}.tmp`), path.join(releases, as));
  };

  before(async () => {
    root = tmpdir('attacks-dir');
    keys = makeKeys(root);
    releases = path.join(root, 'releases');
    fs.mkdirSync(releases);
    notes = await notifySink();
    stack = await Stack.create({ label: 'e2e-attacks-dir', env: { MOLT_DIR: releases, MOLT_TRUST_KEYS: keys.trustedPub, MOLT_NOTIFY_URL: notes.url } });
    publish(pack('1.0.0'));
    stack.start();
    await stack.waitAppVersion('1.0.0', 60_000);
    await stack.waitStatus('1.0.0 committed', (x) => x.phase === 'idle' && x.history.some((h) => h.event === 'commit' && h.version === '1.0.0'));
    running = { version: '1.0.0', pid: appPid(stack), by: keys.trustedId };
  });
  after(async () => {
    await stack?.dispose();
    await notes?.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('arbitrary software: a release whose SHA256SUMS lists it correctly, but which no trusted key signed, is refused', async () => {
    // Whoever can write the channel can write its checksums too: they prove the bytes arrived, not who made them.
    const evil = pack('2.0.0', false);
    fs.writeFileSync(path.join(releases, 'SHA256SUMS'), `${sha256(fs.readFileSync(evil))}  2.0.0.tar.gz\n`);
    publish(evil);
    await assertRefused(stack, notes, '2.0.0', 'no signature', running);
  });

  test('rollback: older signed releases alone never move the running version back; a signed old one renamed higher is refused', async () => {
    const v3 = pack('3.0.0');
    publish(v3);
    await stack.waitAppVersion('3.0.0', 60_000);
    let s = await stack.waitStatus('3.0.0 committed', (x) => x.phase === 'idle' && x.history.some((h) => h.event === 'commit' && h.version === '3.0.0'));
    running = { version: '3.0.0', pid: appPid(stack), by: keys.trustedId };
    // The channel now serves only 1.0.0 (validly signed) and the refused 2.0.0.
    for (const f of ['3.0.0.tar.gz', '3.0.0.tar.gz.minisig']) fs.rmSync(path.join(releases, f));
    const at = Date.parse(s.lastCheck!.at);
    s = await stack.waitStatus('three polls without 3.0.0', (x) => Date.parse(x.lastCheck?.at ?? '') > at + 2500 && !x.releases.some((r) => r.version === '3.0.0'), 20_000);
    assert.equal(s.current, '3.0.0', 'still running 3.0.0');
    assert.equal(s.available, undefined, 'an older release is never a candidate');
    assert.ok(!s.history.some((h) => h.event === 'update' && h.version === '1.0.0' && Date.parse(h.at) > at), 'no update back to 1.0.0');
    assert.equal(await stack.appVersion(), '3.0.0');
    assert.equal(appPid(stack), running.pid);

    // 1.0.0's signed tarball and signature, served as 4.0.0.
    publish(path.join(root, 'build', '1.0.0', '1.0.0.tar.gz'), '4.0.0.tar.gz');
    await assertRefused(stack, notes, '4.0.0', 'signed for 1.0.0.tar.gz, served as 4.0.0.tar.gz (version 4.0.0)', running);
  });

  test('endless data: a signature file that never ends (/dev/zero) is refused after a bounded read', async () => {
    const v5 = pack('5.0.0', false);
    fs.symlinkSync('/dev/zero', path.join(releases, '5.0.0.tar.gz.minisig'));
    publish(v5);
    await assertRefused(stack, notes, '5.0.0', 'bad signature', running);
    const line = stack.logs().split('\n').find((l) => l.includes('release refused and blocked') && l.includes('version=5.0.0'))!;
    assert.match(line, /is larger than 1048576 bytes/, `the log says why: ${line}`);
    assert.equal(await metric(stack, 'molt_signature_failures_total'), 3, 'each refusal counted');
  });
});

describe('attacks on GitHub Releases (loopback fake + MOLT_TRUST_KEYS)', { timeout: 300_000 }, () => {
  const arch = os.arch() === 'x64' ? 'amd64' : os.arch();
  const otherArch = arch === 'amd64' ? 'arm64' : 'amd64';
  let gh: FakeGitHub;
  let stack: Stack;
  let root: string;
  let notes: Awaited<ReturnType<typeof notifySink>>;
  let keys: Keys;
  let running: { version: string; pid: string; by: string };

  /** hello VERSION as the asset `hello-VERSION-linux-ARCH.tar.gz`, with its .minisig by the trusted key. */
  const asset = (version: string, forArch = arch, behaviour: 'ok' | 'crash' = 'ok'): { name: string; data: Buffer; sig: Buffer } => {
    const out = path.join(root, `${version}-${forArch}`);
    const name = `hello-${version}-linux-${forArch}.tar.gz`;
    fs.renameSync(packHello(version, out, behaviour), path.join(out, name));
    minisign(out, '-S', '-s', keys.trustedKey, '-m', name);
    return { name, data: fs.readFileSync(path.join(out, name)), sig: fs.readFileSync(path.join(out, `${name}.minisig`)) };
  };
  const release = (version: string, a: { name: string; data: Buffer; sig: Buffer; served?: Buffer }) =>
    gh.addRelease({ tag: `v${version}`, assets: [{ name: a.name, data: a.data, ...(a.served ? { served: a.served } : {}) }, { name: `${a.name}.minisig`, data: a.sig, contentType: 'text/plain' }] });
  const failedAction = (version: string, re: RegExp) =>
    stack.waitStatus(`an update of ${version} failing with ${re}`, (x) => x.actions.some((a) => a.kind === 'update' && a.version === version && a.state === 'failed' && re.test(a.message ?? '')), 30_000);
  const assertUntouched = async (version: string) => {
    const s = (await stack.status())!;
    assert.equal(s.current, running.version, 'the running version stays current');
    assert.equal(await stack.appVersion(), running.version, 'and answers');
    assert.equal(appPid(stack), running.pid, 'the app was not restarted');
    assert.ok(!stack.installedVersions().includes(version), `${version} was not installed`);
  };

  before(async () => {
    root = tmpdir('attacks-gh');
    keys = makeKeys(root);
    notes = await notifySink();
    // Anonymous, with room for every poll of the whole describe (GitHub's own 60 an hour would run out).
    gh = await FakeGitHub.start({ owner: 'acme', repo: 'hello', anonLimit: 100_000 });
    stack = await Stack.create({
      label: 'e2e-attacks-gh',
      env: { MOLT_GITHUB: 'acme/hello', MOLT_GITHUB_API: gh.baseUrl, MOLT_TRUST_KEYS: keys.trustedPub, MOLT_NOTIFY_URL: notes.url, MOLT_HTTP_TIMEOUT: '1s', MOLT_STALE_AFTER: '4s' },
    });
    release('1.0.0', asset('1.0.0'));
    stack.start();
    await stack.waitAppVersion('1.0.0', 60_000);
    await stack.waitStatus('1.0.0 committed', (x) => x.phase === 'idle' && x.history.some((h) => h.event === 'commit' && h.version === '1.0.0'));
    running = { version: '1.0.0', pid: appPid(stack), by: keys.trustedId };
  });
  after(async () => {
    if (gh) {
      gh.hang = false;
      gh.trickleStorage = undefined;
    }
    await stack?.dispose();
    await gh?.close();
    await notes?.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test(`mix-and-match: the ${otherArch} asset and its valid signature, served under the ${arch} name of the same release, are refused`, async () => {
    const other = asset('2.0.0', otherArch, 'crash');
    const mine = `hello-2.0.0-linux-${arch}.tar.gz`;
    release('2.0.0', { ...other, name: mine });
    await assertRefused(stack, notes, '2.0.0', `signed for ${other.name}, served as ${mine} (version 2.0.0)`, running);
  });

  test('endless data: an asset body running past its declared size is cut off at that size and not installed', async () => {
    const a = asset('3.0.0');
    // The API declares a.data's size and digest; storage keeps sending 8 MiB more.
    release('3.0.0', { ...a, served: Buffer.concat([a.data, Buffer.alloc(8 << 20, 0x61)]) });
    await failedAction('3.0.0', /longer than the expected \d+ bytes/);
    await assertUntouched('3.0.0');
    assert.deepEqual(stack.stagingEntries(), [], 'no staging debris');
  });

  test('slow retrieval: a storage host that stalls mid-body, or trickles bytes inside the idle time-out, is cut off; the release installs once it serves again', async () => {
    gh.stallStorageAfter = 1000;
    release('4.0.0', asset('4.0.0'));
    await failedAction('4.0.0', /stalled: no data for 1000ms/);
    await assertUntouched('4.0.0');
    // 10 bytes each 400 ms never leaves the body silent for MOLT_HTTP_TIMEOUT (1 s), but falls far below the rate bound.
    gh.stallStorageAfter = undefined;
    gh.trickleStorage = { bytes: 10, everyMs: 400 };
    await failedAction('4.0.0', /too slow: \d+ of \d+ bytes in \d+ms \(under 32768 bytes\/s\)/);
    await assertUntouched('4.0.0');
    gh.trickleStorage = undefined;
    await stack.waitAppVersion('4.0.0', 60_000);
    const s = await stack.waitStatus('4.0.0 committed', (x) => x.phase === 'idle' && x.history.some((h) => h.event === 'commit' && h.version === '4.0.0'));
    assert.equal(s.verifiedBy, keys.trustedId);
    running = { version: '4.0.0', pid: appPid(stack), by: keys.trustedId };
  });

  test('indefinite freeze: 304 forever shows as an old last change and an old newest release; silence past MOLT_STALE_AFTER warns once', async () => {
    const newest = gh.log.length;
    // The fake dates its releases from 2025-01-01: the newest one is long published.
    const published = (await stack.status())!.freshness!.newestPublishedAt!;
    let s = await stack.waitStatus('three more answers, each "not modified"', (x) => x.lastCheck?.notModified === true && Date.parse(x.freshness?.lastSuccessAt ?? '') > Date.now() - 2000 && gh.log.slice(newest).filter((e) => e.status === 304).length >= 3, 20_000);
    const f = s.freshness!;
    assert.equal(f.stale, false, 'the source answers');
    assert.equal(f.newestVersion, '4.0.0');
    assert.equal(f.newestPublishedAt, published);
    assert.ok(Date.now() - Date.parse(published) > 300 * 86400_000, `the newest release is shown as old: ${published}`);
    assert.ok(Date.parse(f.lastChangeAt!) < Date.parse(f.lastSuccessAt!) - 2000, `answered at ${f.lastSuccessAt}, but nothing new since ${f.lastChangeAt}`);
    assert.equal(await metric(stack, 'molt_newest_release_published_timestamp_seconds'), Date.parse(published) / 1000);
    assert.equal(await metric(stack, 'molt_source_stale'), 0);
    const st = await stack.cli(['status']);
    assert.match(st.stdout, /source age\s+answered (now|\ds ago); last new answer \d+s ago; newest release 4\.0\.0 published \d+d( \d+h)? ago/, st.stdout);

    // Then the API accepts connections and never answers.
    const logFrom = stack.logs().length;
    gh.hang = true;
    s = await stack.waitStatus('the source reported stale', (x) => x.freshness?.stale === true, 60_000);
    assert.ok(s.freshness!.lastSuccessAgeSeconds >= 4, 'past MOLT_STALE_AFTER');
    assert.equal(s.freshness!.lastChangeAt, f.lastChangeAt);
    await waitFor('the warning line', () => stack.logs().slice(logFrom).includes('release source stale'), 10_000);
    assert.equal(await metric(stack, 'molt_source_stale'), 1);
    assert.ok((await metric(stack, 'molt_source_last_success_age_seconds'))! >= 4);
    const st2 = await stack.cli(['status']);
    assert.match(st2.stdout, /source age\s+STALE \(no answer for over 4s\): answered \d+s ago/, st2.stdout);
    await assertUntouched('none');
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(stack.logs().slice(logFrom).split('\n').filter((l) => l.includes('release source stale')).length, 1, 'one warning per stale spell, not one per tick');

    gh.hang = false;
    s = await stack.waitStatus('the source answering again', (x) => x.freshness?.stale === false, 60_000);
    await waitFor('the line saying so', () => stack.logs().slice(logFrom).includes('release source answering again'), 10_000);
    assert.equal(s.current, '4.0.0');
  });
});
