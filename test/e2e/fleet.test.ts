// A fleet of four molt "containers" (molt init + app + updater each, own MOLT_HOME) following
// one repository of Debian's docker-registry on loopback, with MOLT_FLEET=1 and MOLT_CANARY=25%
// (replica ids chosen so that exactly one is a canary) and a rollout window of an hour: a
// crashing release is tried by the canary only and blocked fleet-wide (the others never even
// download it); the next good release reaches the later wave
// through the canary's committed verdict (long before the window ends); `molt unblock --fleet`
// lifts the blocks that came from the fleet; `molt pause --fleet` stops every replica from applying while
// they keep checking, a local `molt pause` holds one replica after `molt resume --fleet`, and
// `molt resume` lets it go. The CLI's fleet verbs refuse a registry that refuses writes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { UpdaterStatus } from '../../src/api/types.js';
import { isCanary } from '../../src/update/fleet/wave.js';
import { tmpdir } from '../helpers/molt.js';
import { startRegistry, type Registry, type TestServer, readOnlyProxy } from '../helpers/registry.js';
import { packHello, Stack } from './updater-stack.js';

const SHARE = 0.25;

/** One canary and three of the later wave, by the same hash the updater uses. */
function replicaIds(): string[] {
  const ids = Array.from({ length: 200 }, (_, i) => `replica-${i}`);
  const canary = ids.find((id) => isCanary(id, SHARE))!;
  const rest = ids.filter((id) => !isCanary(id, SHARE)).slice(0, 3);
  return [canary, ...rest];
}

const updated = (s: UpdaterStatus, v: string) => s.history.some((h) => h.event === 'update' && h.version === v);
const committed = (s: UpdaterStatus, v: string) => s.current === v && s.phase === 'idle' && s.history.some((h) => h.event === 'commit' && h.version === v);

