// Versions kept from before a trust setting (issue 12: "no release that they
// did not sign can ever run"). Under molt init with the example app and MOLT_DIR:
// 1.0.0 and 1.1.0 are installed unsigned with no trust setting; the updater is
// restarted with MOLT_TRUST_KEYS. The running 1.1.0 keeps running, with one
// warning line and `molt status` showing it unverified; `molt update 1.0.0` (kept
// in versions/, never downloaded again) is refused 'no signature' with the line
// saying why; a signed 1.2.0 that crashes is rolled back to 1.1.0 (the automatic
// rollback returns to the version that ran); a signed 1.3.0 installs, and
// `molt rollback` to the unverified 1.1.0 is refused while 1.3.0 runs on.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tmpdir } from '../helpers/molt.js';
import { Stack } from './updater-stack.js';
import { appPid, makeKeys, packSigned, publishDir, type Keys } from './trust-helpers.js';
import type { UpdaterStatus } from '../../src/api/types.js';

describe('versions kept from before MOLT_TRUST_KEYS', { timeout: 300_000 }, () => {
  let stack: Stack | undefined;
  let root: string;
  let keys: Keys;
  let releases: string;
  let build: string;

  before(() => {
    root = tmpdir('trust-kept');
    keys = makeKeys(root);
    releases = path.join(root, 'releases');
    build = path.join(root, 'build');
    fs.mkdirSync(releases);
  });
  after(async () => {
    await stack?.dispose();
    fs.rmSync(root, { recursive: true, force: true });
  });

  const committed = (v: string) => (x: UpdaterStatus) => x.phase === 'idle' && x.current === v && x.history.some((h) => h.event === 'commit' && h.version === v);

  test('a kept unsigned version is not started again; the automatic rollback returns to the running one', async () => {
    stack = await Stack.create({ label: 'e2e-trust-kept', env: { MOLT_DIR: releases } });
    publishDir(releases, packSigned(build, '1.0.0', null));
    stack.start();
    await stack.waitAppVersion('1.0.0', 60_000);
    await stack.waitStatus('1.0.0 committed', committed('1.0.0'), 60_000);
    publishDir(releases, packSigned(build, '1.1.0', null));
    await stack.waitAppVersion('1.1.0', 60_000);
    let s = await stack.waitStatus('1.1.0 committed', committed('1.1.0'), 60_000);
    assert.equal(s.previous, '1.0.0');
    assert.equal(s.verifiedBy, undefined, 'installed without a trust setting: nothing verified it');

    // The same MOLT_HOME, now with a trusted key.
    await stack.stop();
    stack.start({ MOLT_TRUST_KEYS: keys.trustedPub });
    await stack.waitAppVersion('1.1.0', 60_000);
    s = await stack.waitStatus('the updater polled with trust', (x) => x.phase === 'idle' && x.lastCheck?.ok === true && x.current === '1.1.0');
    assert.equal(s.unverified, true, '/api/status marks the running version unverified');
    const st = await stack.cli(['status']);
    assert.match(st.stdout, /signed by\s+UNVERIFIED \(installed before signatures were required\)/, `molt status:\n${st.stdout}`);
    const warned = stack.logs().split('\n').filter((l) => l.includes('the running version 1.1.0 is not verified (no signature)'));
    assert.equal(warned.length, 1, `one warning line at start:\n${stack.logs()}`);
    const pid = appPid(stack);

    // 1.0.0 is kept in versions/: no download would check it.
    const up = await stack.cli(['update', '1.0.0']);
    assert.notEqual(up.code, 0, `molt update 1.0.0 is refused:\n${up.stdout}${up.stderr}`);
    assert.match(up.stdout + up.stderr, /no signature: 1\.0\.0 was installed before signatures were required; publish it signed or remove it/);
    s = await stack.waitStatus('1.0.0 blocked', (x) => x.phase === 'idle' && x.blocked.some((b) => b.version === '1.0.0'));
    assert.equal(s.blocked.find((b) => b.version === '1.0.0')!.reason, 'no signature');
    assert.ok(s.history.some((h) => h.event === 'block' && h.version === '1.0.0' && h.cause === 'signature'), 'counted as a signature failure');
    assert.equal(s.current, '1.1.0');
    assert.equal(await stack.appVersion(), '1.1.0', '1.1.0 keeps running');
    assert.equal(appPid(stack), pid, 'and was not restarted');
    assert.equal(s.history.filter((h) => h.event === 'update' && h.version === '1.0.0').length, 1, 'no update to 1.0.0 was started, only its first install');

    // A signed release that crashes: its trial fails and the app goes back to 1.1.0, the version that ran.
    publishDir(releases, packSigned(build, '1.2.0', keys.trustedKey, 'crash'));
    s = await stack.waitStatus('1.2.0 rolled back and blocked', (x) => x.phase === 'idle' && x.blocked.some((b) => b.version === '1.2.0'), 90_000);
    assert.equal(s.current, '1.1.0', 'the automatic rollback returned to 1.1.0');
    assert.ok(s.history.some((h) => h.event === 'rollback' && h.version === '1.1.0' && h.from === '1.2.0'));
    assert.equal(await stack.waitAppVersion('1.1.0', 30_000), '1.1.0', 'the app answers again');

    // A signed, good release installs.
    publishDir(releases, packSigned(build, '1.3.0', keys.trustedKey));
    await stack.waitAppVersion('1.3.0', 60_000);
    s = await stack.waitStatus('1.3.0 committed', committed('1.3.0'), 60_000);
    assert.equal(s.verifiedBy, keys.trustedId);
    assert.equal(s.unverified, undefined);
    assert.equal(s.previous, '1.1.0');
    const pid13 = appPid(stack);

    // molt rollback would start the unverified 1.1.0: refused, 1.3.0 runs on, nothing blocked.
    const rb = await stack.cli(['rollback']);
    assert.notEqual(rb.code, 0, `molt rollback is refused:\n${rb.stdout}${rb.stderr}`);
    assert.match(rb.stdout + rb.stderr, /cannot roll back to 1\.1\.0: no signature: 1\.1\.0 was installed before signatures were required; publish it signed or remove it; 1\.3\.0 keeps running/);
    s = await stack.waitStatus('idle after the refused rollback', (x) => x.phase === 'idle');
    assert.equal(s.current, '1.3.0');
    assert.equal(s.previous, '1.1.0');
    assert.ok(!s.blocked.some((b) => b.version === '1.3.0'), '1.3.0 is not blocked');
    assert.equal(await stack.appVersion(), '1.3.0');
    assert.equal(appPid(stack), pid13, '1.3.0 was not restarted');

    // 1.4.0 makes 1.3.0 previous: 1.1.0 is kept, unverified, and neither current nor previous.
    publishDir(releases, packSigned(build, '1.4.0', keys.trustedKey));
    s = await stack.waitStatus('1.4.0 committed', committed('1.4.0'), 90_000);
    assert.equal(s.previous, '1.3.0');
    // Its author publishes 1.1.0 signed: molt update 1.1.0 downloads it again, checks it, and runs the checked copy.
    publishDir(releases, packSigned(build, '1.1.0', keys.trustedKey));
    const again = await stack.cli(['update', '1.1.0']);
    assert.equal(again.code, 0, `molt update 1.1.0:\n${again.stdout}${again.stderr}`);
    const commits = (x: UpdaterStatus) => x.history.filter((h) => h.event === 'commit' && h.version === '1.1.0').length;
    s = await stack.waitStatus('1.1.0 committed again', (x) => x.phase === 'idle' && commits(x) === 2, 90_000);
    assert.ok(!s.blocked.some((b) => b.version === '1.1.0'), '1.1.0 is not blocked');
    const logs = stack.logs();
    assert.match(logs, /downloading a kept version again to check its signature version=1\.1\.0 verified_by=none/);
    assert.match(logs, new RegExp(`fetched version=1\\.1\\.0 .*signed_by=${keys.trustedId}`), 'the signature was checked');
    assert.match(logs, /replacing a kept version version=1\.1\.0/);
  });
});

