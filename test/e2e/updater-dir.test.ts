// The whole path with a local release directory (MOLT_DIR), molt init as PID 1
// of a PID namespace: first install, update, a crashing release rolled back and
// blocked (across an updater restart), a newer release taken, unblock.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { molt, stopAndWait, waitFor } from '../helpers/molt.js';
import { currentResolves, httpJson, makeStack, stagingEmpty, type Stack } from '../helpers/stack.js';

describe('updater with a local release directory', () => {
  let s: Stack;
  let sampler: NodeJS.Timeout;
  let brokenSamples = 0;
  let installed = false;

  before(async () => {
    s = await makeStack({ MOLT_KEEP: '2' });
    s.publish('1.0.0');
    // From the first install on, `current` must resolve to a complete release at every instant.
    sampler = setInterval(() => {
      if (!installed) installed = currentResolves(s.home);
      else if (!currentResolves(s.home)) brokenSamples++;
    }, 5);
  });
  after(async () => {
    clearInterval(sampler);
    await stopAndWait(s.molt);
  });

  /** The updater's status once `version` is blocked and nothing is under way. */
  const blockedAndIdle = (version: string) =>
    waitFor(`${version} blocked`, async () => {
      const x = await s.status();
      return x?.phase === 'idle' && x.blocked.some((b) => b.version === version) ? x : undefined;
    }, 30_000);

  test('the first release is installed and started, and /version follows', async () => {
    await waitFor('1.0.0 answering', async () => (await s.appVersion()) === '1.0.0', 30_000);
    await waitFor('1.0.0 committed', async () => (await s.status())?.phase === 'idle', 15_000);
    assert.equal(fs.readFileSync(s.versionFile, 'utf8'), '1.0.0\n');
  });

  test('a new release is taken within one interval, old one kept as previous', async () => {
    s.publish('1.1.0');
    await waitFor('1.1.0 answering', async () => (await s.appVersion()) === '1.1.0', 20_000);
    const st = await waitFor('1.1.0 committed', async () => {
      const x = await s.status();
      return x?.phase === 'idle' && x.history.some((h) => h.event === 'commit' && h.version === '1.1.0') ? x : undefined;
    }, 15_000);
    assert.equal(st.current, '1.1.0');
    assert.equal(st.previous, '1.0.0');
    assert.equal(fs.readFileSync(s.versionFile, 'utf8'), '1.1.0\n');
  });

  test('a release that crashes in its trial is rolled back and blocked with its reason', async () => {
    s.publish('1.2.0', 'crash');
    const st = await blockedAndIdle('1.2.0');
    assert.match(st.blocked.find((b) => b.version === '1.2.0')!.reason, /crashed 2 times during its trial/);
    assert.equal(st.current, '1.1.0');
    await waitFor('1.1.0 answering again', async () => (await s.appVersion()) === '1.1.0', 10_000);
    assert.equal(fs.readFileSync(s.versionFile, 'utf8'), '1.1.0\n');
    const blocked = molt(['blocked'], { MOLT_SOCKET: s.socket });
    assert.equal(blocked.status, 0);
    assert.match(blocked.stdout, /1\.2\.0/);
  });

  test('the block survives a restart of the updater (it is in state.json, not in memory)', async () => {
    // supervise/pid holds the namespace's pid: kill it through the supervisor.
    const r = molt(['sv', 'kill', path.join(s.services, 'updater')]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    await waitFor('updater back', async () => (await s.status())?.phase === 'idle', 15_000);
    await new Promise((r) => setTimeout(r, 3000)); // three intervals
    const st = await s.status();
    assert.equal(st?.current, '1.1.0', '1.2.0 was not tried again');
    assert.ok(st?.blocked.some((b) => b.version === '1.2.0'));
    assert.ok(['idle', 'checking'].includes(s.journal()?.phase ?? ''), 'no update under way (a poll may be)');
  });

  test('a newer release clears the way; old versions are pruned to MOLT_KEEP', async () => {
    s.publish('1.3.0');
    await waitFor('1.3.0 answering', async () => (await s.appVersion()) === '1.3.0', 20_000);
    await waitFor('1.3.0 committed', async () => (await s.status())?.history.some((h) => h.event === 'commit' && h.version === '1.3.0'), 15_000);
    const versions = fs.readdirSync(path.join(s.home, 'versions')).sort();
    assert.ok(versions.includes('1.3.0') && versions.includes('1.1.0'), versions.join(','));
    assert.ok(!versions.includes('1.0.0'), `pruned: ${versions.join(',')}`);
  });

  test('unblock lifts a block (and an older blocked version is still not a downgrade)', async () => {
    const r = await httpJson<{ error?: string }>({ socketPath: s.socket, path: '/api/blocked/1.2.0', method: 'DELETE' });
    assert.equal(r?.error, undefined);
    const st = await s.status();
    assert.ok(!st?.blocked.some((b) => b.version === '1.2.0'));
    await new Promise((res) => setTimeout(res, 2500));
    assert.equal((await s.status())?.current, '1.3.0', 'unblocking an older version never downgrades by itself');
  });

  test('molt block VERSION: the running version is refused in one line; another is blocked by hand and never taken', async () => {
    const env = { MOLT_SOCKET: s.socket };
    const running = molt(['block', '1.3.0'], env);
    assert.equal(running.status, 1);
    assert.equal(running.stderr, 'molt: 1.3.0 is the running version: molt rollback goes back to the previous one and blocks it\n');
    assert.ok(!(await s.status())?.blocked.some((b) => b.version === '1.3.0'));
    const r = molt(['block', '1.5.0', '--reason', 'bad  migration'], env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'blocked 1.5.0: never installed until molt unblock 1.5.0\n');
    assert.equal(molt(['block', '1.5.0'], env).stdout, '1.5.0 was blocked already\n');
    s.publish('1.5.0');
    const check = molt(['check'], env);
    assert.equal(check.status, 0, check.stderr);
    const st = await s.status();
    assert.equal(st?.current, '1.3.0');
    assert.equal(st?.available, undefined, 'a release blocked by hand is not offered');
    assert.equal(st?.blocked.find((b) => b.version === '1.5.0')?.reason, 'blocked by hand: bad migration');
    assert.ok(st?.history.some((h) => h.event === 'block' && h.version === '1.5.0'));
    assert.ok(!st?.history.some((h) => h.event === 'update' && h.version === '1.5.0'));
    assert.ok(JSON.parse(fs.readFileSync(path.join(s.home, 'state.json'), 'utf8')).blocked.some((b: { version: string }) => b.version === '1.5.0'), 'in state.json');
  });

  test('a release whose run exits at once (never seen running by a poll) is rolled back for its crashes, not left to the trial cap', async () => {
    s.publish('1.4.0', 'exit');
    const st = await blockedAndIdle('1.4.0');
    assert.match(st.blocked.find((b) => b.version === '1.4.0')!.reason, /crashed 2 times during its trial/);
    assert.equal(st.current, '1.3.0');
    await waitFor('1.3.0 answering again', async () => (await s.appVersion()) === '1.3.0', 10_000);
  });

  test('invariants held throughout: current always resolved, no staging debris, a valid journal', () => {
    assert.equal(brokenSamples, 0, 'current never dangled');
    assert.ok(stagingEmpty(s.home));
    assert.equal(s.journal()?.phase, 'idle');
  });
});
