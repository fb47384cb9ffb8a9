// Kept versions under a trust setting (issue 12): a version already in
// versions/ is started again without a download, so its verifiedBy record
// decides. The rule as a table (decideStored), then each path that starts a
// kept version: stage() of a kept version, apply() of a target staged before
// the trust setting, `molt rollback`, and the bundled release's record.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatStatus } from '../../src/cli/control-format.js';
import type { HistoryEntry, UpdaterStatus } from '../../src/api/types.js';
import { apply } from '../../src/update/apply.js';
import { UpdaterCore } from '../../src/update/core.js';
import { Journal } from '../../src/update/journal.js';
import { TrustRefusal } from '../../src/update/trust/gate.js';
import { manualRollback } from '../../src/update/rollback.js';
import { stage } from '../../src/update/stage.js';
import { VersionStore } from '../../src/update/store.js';
import type { TrustConfig } from '../../src/update/trust/config.js';
import { BUNDLED_BY, decideStored, refetchKept, unverifiedCurrentWarning } from '../../src/update/trust/stored.js';
import type { Release, ReleaseSource } from '../../src/update/types.js';

const KEY = 'ABCDEF0123456789';
const OLD_KEY = '1111222233334444';
const WORKFLOW = 'https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v*';
const keyed = { required: true, keys: [{ id: KEY }], identity: undefined } as unknown as TrustConfig;
const keyless = { required: true, keys: [], identity: WORKFLOW } as unknown as TrustConfig;
const none = { required: false, keys: [] } as unknown as TrustConfig;

describe('decideStored: which kept version may run again', () => {
  const BEFORE = '1.0.0 was installed before signatures were required; publish it signed or remove it';
  const table: Array<[string, TrustConfig | undefined, string | undefined, 'install' | 'rollback' | 'auto-rollback', unknown]> = [
    ['no trust setting: anything, as before', none, undefined, 'install', { allow: true, why: 'no trust setting' }],
    ['no trust config at all', undefined, undefined, 'rollback', { allow: true, why: 'no trust setting' }],
    ['verified by a key trusted now', keyed, KEY, 'install', { allow: true, why: `verified by ${KEY}` }],
    ['verified by a key trusted now, rollback', keyed, KEY, 'rollback', { allow: true, why: `verified by ${KEY}` }],
    ['bundled: trusted as the image', keyed, BUNDLED_BY, 'install', { allow: true, why: 'bundled' }],
    ['installed before: refused for an update', keyed, undefined, 'install', { allow: false, reason: 'no signature', line: BEFORE }],
    ['installed before: refused for molt rollback', keyed, undefined, 'rollback', { allow: false, reason: 'no signature', line: BEFORE }],
    ['installed before: the automatic rollback goes back to it', keyed, undefined, 'auto-rollback', { allow: true, why: 'it ran before this update' }],
    [
      'a key no longer trusted',
      keyed,
      OLD_KEY,
      'install',
      { allow: false, reason: `unknown key ${OLD_KEY}`, line: `1.0.0 was verified by ${OLD_KEY}, which is no longer trusted; publish it signed or remove it` },
    ],
    ['an identity the pinned pattern takes', keyless, WORKFLOW.replace('v*', 'v1.0.0'), 'install', { allow: true, why: `verified by ${WORKFLOW.replace('v*', 'v1.0.0')}` }],
    [
      'an identity the pattern does not take',
      keyless,
      'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main',
      'rollback',
      {
        allow: false,
        reason: 'identity https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main not trusted',
        line: '1.0.0 was verified by https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main, which is no longer trusted; publish it signed or remove it',
      },
    ],
    ['a key id is never taken for an identity', { ...keyless, identity: '*' } as TrustConfig, OLD_KEY, 'install', { allow: false, reason: `unknown key ${OLD_KEY}`, line: `1.0.0 was verified by ${OLD_KEY}, which is no longer trusted; publish it signed or remove it` }],
  ];
  for (const [name, trust, by, use, want] of table) {
    test(name, () => assert.deepEqual(decideStored(trust, '1.0.0', by, use), want));
  }

  test('refetchKept: a kept version refused as it is is checked again, unless it runs or is the rollback\'s target', () => {
    const roles = { current: '1.1.0', previous: '1.0.0' };
    assert.equal(refetchKept(keyed, '0.9.0', undefined, roles), true, 'installed before the trust setting');
    assert.equal(refetchKept(keyed, '0.9.0', OLD_KEY, roles), true, 'verified by a key no longer trusted');
    assert.equal(refetchKept(keyed, '0.9.0', KEY, roles), false, 'verified by a key trusted now: runs as it is');
    assert.equal(refetchKept(none, '0.9.0', undefined, roles), false, 'no trust setting');
    assert.equal(refetchKept(keyed, '1.0.0', undefined, roles), false, 'previous: the automatic rollback\'s target stays in place');
    assert.equal(refetchKept(keyed, '1.1.0', undefined, roles), false, 'current');
  });

  test('the start warning names an unverified running version, and only that', () => {
    assert.equal(unverifiedCurrentWarning(keyed, '1.1.0', undefined), 'the running version 1.1.0 is not verified (no signature): it keeps running; once replaced, only an automatic rollback starts it again');
    assert.equal(unverifiedCurrentWarning(keyed, '1.1.0', KEY), null);
    assert.equal(unverifiedCurrentWarning(keyed, undefined, undefined), null);
    assert.equal(unverifiedCurrentWarning(none, '1.1.0', undefined), null);
  });

  test('molt status marks the running version unverified', () => {
    const s: UpdaterStatus = { phase: 'idle', source: 'dir /r', policy: 'latest', releases: [], blocked: [], history: [], actions: [], current: '1.1.0', unverified: true };
    assert.match(formatStatus(s, Date.now()), /signed by\s+UNVERIFIED \(installed before signatures were required\)/);
    assert.match(formatStatus({ ...s, verifiedBy: OLD_KEY }, Date.now()), new RegExp(`signed by\\s+UNVERIFIED \\(${OLD_KEY}, no longer trusted\\)`));
  });
});

