// Rollback bookkeeping and releases that must never be committed, end to end
// under molt init (PID namespace) with a local release directory (MOLT_DIR):
// `previous` after a rollback, pruning after a rollback, releases that cannot
// start, a hostile archive, a check failing during the trial, and the app's
// health events notified to a loopback webhook.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { tmpdir } from '../helpers/molt.js';
import { Stack, writeAppRelease, type AppBehaviour } from './updater-stack.js';

/** A release directory of the scripted app, built elsewhere and renamed into `dir` with `extra` files. */
function releaseWith(dir: string, version: string, b: AppBehaviour, extra: Record<string, string>): void {
  const work = tmpdir('rel');
  const made = writeAppRelease(work, version, b);
  for (const [name, text] of Object.entries(extra)) fs.writeFileSync(path.join(made, name), text);
  fs.renameSync(made, path.join(dir, version));
  fs.rmSync(work, { recursive: true, force: true });
}

/** A tarball release at dir/<version>.tar.gz of the scripted app, changed by `spoil` before packing. */
function tarball(dir: string, version: string, spoil: (tree: string) => void): void {
  const work = tmpdir('tgz');
  const tree = writeAppRelease(work, version, {});
  spoil(tree);
  const tmp = path.join(work, `${version}.tar.gz`);
  const r = spawnSync('tar', ['-C', tree, '-czf', tmp, '.'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  fs.renameSync(tmp, path.join(dir, `${version}.tar.gz`));
  fs.rmSync(work, { recursive: true, force: true });
}

const committed = (version: string) => (x: { phase: string; history: { event: string; version?: string }[] }) =>
  x.phase === 'idle' && x.history.some((h) => h.event === 'commit' && h.version === version);
const blocked = (version: string) => (x: { phase: string; blocked: { version: string }[] }) => x.phase === 'idle' && x.blocked.some((b) => b.version === version);

describe('rollback bookkeeping: previous, prune', { timeout: 240_000 }, () => {
  let stack: Stack | undefined;
  const rel = tmpdir('bk-rel');
  after(async () => {
    await stack?.dispose();
    fs.rmSync(rel, { recursive: true, force: true });
  });

  test('after an automatic rollback previous names the release before the good one, molt rollback goes there, and versions are pruned to MOLT_KEEP', async () => {
    stack = await Stack.create({ label: 'e2e-bk', env: { MOLT_DIR: rel, MOLT_KEEP: '3', MOLT_TRIAL: '2s' } });
    writeAppRelease(rel, '1.0.0');
    stack.start();
    await stack.waitStatus('1.0.0 committed', committed('1.0.0'), 60_000);
    for (const v of ['1.1.0', '1.2.0']) {
      writeAppRelease(rel, v);
      await stack.waitStatus(`${v} committed`, committed(v), 60_000);
    }
    // 1.3.0 exits 1 at once (rel exists): rolled back to 1.2.0 and blocked.
    writeAppRelease(rel, '1.3.0', { crashIfExists: rel });
    let s = await stack.waitStatus('1.3.0 blocked', blocked('1.3.0'), 60_000);
    assert.equal(s.current, '1.2.0');
    assert.equal(s.previous, '1.1.0', 'previous is the release before the good one, not cleared');
    assert.deepEqual(stack.installedVersions(), ['1.0.0', '1.1.0', '1.2.0'], 'pruned to MOLT_KEEP=3 after the rollback (the blocked one first)');

    const r = await stack.cli(['rollback']);
    assert.equal(r.code, 0, `molt rollback: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /rolled back to 1\.1\.0/);
    await stack.waitAppVersion('1.1.0');
    s = await stack.waitStatus('1.2.0 blocked by the rollback', blocked('1.2.0'));
    assert.equal(s.current, '1.1.0');
    assert.equal(s.previous, '1.0.0');

    const r2 = await stack.cli(['rollback']);
    assert.equal(r2.code, 0, `molt rollback: ${r2.stdout}${r2.stderr}`);
    await stack.waitAppVersion('1.0.0');
    s = await stack.waitStatus('1.1.0 blocked by the rollback', blocked('1.1.0'));
    assert.equal(s.previous, undefined, 'nothing older is kept: previous is gone');
    const r3 = await stack.cli(['rollback']);
    assert.notEqual(r3.code, 0);
    assert.match(r3.stderr, /no previous version/, 'and molt rollback says so');
    assert.equal(fs.existsSync(path.join(stack.home, 'previous')), false);
  });
});

describe('a release that cannot start is rolled back and blocked', { timeout: 240_000 }, () => {
  let stack: Stack | undefined;
  const rel = tmpdir('bad-rel');
  after(async () => {
    await stack?.dispose();
    fs.rmSync(rel, { recursive: true, force: true });
  });

  test('no run, run not executable, run a directory: each blocked, 1.0.0 keeps running and is never pruned (MOLT_KEEP=1)', async () => {
    stack = await Stack.create({ label: 'e2e-bad', env: { MOLT_DIR: rel, MOLT_KEEP: '1', MOLT_TRIAL: '2s' } });
    writeAppRelease(rel, '1.0.0');
    stack.start();
    await stack.waitStatus('1.0.0 committed', committed('1.0.0'), 60_000);
    const bad: [string, (tree: string) => void][] = [
      ['1.1.0', (t) => fs.rmSync(path.join(t, 'run'))],
      ['1.2.0', (t) => fs.chmodSync(path.join(t, 'run'), 0o644)],
      ['1.3.0', (t) => {
        fs.rmSync(path.join(t, 'run'));
        fs.mkdirSync(path.join(t, 'run'));
      }],
    ];
    for (const [version, spoil] of bad) {
      tarball(rel, version, spoil);
      const s = await stack.waitStatus(`${version} blocked`, blocked(version), 90_000);
      assert.equal(s.current, '1.0.0', `${version} was not committed`);
      assert.ok(!s.history.some((h) => h.event === 'commit' && h.version === version), `${version} has no commit`);
      assert.ok(stack.installedVersions().includes('1.0.0'), `1.0.0 is still installed after ${version}`);
      await stack.waitAppVersion('1.0.0');
    }
    // molt health never calls a bad release healthy (it names the failed update instead).
    const h = await stack.cli(['health']);
    assert.doesNotMatch(h.stdout, /healthy: .*version 1\.3\.0/, h.stdout + h.stderr);
    assert.equal(stack.current(), '1.0.0');
  });
});

describe('a service that never runs the release it is given', { timeout: 120_000 }, () => {
  let stack: Stack | undefined;
  const rel = tmpdir('norun-rel');
  after(async () => {
    await stack?.dispose();
    fs.rmSync(rel, { recursive: true, force: true });
  });

  test('a run that waits for current/run for ever (the old example) is not up: the release without run is rolled back', async () => {
    stack = await Stack.create({ label: 'e2e-norun', env: { MOLT_DIR: rel, MOLT_TRIAL: '1s' } });
    // The example run before this change: it loops waiting for an executable current/run.
    fs.writeFileSync(
      path.join(stack.services, 'app', 'run'),
      '#!/bin/sh\nexec 2>&1\nhome="${MOLT_HOME}"\nwhile [ ! -x "$home/current/run" ]; do sleep 1; done\ncd "$home/current" || exit 111\nexec ./run\n',
      { mode: 0o755 },
    );
    writeAppRelease(rel, '1.0.0');
    stack.start();
    await stack.waitStatus('1.0.0 committed', committed('1.0.0'), 60_000);
    tarball(rel, '1.1.0', (t) => fs.rmSync(path.join(t, 'run')));
    const s = await stack.waitStatus('1.1.0 blocked', blocked('1.1.0'), 90_000);
    assert.equal(s.current, '1.0.0');
    assert.ok(!s.history.some((h) => h.event === 'commit' && h.version === '1.1.0'), '1.1.0 was never committed');
    assert.match(stack.logs(), /does not run the release yet/);
    assert.equal(s.blocked.find((b) => b.version === '1.1.0')!.reason, 'its service ran for the whole trial without running it');
    await stack.waitAppVersion('1.0.0');
  });
});

describe('a hostile archive is blocked, not retried', { timeout: 120_000 }, () => {
  let stack: Stack | undefined;
  const rel = tmpdir('hostile-rel');
  after(async () => {
    await stack?.dispose();
    fs.rmSync(rel, { recursive: true, force: true });
  });

  test('an absolute symlink in the tarball: blocked with its reason at the first attempt, shown by molt status', async () => {
    stack = await Stack.create({ label: 'e2e-hostile', env: { MOLT_DIR: rel, MOLT_TRIAL: '2s' } });
    writeAppRelease(rel, '1.0.0');
    stack.start();
    await stack.waitStatus('1.0.0 committed', committed('1.0.0'), 60_000);
    tarball(rel, '1.1.0', (t) => fs.symlinkSync('/etc/passwd', path.join(t, 'pw')));
    let s = await stack.waitStatus('1.1.0 blocked', blocked('1.1.0'), 30_000);
    assert.match(s.blocked.find((b) => b.version === '1.1.0')!.reason, /hostile archive/);
    assert.equal(s.current, '1.0.0');
    const first = s.lastCheck!.at;
    // Three more polls (MOLT_INTERVAL=1s): not one more attempt.
    s = await stack.waitStatus('three more polls', (x) => x.lastCheck !== undefined && Date.parse(x.lastCheck.at) >= Date.parse(first) + 3000, 20_000);
    const out = stack.logs();
    assert.equal(out.match(/release refused and blocked/g)?.length, 1, 'one line with the reason');
    assert.equal(out.match(/download failed/g), null, 'never retried');
    assert.equal(s.history.filter((h) => h.event === 'block' && h.version === '1.1.0').length, 1);
    assert.equal(stack.state().blocked.filter((b) => b.version === '1.1.0').length, 1, 'the block is in state.json');
    const st = await stack.cli(['status']);
    assert.equal(st.code, 0);
    assert.match(st.stdout, /1\.1\.0/);
    assert.match(st.stdout, /blocked/i);
  });
});

describe('health: a check failing during the trial, and health events notified', { timeout: 240_000 }, () => {
  let stack: Stack | undefined;
  let hook: http.Server | undefined;
  const rel = tmpdir('check-rel');
  const posts: { event: string; version?: string; text: string }[] = [];
  after(async () => {
    await stack?.dispose();
    await new Promise((r) => (hook ? hook.close(r) : r(undefined)));
    fs.rmSync(rel, { recursive: true, force: true });
  });

  test('a release failing its check is rolled back at once, not at the end of a 10-minute trial; unhealthy/healed/gave up reach MOLT_NOTIFY_URL', async () => {
    hook = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('end', () => {
        try {
          posts.push(JSON.parse(body));
        } catch {
          // not ours
        }
        res.end('ok');
      });
    });
    await new Promise<void>((r) => hook!.listen(0, '127.0.0.1', r));
    const port = (hook.address() as { port: number }).port;
    stack = await Stack.create({
      label: 'e2e-check',
      env: { MOLT_DIR: rel, MOLT_TRIAL: '10m', MOLT_CHECK_FAILURES: '1', MOLT_NOTIFY_URL: `http://127.0.0.1:${port}/hook` },
    });
    const sick = path.join(stack.root, 'sick');
    const app = path.join(stack.services, 'app');
    fs.writeFileSync(path.join(app, 'check'), `#!/bin/sh\ntest ! -e "$MOLT_HOME/current/BADCHECK" && test ! -e "${sick}"\n`, { mode: 0o755 });
    fs.writeFileSync(path.join(app, 'check-interval'), '1\n');
    const health = () => {
      try {
        return JSON.parse(fs.readFileSync(path.join(app, 'supervise', 'health'), 'utf8')) as { healthy: boolean | null };
      } catch {
        return undefined;
      }
    };
    const events = () => posts.map((p) => p.event);
    const notified = async (event: string) => {
      const t0 = Date.now();
      while (!events().includes(event) && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 100));
      assert.ok(events().includes(event), `${event} notified: ${events().join(',')}\n${stack!.logs().slice(-4000)}`);
    };
    // 1.0.0 says ready (molt ready): committed without waiting out the 10-minute trial.
    writeAppRelease(rel, '1.0.0', { ready: true });
    stack.start();
    await stack.waitStatus('1.0.0 committed', committed('1.0.0'), 60_000);
    await stack.waitStatus('1.0.0 healthy', () => health()?.healthy === true, 30_000);

    // 1.0.0 turns sick: restarted once (healed), then given up on within the heal cooldown.
    fs.writeFileSync(sick, '');
    await notified('healed');
    await notified('gave-up');
    const healed = posts.find((p) => p.event === 'healed')!;
    assert.equal(healed.version, '1.0.0');
    assert.match(healed.text, /1\.0\.0 failed its check and was restarted/);
    const s0 = await stack.waitStatus('health events in the history', (x) => ['healed', 'gave-up'].every((e) => x.history.some((h) => h.event === e)));
    assert.equal(s0.current, '1.0.0');

    // no-heal: only reported, as unhealthy (after a passing check in between).
    fs.rmSync(sick);
    await stack.waitStatus('healthy again', () => health()?.healthy === true, 30_000);
    fs.writeFileSync(path.join(app, 'no-heal'), '');
    fs.writeFileSync(sick, '');
    await notified('unhealthy');
    fs.rmSync(sick);
    await stack.waitStatus('healthy again', () => health()?.healthy === true, 30_000);

    // 1.1.0 fails its check: judged during the trial, not after 10 minutes.
    releaseWith(rel, '1.1.0', {}, { BADCHECK: 'fails its check\n' });
    const s = await stack.waitStatus('1.1.0 blocked during its trial', blocked('1.1.0'), 60_000);
    assert.match(s.blocked.find((b) => b.version === '1.1.0')!.reason, /check failed during its trial/);
    assert.equal(s.current, '1.0.0');
    await stack.waitAppVersion('1.0.0');
  });
});
