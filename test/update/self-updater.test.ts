// The self-updater over real parts (a MOLT_DIR of molt releases, the version
// store and journal under MOLT_HOME/molt), with PID 1 played by a function that
// answers the re-exec request by writing MOLT_SERVICES/.molt-pid1 as molt init
// does: commit, a new molt that leaves a service behind (blocked, current back,
// PID 1 asked back), and a trial cut short by a restart of the updater.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { script, tmpdir } from '../helpers/molt.js';
import { readUpdaterConfig, type UpdaterConfig } from '../../src/update/config.js';
import { UpdaterCore } from '../../src/update/core.js';
import { AppControl } from '../../src/update/appctl.js';
import { Journal } from '../../src/update/journal.js';
import { VersionStore } from '../../src/update/store.js';
import { LocalDirSource } from '../../src/update/sources/local.js';
import { SelfUpdater } from '../../src/update/self/updater.js';
import { encodePid1, pid1File, type Pid1Identity } from '../../src/common/pid1.js';
import { moltVersion } from '../../src/common/version.js';

const [maj, min, pat] = moltVersion().split('.').map(Number) as [number, number, number];
const v = (n: number) => `${maj}.${min}.${pat + n}`;

describe('self-updater: trial by PID 1\'s identity', () => {
  let root: string;
  let releases: string;
  let services: string;
  let selfHome: string;
  let cfg: UpdaterConfig;
  /** What "PID 1" does with each request: the identity it writes (undefined: stays as it is). */
  let pid1: (entry: string) => Omit<Pid1Identity, 'entry' | 'startedMs'> | undefined;
  const requests: string[] = [];

  const publish = (version: string) => {
    script(path.join(releases, version, 'molt.mjs'), '#!/usr/bin/env node\n');
    fs.mkdirSync(path.join(releases, version, 'node_modules', 'koffi'), { recursive: true });
    fs.writeFileSync(path.join(releases, version, 'node_modules', 'koffi', 'package.json'), '{}');
  };
  const writeId = (id: Pid1Identity) => fs.writeFileSync(pid1File(services), encodePid1(id));
  const entryOf = (version: string) => path.join(fs.realpathSync(selfHome), 'versions', version, 'molt.mjs');
  /** A fresh updater process over the same disk. */
  const make = () => {
    const selfCfg: UpdaterConfig = { ...cfg, source: cfg.self!.source, policy: cfg.self!.policy, home: selfHome };
    const store = new VersionStore(selfHome);
    const core = new UpdaterCore({ config: selfCfg, source: new LocalDirSource(releases), store, app: new AppControl(services, 'app'), journal: new Journal(selfHome), hostname: 'h' });
    return new SelfUpdater({
      core,
      servicesDir: services,
      requestReexec: (entry) => {
        requests.push(entry);
        const id = pid1(entry);
        if (id) writeId({ ...id, entry, startedMs: Date.now() });
      },
    });
  };

  before(() => {
    root = tmpdir('self-updater');
    releases = path.join(root, 'releases');
    services = path.join(root, 'services');
    fs.mkdirSync(releases);
    fs.mkdirSync(services);
    cfg = readUpdaterConfig({ MOLT_DIR: path.join(root, 'app'), MOLT_SELF: releases, MOLT_HOME: path.join(root, 'home'), MOLT_SERVICES: services, MOLT_TRIAL: '1s' }, () => undefined);
    selfHome = path.join(cfg.home, 'molt');
    // PID 1 as the image started it.
    writeId({ pid: 1, version: moltVersion(), entry: '/usr/local/lib/molt/molt.mjs', startedMs: Date.now() - 60_000 });
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  test('a newer molt is installed, PID 1 re-executes into it with every service, committed', async () => {
    publish(v(1));
    pid1 = () => ({ pid: 1, version: v(1), adopted: { of: 2, accounted: 2 } });
    const s = make();
    const release = await s.poll();
    assert.equal(release?.version, v(1));
    assert.equal(await s.update(release!), `molt ${v(1)} committed`);
    assert.deepEqual(requests, [entryOf(v(1))]);
    const st = s.status('/x');
    assert.equal(st.current, v(1));
    assert.equal(st.running, v(1));
    assert.equal(st.phase, 'idle');
    assert.ok(st.history.some((h) => h.event === 'commit' && h.version === v(1)));
    assert.equal(await s.poll(), undefined, 'up to date, and PID 1 runs current');
  });

  test('a molt that takes over fewer services: blocked, current back, PID 1 asked back to the molt before', async () => {
    publish(v(2));
    requests.length = 0;
    pid1 = (entry) => (entry.includes(`/${v(2)}/`) ? { pid: 1, version: v(2), adopted: { of: 2, accounted: 1 } } : { pid: 1, version: v(1), adopted: { of: 2, accounted: 2 } });
    const s = make();
    const release = await s.poll();
    assert.equal(release?.version, v(2));
    await assert.rejects(s.update(release!), /rolled back: PID 1 took over 1 of 2 services/);
    assert.deepEqual(requests, [entryOf(v(2)), entryOf(v(1))], 'into the new molt, then back to the one before');
    const st = s.status('/x');
    assert.equal(st.current, v(1));
    assert.deepEqual(st.blocked.map((b) => b.version), [v(2)]);
    assert.ok(st.history.some((h) => h.event === 'rollback' && h.from === v(2) && h.version === v(1)));
    assert.equal(await s.poll(), undefined, `${v(2)} is blocked`);
  });

  test('a trial cut short by a restart of the updater: judged at the next start by what PID 1 runs', async () => {
    publish(v(3));
    requests.length = 0;
    // The updater dies in the trial: PID 1 never answered.
    pid1 = () => undefined;
    const first = make();
    const release = await first.poll();
    assert.equal(release?.version, v(3));
    const c = first.c;
    const pending = first.update(release!);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(c.j.state.phase, 'trial');
    // What a kill -9 leaves: state.json says trial, current is the new molt.
    const onDisk = JSON.parse(fs.readFileSync(path.join(selfHome, 'state.json'), 'utf8')) as { phase: string };
    assert.equal(onDisk.phase, 'trial');
    assert.equal(fs.realpathSync(path.join(selfHome, 'current')), path.dirname(entryOf(v(3))));
    const second = make();
    await second.recover();
    const st = second.status('/x');
    assert.equal(st.phase, 'idle');
    assert.equal(st.current, v(1), 'PID 1 does not run it: current back');
    assert.ok(st.blocked.some((b) => b.version === v(3) && /interrupted/.test(b.reason)));
    c.stopped = true;
    await assert.rejects(pending, /stopped during its trial; judged at its next start/);
  });
});