describe('fleet end to end: verdicts, canary wave, pause', { timeout: 300_000 }, () => {
  let reg: Registry;
  let work: string;
  const stacks: Stack[] = [];
  const servers: TestServer[] = [];

  before(async () => {
    reg = await startRegistry();
    work = tmpdir('fleet-releases');
  });
  after(async () => {
    await Promise.all(stacks.map((s) => s.dispose()));
    for (const s of servers) await s.close();
    await reg?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('a crashing release is tried by the canary only and blocked fleet-wide; pause and resume across replicas', async () => {
    const ids = replicaIds();
    for (const id of ids) {
      stacks.push(await Stack.create({ label: `fleet-${id}`, env: { MOLT_OCI: `${reg.host}/hello`, MOLT_FLEET: '1', MOLT_REPLICA_ID: id, MOLT_CANARY: '25%', MOLT_ROLLOUT: '1h' } }));
    }
    const [canary, ...later] = stacks as [Stack, ...Stack[]];
    const rel = path.join(work, 'hello');
    const publish = async (v: string, behaviour: 'ok' | 'crash') => {
      const r = await canary.cli(['publish', `${reg.host}/hello:${v}`, packHello(v, rel, behaviour)]);
      assert.equal(r.code, 0, r.stderr);
    };
    const all = (what: string, pred: (s: UpdaterStatus) => boolean, ms = 90_000) => Promise.all(stacks.map((s) => s.waitStatus(what, pred, ms)));

    // 1.0.0: nothing installed anywhere, so every replica installs it at once.
    await publish('1.0.0', 'ok');
    for (const s of stacks) s.start();
    await all('1.0.0 committed', (s) => committed(s, '1.0.0'));

    // 2.0.0 crashes at start: the canary tries it, rolls back and shares the block.
    await publish('2.0.0', 'crash');
    const blocked = await all('2.0.0 blocked', (s) => s.blocked.some((b) => b.version === '2.0.0') && s.phase === 'idle');
    assert.ok(updated(blocked[0]!, '2.0.0'), 'the canary tried 2.0.0');
    assert.doesNotMatch(blocked[0]!.blocked.find((b) => b.version === '2.0.0')!.reason, /^fleet/, 'the canary blocked it by its own trial');
    for (const [i, s] of blocked.slice(1).entries()) {
      assert.ok(!updated(s, '2.0.0'), `${ids[i + 1]} never tried 2.0.0`);
      assert.match(s.blocked.find((b) => b.version === '2.0.0')!.reason, new RegExp(`^fleet: blocked by ${ids[0]}`));
      assert.ok(!later[i]!.installedVersions().includes('2.0.0'), 'never downloaded: the later wave waits before staging');
      assert.equal(s.current, '1.0.0');
    }

    // molt unblock --fleet: a newer `unblocked` verdict lifts the blocks that came from the fleet;
    // the canary keeps the block of its own trial. The later wave waits for a commit again.
    const un = await canary.cli(['unblock', '2.0.0', '--fleet']);
    assert.equal(un.code, 0, un.stderr);
    await Promise.all(later.map((s) => s.waitStatus('2.0.0 unblocked by the fleet', (x) => !x.blocked.some((b) => b.version === '2.0.0') && x.history.some((h) => h.event === 'unblock' && h.version === '2.0.0') && /canary wave/.test(x.waiting ?? ''))));
    assert.ok((await canary.status())!.blocked.some((b) => b.version === '2.0.0'), 'the canary keeps its own block');
    for (const s of later) assert.equal(s.current(), '1.0.0');

    // 3.0.0 is good: the canary commits it, and the later wave follows on that verdict (the window is an hour).
    await publish('3.0.0', 'ok');
    const done = await all('3.0.0 committed', (s) => committed(s, '3.0.0'));
    assert.match(done[0]!.fleet?.canary ? 'canary' : '', /canary/);
    for (const s of done.slice(1)) assert.equal(s.fleet?.canary, false);

    // Fleet pause: every replica sees it and keeps checking; 4.0.0 is available but not applied.
    const paused = await canary.cli(['pause', '--fleet', '--reason', 'incident 7']);
    assert.equal(paused.code, 0, paused.stderr);
    await publish('4.0.0', 'ok');
    const held = await all('4.0.0 available, paused', (s) => s.paused === 'fleet' && s.available === '4.0.0' && /paused \(fleet\)/.test(s.waiting ?? ''));
    for (const s of held) assert.equal(s.current, '3.0.0');
    // One replica of the later wave is paused locally too.
    const local = later[0]!;
    assert.equal((await local.cli(['pause'])).code, 0);
    const resumed = await canary.cli(['resume', '--fleet']);
    assert.equal(resumed.code, 0, resumed.stderr);
    await Promise.all([canary, ...later.slice(1)].map((s) => s.waitStatus('4.0.0 committed', (x) => committed(x, '4.0.0'), 90_000)));
    const still = await local.waitStatus('still paused locally', (s) => s.paused === 'local' && s.paused !== undefined && /paused \(local\)/.test(s.waiting ?? ''));
    assert.equal(still.current, '3.0.0');
    assert.equal((await local.cli(['resume'])).code, 0);
    await local.waitStatus('4.0.0 committed', (x) => committed(x, '4.0.0'), 90_000);
  });

  test('molt block/unblock --fleet write verdicts; a registry that refuses writes is one line and exit 1', async () => {
    const stack = await Stack.create({ label: 'fleet-cli', env: { MOLT_OCI: `${reg.host}/tool` } });
    stacks.push(stack);
    const r = await stack.cli(['publish', `${reg.host}/tool:1.0.0`, packHello('1.0.0', path.join(work, 'tool'), 'ok')]);
    assert.equal(r.code, 0, r.stderr);
    const blocked = await stack.cli(['block', '1.0.0', '--fleet', '--reason', 'bad config']);
    assert.equal(blocked.code, 0, blocked.stderr);
    assert.match(blocked.stdout, /^blocked 1\.0\.0 \(sha256:[0-9a-f]{64}\) for the fleet\n$/);
    assert.equal((await stack.cli(['unblock', '1.0.0', '--fleet'])).code, 0);
    const local = await stack.cli(['block', '1.0.0']);
    assert.equal(local.code, 1, 'without --fleet, block goes to this replica\'s updater (none runs here)');
    assert.match(local.stderr, /updater not running/);
    const missing = await stack.cli(['block', '9.9.9', '--fleet']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no release 9\.9\.9/);

    const proxy = await readOnlyProxy(reg.url);
    servers.push(proxy);
    const denied = await stack.cli(['block', '1.0.0', '--fleet']);
    assert.equal(denied.code, 0, 'through the registry itself it works');
    const viaProxy = await (async () => {
      const { runAsync } = await import('./updater-stack.js');
      const { cli } = await import('../helpers/molt.js');
      return runAsync(process.execPath, [cli, 'pause', '--fleet'], { ...stack.env(), MOLT_OCI: `127.0.0.1:${proxy.port}/tool` });
    })();
    assert.equal(viaProxy.code, 1);
    assert.equal(viaProxy.stderr.trim().split('\n').length, 1, viaProxy.stderr);
    assert.match(viaProxy.stderr, /^molt pause: .*HTTP 403/);
  });
});