describe('the paths that start a kept version', () => {
  let dir: string;
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-trust-stored-'))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** A home with 1.0.0 (previous) and 1.1.0 (current) installed without a trust setting; `events` sees the history. */
  async function home(trust: TrustConfig, opts: { bundled?: ReleaseSource; source?: ReleaseSource } = {}) {
    const h = fs.mkdtempSync(path.join(dir, 'home-'));
    const store = new VersionStore(h);
    for (const v of ['1.0.0', '1.1.0']) {
      const d = await store.newStagingDir(v);
      fs.writeFileSync(path.join(d, 'run'), '#!/bin/sh\n', { mode: 0o755 });
      await store.install(v, d);
      await store.activate(v);
    }
    const events: HistoryEntry[] = [];
    const app = {
      send: () => undefined,
      stop: async () => assert.fail('the app must not be stopped'),
      status: () => ({ state: 'run', pid: 1 }),
      hasListen: () => false,
    };
    const source: ReleaseSource = {
      description: 'dir /r',
      list: async () => ({ releases: [], notModified: false }),
      fetch: async () => assert.fail('a kept version is not downloaded'),
    };
    const c = new UpdaterCore({
      config: { keep: 5, intervalMs: 1000, handover: 'stop', stopTimeoutMs: 1000 } as never,
      source: opts.source ?? source,
      store,
      app: app as never,
      journal: new Journal(h),
      hostname: 'test',
      trust,
      hooks: { onEvent: (e) => events.push(e) },
      ...(opts.bundled ? { bundled: opts.bundled } : {}),
    });
    return { c, store, events, home: h };
  }
  const release = (version: string): Release => ({ version, tag: version, prerelease: false, locator: {} });

  test('stage() of a version installed before the trust setting: refused "no signature", blocked, nothing staged', async () => {
    const { c, events, home: h } = await home(keyed);
    await assert.rejects(stage(c, release('1.0.0'), 'named'), /no signature: 1\.0\.0 was installed before signatures were required; publish it signed or remove it/);
    assert.equal(c.j.state.phase, 'idle');
    assert.equal(c.j.state.target, undefined);
    assert.deepEqual(c.j.state.blocked.map((b) => [b.version, b.reason]), [['1.0.0', 'no signature']]);
    assert.ok(events.some((e) => e.event === 'block' && e.version === '1.0.0' && e.cause === 'signature'), 'counted as a signature failure');
    assert.ok(new Journal(h).isBlocked('1.0.0'), 'journaled');
    assert.equal(c.d.store.current(), '1.1.0');
  });

  /** 0.9.0 kept (neither current nor previous), installed before the trust setting; the source serves it as `fetch` says. */
  async function withKept(fetch: ReleaseSource['fetch']) {
    let fetches = 0;
    const source: ReleaseSource = {
      description: 'dir /r',
      checksSignatures: true,
      list: async () => ({ releases: [], notModified: false }),
      fetch: (...args) => (fetches++, fetch(...args)),
    };
    const h = await home(keyed, { source });
    const d = await h.store.newStagingDir('0.9.0');
    fs.writeFileSync(path.join(d, 'run'), '#!/bin/sh\necho kept\n', { mode: 0o755 });
    await h.store.install('0.9.0', d);
    return { ...h, fetches: () => fetches };
  }

  test('stage() of a kept version installed before the trust setting, neither current nor previous: downloaded again, checked, and the verified copy replaces it', async () => {
    const k = await withKept(async (release, stagingRoot) => {
      const dir = fs.mkdtempSync(path.join(stagingRoot, 'fetched-'));
      fs.writeFileSync(path.join(dir, 'run'), '#!/bin/sh\necho signed\n', { mode: 0o755 });
      return { release, dir, downloaded: 10, verified: [], trustedBy: KEY };
    });
    await stage(k.c, release('0.9.0'), 'named');
    assert.equal(k.fetches(), 1);
    assert.equal(k.c.j.state.phase, 'staged');
    assert.equal(k.c.j.state.verifiedBy?.['0.9.0'], KEY, 'recorded: it may run again');
    assert.equal(fs.readFileSync(path.join(k.home, 'versions', '0.9.0', 'run'), 'utf8'), '#!/bin/sh\necho signed\n', 'the checked copy, not the kept one');
    assert.deepEqual(k.c.j.state.blocked, []);
    assert.deepEqual(fs.readdirSync(k.store.stagingRoot()), [], 'the old copy is gone, no debris');
    assert.equal(k.store.current(), '1.1.0');
    assert.equal(k.store.previous(), '1.0.0');
  });

  test('the same kept version served unsigned: refused "no signature" and blocked, and the unverified copy pruned with the block', async () => {
    const k = await withKept(async () => {
      throw new TrustRefusal('no signature');
    });
    await assert.rejects(stage(k.c, release('0.9.0'), 'named'), /no signature/);
    assert.equal(k.fetches(), 1);
    assert.equal(k.c.j.state.phase, 'idle');
    assert.deepEqual(k.c.j.state.blocked.map((b) => [b.version, b.reason]), [['0.9.0', 'no signature']]);
    assert.equal(k.c.j.state.verifiedBy?.['0.9.0'], undefined);
    assert.equal(k.store.has('0.9.0'), false, 'a blocked version is pruned, as after any refusal');
    assert.equal(k.store.current(), '1.1.0');
    assert.equal(k.store.previous(), '1.0.0');
  });

  test('stage() of a kept version verified by a trusted key: staged without a download', async () => {
    const { c } = await home(keyed);
    c.j.setVerifiedBy('1.0.0', KEY, ['1.0.0', '1.1.0']);
    await stage(c, release('1.0.0'), 'named');
    assert.equal(c.j.state.phase, 'staged');
    assert.equal(c.j.state.target?.version, '1.0.0');
    assert.deepEqual(c.j.state.blocked, []);
  });

  test('apply() of a target staged before the trust setting: refused, back to idle, the app untouched', async () => {
    const { c } = await home(none);
    await stage(c, release('1.0.0'), 'named');
    assert.equal(c.j.state.phase, 'staged');
    // The restart that added MOLT_TRUST_KEYS: the same state.json, now with trust.
    const c2 = new UpdaterCore({ ...c.d, journal: new Journal(c.d.store.home), trust: keyed });
    assert.equal(c2.j.state.phase, 'staged');
    await assert.rejects(apply(c2), /no signature: 1\.0\.0 was installed before signatures were required/);
    assert.equal(c2.j.state.phase, 'idle');
    assert.equal(c2.j.state.target, undefined);
    assert.ok(c2.j.isBlocked('1.0.0'));
    assert.equal(c2.d.store.current(), '1.1.0');
  });

  test('molt rollback to an unverified previous: refused, nothing changes', async () => {
    const { c } = await home(keyed);
    await assert.rejects(manualRollback(c, '1.0.0'), /cannot roll back to 1\.0\.0: no signature: 1\.0\.0 was installed before signatures were required; publish it signed or remove it; 1\.1\.0 keeps running/);
    assert.equal(c.d.store.current(), '1.1.0');
    assert.equal(c.d.store.previous(), '1.0.0');
    assert.deepEqual(c.j.state.blocked, [], 'the running version is not blocked');
    assert.equal(c.j.state.phase, 'idle');
  });

  test('a bundled release is recorded as bundled, so it may run again under trust', async () => {
    const bundled: ReleaseSource = {
      description: 'bundled /app.tgz',
      list: async () => ({ releases: [release('2.0.0')], notModified: false }),
      fetch: async (r, stagingRoot) => {
        const d = fs.mkdtempSync(path.join(stagingRoot, 'b-'));
        fs.writeFileSync(path.join(d, 'run'), '#!/bin/sh\n', { mode: 0o755 });
        return { release: r, dir: d, downloaded: 0, verified: [], trustedBy: null };
      },
    };
    const { c } = await home(keyed, { bundled });
    await stage(c, release('2.0.0'), 'bundled');
    assert.equal(c.j.state.verifiedBy?.['2.0.0'], BUNDLED_BY);
    assert.deepEqual(decideStored(keyed, '2.0.0', c.j.state.verifiedBy?.['2.0.0'], 'rollback'), { allow: true, why: 'bundled' });
  });
});
