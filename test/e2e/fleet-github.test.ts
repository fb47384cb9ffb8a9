// A fleet of two molt "containers" (molt init + app + updater each) following one
// repository on the local GitHub fake (test/helpers/fake-github.ts) with a token that
// may write, MOLT_FLEET=1, MOLT_CANARY=50% (ids chosen so that one is the canary) and a
// rollout window of an hour: a crashing release is tried by the canary, which uploads
// a verdict asset to the release; the other replica reads it from the release list
// and blocks the release without ever downloading it.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { UpdaterStatus } from '../../src/api/types.js';
import { isCanary } from '../../src/update/fleet/wave.js';
import { tmpdir } from '../helpers/molt.js';
import { FakeGitHub } from '../helpers/fake-github.js';
import { packHello, Stack } from './updater-stack.js';

const TOKEN = 'ghp_fleetFakeToken0123456789abcdefABCDE';
const arch = os.arch() === 'x64' ? 'amd64' : os.arch();
const updated = (s: UpdaterStatus, v: string) => s.history.some((h) => h.event === 'update' && h.version === v);
const committed = (s: UpdaterStatus, v: string) => s.current === v && s.phase === 'idle' && s.history.some((h) => h.event === 'commit' && h.version === v);

describe('fleet end to end on GitHub: verdicts as release assets', { timeout: 240_000 }, () => {
  let gh: FakeGitHub | undefined;
  let work: string | undefined;
  const stacks: Stack[] = [];

  after(async () => {
    await Promise.all(stacks.map((s) => s.dispose()));
    await gh?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('a crashing release blocked by the canary is never tried by the other replica, which reads the verdict asset', async () => {
    gh = await FakeGitHub.start({ owner: 'acme', repo: 'hello', token: TOKEN });
    work = tmpdir('fleet-gh');
    const ids = Array.from({ length: 100 }, (_, i) => `gh-replica-${i}`);
    const pair = [ids.find((id) => isCanary(id, 0.5))!, ids.find((id) => !isCanary(id, 0.5))!];
    for (const id of pair) {
      stacks.push(
        await Stack.create({
          label: `fleet-gh-${id}`,
          env: { MOLT_GITHUB: 'acme/hello', MOLT_GITHUB_API: gh.baseUrl, GITHUB_TOKEN: TOKEN, MOLT_FLEET: '1', MOLT_REPLICA_ID: id, MOLT_CANARY: '50%', MOLT_ROLLOUT: '1h' },
        }),
      );
    }
    const [canary, other] = stacks as [Stack, Stack];
    const publish = (v: string, behaviour: 'ok' | 'crash') =>
      gh!.addRelease({ tag: `v${v}`, assets: [{ name: `hello-${v}-linux-${arch}.tar.gz`, data: fs.readFileSync(packHello(v, path.join(work!, v), behaviour)) }] });

    publish('1.0.0', 'ok');
    for (const s of stacks) s.start();
    await Promise.all(stacks.map((s) => s.waitStatus('1.0.0 committed', (x) => committed(x, '1.0.0'), 90_000)));

    publish('2.0.0', 'crash');
    const [c, o] = await Promise.all(stacks.map((s) => s.waitStatus('2.0.0 blocked', (x) => x.blocked.some((b) => b.version === '2.0.0') && x.phase === 'idle', 90_000)));
    assert.ok(updated(c!, '2.0.0'), 'the canary tried 2.0.0');
    assert.ok(!updated(o!, '2.0.0'), 'the other replica never tried 2.0.0');
    assert.match(o!.blocked.find((b) => b.version === '2.0.0')!.reason, new RegExp(`^fleet: blocked by ${pair[0]}`));
    assert.ok(!other.installedVersions().includes('2.0.0'), 'never downloaded');
    assert.equal(o!.current, '1.0.0');
    const verdicts = gh.uploads.filter((u) => u.release === 'v2.0.0');
    assert.equal(verdicts.length, 1, verdicts.map((u) => u.name).join(', '));
    assert.match(verdicts[0]!.name, new RegExp(`^molt-verdict-${pair[0]}-blocked-\\d+\\.json$`));

    // molt unblock --fleet on GitHub: an `unblocked` verdict asset lifts the block that came from the fleet.
    const un = await other.cli(['unblock', '2.0.0', '--fleet']);
    assert.equal(un.code, 0, un.stderr);
    assert.match(un.stdout, /^unblocked 2\.0\.0 \(v2\.0\.0, asset molt-verdict-[\w.-]+-unblocked-\d+\.json\) for the fleet\n$/);
    await other.waitStatus('2.0.0 unblocked by the fleet', (x) => !x.blocked.some((b) => b.version === '2.0.0') && x.history.some((h) => h.event === 'unblock' && h.version === '2.0.0'), 30_000);
    assert.ok((await canary.status())!.blocked.some((b) => b.version === '2.0.0'), 'the canary keeps the block of its own trial');
    // No fleet pause on GitHub: one line, exit 2.
    const p = await other.cli(['pause', '--fleet']);
    assert.equal(p.code, 2);
    assert.match(p.stderr, /^molt pause: a fleet pause is not kept on GitHub/);
  });
});
