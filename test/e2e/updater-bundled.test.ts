// MOLT_BUNDLED end to end, molt init as PID 1 of a PID namespace over the example
// services, the source a real OCI registry (Debian's docker-registry) behind a
// loopback proxy that can drop every connection (the network is down):
// - first start offline: the bundled release is installed before the first poll and answers;
// - the network comes back: a newer release from the source is followed;
// - restart (a newer image) with a newer bundled directory: it replaces the older current;
// - restart with an older bundled release: the newer current stays (never a downgrade);
// - a missing and a corrupt bundled release: one line each, the source is used;
// - a bundled release that crashes goes through the trial like any: rolled back, blocked, not tried again.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { tmpdir } from '../helpers/molt.js';
import { passThrough, startRegistry, startServer, type Registry, type TestServer } from '../helpers/registry.js';
import { packHello, Stack } from './updater-stack.js';
import { BUNDLED_BY } from '../../src/update/trust/stored.js';

const FALLBACK = /bundled release not (usable|installed), following the source/g;

describe('updater end to end: a release bundled in the image (MOLT_BUNDLED)', { timeout: 300_000 }, () => {
  let reg: Registry;
  let proxy: TestServer;
  let online = false;
  let work: string;
  let stack: Stack;

  before(async () => {
    reg = await startRegistry();
    // The updater's way to the registry: while offline, every connection is dropped unanswered.
    proxy = await startServer(async (req, res) => {
      if (!online) {
        req.socket.destroy();
        return;
      }
      await passThrough(reg.url, req, res);
    });
    work = tmpdir('bundled-releases');
  });

  after(async () => {
    await stack?.dispose();
    await proxy?.close();
    await reg?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  /** hello VERSION as the image would carry it: a tarball under a name that says nothing (its VERSION is inside). */
  function bundledTarball(version: string, behaviour: 'ok' | 'crash' = 'ok'): string {
    const out = path.join(work, `b-${version}`);
    const tgz = packHello(version, out, behaviour);
    const dest = path.join(out, 'app.tar.gz');
    fs.renameSync(tgz, dest);
    return dest;
  }

  /** hello VERSION as an unpacked directory (the Dockerfile's COPY of a release tree). */
  function bundledDir(version: string): string {
    const tgz = packHello(version, path.join(work, `d-${version}`));
    const dir = path.join(work, `d-${version}`, 'molt-bundled');
    fs.mkdirSync(dir);
    execFileSync('tar', ['-xzf', tgz, '-C', dir]);
    return dir;
  }

  async function publish(version: string): Promise<void> {
    const r = await stack.cli(['publish', `${reg.host}/hello:${version}`, packHello(version, path.join(work, 'pub'))]);
    assert.equal(r.code, 0, `molt publish ${version}: ${r.stderr}`);
  }

  const committed = (v: string) => stack.waitStatus(`${v} committed`, (x) => x.phase === 'idle' && x.current === v && x.history.some((h) => h.event === 'commit' && h.version === v), 60_000);
  /** Polls of this run that failed: the source was asked and did not answer. */
  const failedPollSince = (t0: number) => stack.waitStatus('a failed poll of the unreachable source', (x) => x.lastCheck?.ok === false && Date.parse(x.lastCheck.at) >= t0, 30_000);
  const fallbackLines = () => (stack.m!.out() + stack.m!.err()).match(FALLBACK) ?? [];

  test('first start with no network: the bundled release is installed before the first poll and answers', async () => {
    stack = await Stack.create({ label: 'e2e-bundled', env: { MOLT_OCI: `127.0.0.1:${proxy.port}/hello`, MOLT_BUNDLED: bundledTarball('1.0.0') } });
    const t0 = Date.now();
    stack.start();
    await stack.waitAppVersion('1.0.0', 60_000);
    const s = await committed('1.0.0');
    const polled = await failedPollSince(t0);
    assert.ok(proxy.log.length > 0, 'the updater did try its source');
    assert.equal(stack.versionFileText(), '1.0.0');
    // The status's history (newest first), not state.json: the failed poll's event may not be saved yet.
    const h = [...polled.history].reverse();
    const installed = h.findIndex((e) => e.event === 'download' && e.version === '1.0.0');
    const firstFailedPoll = h.findIndex((e) => e.event === 'check-failed');
    assert.ok(installed >= 0 && firstFailedPoll > installed, `installed before the first poll: ${JSON.stringify(h.map((e) => e.event))}`);
    assert.match(s.source, new RegExp(`127\\.0\\.0\\.1:${proxy.port}/hello`), 'status names the source it follows, not the bundled copy');
    assert.deepEqual(fallbackLines(), []);
  });

  test('the network comes back: the updater follows its source as usual', async () => {
    await publish('1.1.0');
    online = true;
    await stack.waitAppVersion('1.1.0', 60_000);
    const s = await committed('1.1.0');
    assert.equal(s.previous, '1.0.0');
  });

  test('a newer image (newer bundled directory) on the same volume replaces the older current, offline', async () => {
    online = false;
    assert.equal((await stack.stop())?.code, 0);
    stack.start({ MOLT_BUNDLED: bundledDir('1.2.0') });
    await stack.waitAppVersion('1.2.0', 60_000);
    const s = await committed('1.2.0');
    assert.equal(s.previous, '1.1.0');
    assert.equal(stack.state().history.filter((e) => e.event === 'update' && e.version === '1.2.0').length, 1);
  });

  test('an older bundled release never replaces a newer current', async () => {
    assert.equal((await stack.stop())?.code, 0);
    const t0 = Date.now();
    stack.start({ MOLT_BUNDLED: bundledTarball('1.0.5') });
    await failedPollSince(t0);
    await stack.waitAppVersion('1.2.0');
    const s = await stack.status();
    assert.equal(s?.current, '1.2.0');
    assert.equal(stack.current(), '1.2.0');
    assert.ok(!stack.state().history.some((e) => e.version === '1.0.5'), '1.0.5 was never downloaded nor applied');
    assert.ok(!stack.installedVersions().includes('1.0.5'));
    assert.match(stack.m!.out() + stack.m!.err(), /bundled release not installed .*version=1\.0\.5.*never a downgrade/);
  });

  test('a missing bundled release: one line, the app keeps running, the source is polled', async () => {
    assert.equal((await stack.stop())?.code, 0);
    const t0 = Date.now();
    stack.start({ MOLT_BUNDLED: path.join(work, 'no-such-release.tar.gz') });
    await failedPollSince(t0);
    await stack.waitAppVersion('1.2.0');
    const lines = fallbackLines();
    assert.equal(lines.length, 1, stack.logs().slice(-3000));
    assert.match(stack.m!.out() + stack.m!.err(), /bundled release not usable, following the source .*no-such-release\.tar\.gz cannot be read: ENOENT/);
  });

  test('a corrupt bundled tarball: one line, nothing blocked, and the source is used', async () => {
    assert.equal((await stack.stop())?.code, 0);
    // VERSION first and intact, the rest cut: its version reads, its extraction fails.
    const tree = bundledDir('1.3.0');
    const tar = path.join(work, 'corrupt.tar');
    execFileSync('tar', ['-cf', tar, '-C', tree, 'VERSION', 'run', 'server.mjs', 'behaviour']);
    const bytes = fs.readFileSync(tar);
    fs.writeFileSync(tar, bytes.subarray(0, 2048));
    stack.start({ MOLT_BUNDLED: tar });
    await stack.waitStatus('the bundled install given up', (x) => x.phase === 'idle' && x.actions.some((a) => a.state === 'failed' && /bundled release .*corrupt\.tar cannot be installed/.test(a.message ?? '')));
    assert.equal(await stack.appVersion(), '1.2.0', 'the app still runs what current says');
    await publish('1.3.0');
    online = true;
    await stack.waitAppVersion('1.3.0', 60_000);
    const s = await committed('1.3.0');
    assert.ok(!s.blocked.some((b) => b.version === '1.3.0'), 'a damaged copy in the image does not block the version');
    assert.equal(fallbackLines().length, 1, stack.logs().slice(-3000));
    assert.deepEqual(stack.stagingEntries(), [], 'no staging debris');
  });

  test('a bundled release that crashes in its trial is rolled back and blocked, and the next start does not try it again', async () => {
    online = false;
    assert.equal((await stack.stop())?.code, 0);
    const crashing = bundledTarball('1.4.0', 'crash');
    stack.start({ MOLT_BUNDLED: crashing });
    const s = await stack.waitStatus('1.4.0 blocked', (x) => x.phase === 'idle' && x.blocked.some((b) => b.version === '1.4.0'), 60_000);
    assert.match(s.blocked.find((b) => b.version === '1.4.0')!.reason, /crashed 2 times during its trial/);
    assert.equal(s.current, '1.3.0', 'back on the release it replaced');
    await stack.waitAppVersion('1.3.0');
    assert.equal((await stack.stop())?.code, 0);
    const t0 = Date.now();
    stack.start({ MOLT_BUNDLED: crashing });
    await failedPollSince(t0);
    await stack.waitAppVersion('1.3.0');
    assert.equal(stack.state().history.filter((e) => e.event === 'update' && e.version === '1.4.0').length, 1, '1.4.0 was tried exactly once');
    assert.match(stack.m!.out() + stack.m!.err(), /bundled release not installed .*version=1\.4\.0.*1\.4\.0 is blocked/);
  });
});

describe('MOLT_BUNDLED with MOLT_TRUST_KEYS: the bundled release is trusted as part of the image', { timeout: 120_000 }, () => {
  let stack: Stack | undefined;
  let work: string;
  after(async () => {
    await stack?.dispose();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('an unsigned bundled release installs where the source must be signed; an unsigned source release is still refused', async () => {
    work = tmpdir('bundled-trust');
    execFileSync('minisign', ['-G', '-W', '-p', 'trusted.pub', '-s', 'trusted.key'], { cwd: work, stdio: 'ignore', timeout: 30_000 });
    const releases = path.join(work, 'releases');
    fs.mkdirSync(releases);
    const bundled = packHello('1.0.0', path.join(work, 'image'));
    stack = await Stack.create({ label: 'e2e-bundled-trust', env: { MOLT_DIR: releases, MOLT_TRUST_KEYS: path.join(work, 'trusted.pub'), MOLT_BUNDLED: bundled } });
    stack.start();
    await stack.waitAppVersion('1.0.0', 60_000);
    await stack.waitStatus('1.0.0 committed', (x) => x.phase === 'idle' && x.current === '1.0.0' && x.history.some((h) => h.event === 'commit' && h.version === '1.0.0'));
    // The same trust settings still hold for the source: an unsigned 1.1.0 there is refused and blocked.
    packHello('1.1.0', releases);
    const s = await stack.waitStatus('unsigned 1.1.0 refused', (x) => x.blocked.some((b) => b.version === '1.1.0'), 60_000);
    assert.equal(s.current, '1.0.0');
    assert.equal(await stack.appVersion(), '1.0.0');
    // Recorded as the image's own: a kept bundled version may run again (trust/stored.ts), it is not shown unverified.
    assert.equal(s.verifiedBy, BUNDLED_BY);
    assert.equal(s.unverified, undefined);
    assert.equal(stack.state().verifiedBy?.['1.0.0'], BUNDLED_BY);
  });
});
