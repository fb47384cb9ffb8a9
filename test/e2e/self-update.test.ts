// molt updates itself (issue 15), end to end under a real PID namespace: an
// updater following a local directory of molt bundles (scripts/bundle.mjs with
// koffi's runtime beside it, as the image ships them) installs a newer molt,
// PID 1 re-executes into it without restarting a service, and only then is the
// app updated. A new molt that exits at once is refused by PID 1, blocked, and
// `current` goes back, with PID 1 and every service still on the molt before.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { descendantsOf, repoRoot, script, tmpdir, waitFor } from '../helpers/molt.js';
import { Stack, writeAppRelease } from './updater-stack.js';
import { parsePid1 } from '../../src/common/pid1.js';
import { notifySink } from './trust-helpers.js';

const base = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const [maj, min, pat] = base.split('.').map(Number) as [number, number, number];
const GOOD = `${maj}.${min}.${pat + 1}`;
const BAD = `${maj}.${min}.${pat + 2}`;
/** Newer, but outside MOLT_SELF_POLICY's default (patch): never taken. */
const MINOR = `${maj}.${min + 1}.0`;

const libc = execFileSync('sh', [path.join(repoRoot, 'docker/libc.sh')], { encoding: 'utf8' }).trim();

/** A molt release as the image has it: molt.mjs (bundle) + node_modules/koffi, built aside and renamed into dir/<version>. */
function publishMolt(dir: string, version: string): void {
  const work = path.join(dir, `.build-${version}`);
  execFileSync(process.execPath, [path.join(repoRoot, 'scripts/bundle.mjs'), '--out', path.join(work, 'molt.mjs'), '--version', version], { stdio: 'pipe' });
  execFileSync('sh', [path.join(repoRoot, 'scripts/koffi-runtime.sh'), path.join(repoRoot, 'node_modules'), work, libc], { stdio: 'pipe' });
  fs.renameSync(work, path.join(dir, version));
}

/** A "molt" that exits at once, shaped like a release (koffi's package beside it). */
function publishBrokenMolt(dir: string, version: string): void {
  const work = path.join(dir, `.build-${version}`);
  script(path.join(work, 'molt.mjs'), `#!/bin/sh\necho "molt ${version}: exits at once" >&2\nexit 1\n`);
  fs.mkdirSync(path.join(work, 'node_modules', 'koffi'), { recursive: true });
  fs.writeFileSync(path.join(work, 'node_modules', 'koffi', 'package.json'), '{"name":"koffi"}\n');
  fs.renameSync(work, path.join(dir, version));
}

/** The pid of a host process inside its PID namespace (the last NSpid field). */
async function nsPid(hostPid: number): Promise<number> {
  const line = fs.readFileSync(`/proc/${hostPid}/status`, 'utf8').split('\n').find((l) => l.startsWith('NSpid:'))!;
  return Number(line.trim().split(/\s+/).pop());
}

const count = (text: string, needle: string) => text.split(needle).length - 1;

describe('molt updates itself: MOLT_SELF', () => {
  let stack: Stack;
  let selfDir: string;
  let appDir: string;
  const pidFile = () => path.join(stack.services, 'keeper', 'supervise', 'pid');
  const keeperPid = () => Number(fs.readFileSync(pidFile(), 'utf8').trim());
  const pid1 = () => parsePid1(fs.readFileSync(path.join(stack.services, '.molt-pid1'), 'utf8'));
  let keeper = 0;
  let notes: Awaited<ReturnType<typeof notifySink>>;
  /** The JSON notifications received so far (MOLT_NOTIFY_URL). */
  const notified = () => notes.bodies.map((b) => JSON.parse(b) as { event: string; version?: string; of?: string; text: string });

  before(async () => {
    selfDir = tmpdir('self-releases');
    appDir = tmpdir('self-app');
    notes = await notifySink();
    stack = await Stack.create({ label: 'self', env: { MOLT_DIR: appDir, MOLT_SELF: selfDir, MOLT_NOTIFY_URL: notes.url } });
    // A service that no update touches: it must keep its pid through every re-exec.
    script(path.join(stack.services, 'keeper', 'run'), 'exec sleep 1000\n');
    publishMolt(selfDir, MINOR);
    writeAppRelease(appDir, '1.0.0');
    stack.start();
    await stack.waitAppVersion('1.0.0', 60_000);
    await stack.waitStatus('1.0.0 committed', (s) => s.phase === 'idle' && s.history.some((h) => h.event === 'commit' && h.version === '1.0.0'));
    keeper = await waitFor('keeper up', () => fs.existsSync(pidFile()) && keeperPid() > 0 && keeperPid(), 15_000);
  });
  after(async () => {
    await stack.dispose();
    await notes.close();
    fs.rmSync(selfDir, { recursive: true, force: true });
    fs.rmSync(appDir, { recursive: true, force: true });
  });

  test('a newer molt: PID 1 re-executes into it without restarting a service, then the app is updated', async () => {
    const s0 = await stack.waitStatus('molt\'s source polled', (s) => s.self?.lastCheck?.ok === true);
    assert.equal(s0.self?.running, base, 'PID 1 runs the image\'s molt');
    assert.equal(s0.self?.current, undefined, 'nothing installed under MOLT_HOME/molt');
    assert.equal(s0.self?.policy, 'patch');
    assert.equal(s0.self?.available, undefined, `${MINOR} is outside the patch policy`);

    publishMolt(selfDir, GOOD);
    await stack.waitStatus(`molt ${GOOD} activated`, (s) => !!s.self?.history.some((h) => h.event === 'update' && h.version === GOOD));
    // Published while molt's trial runs: the app waits for it.
    writeAppRelease(appDir, '2.0.0');
    const s1 = await stack.waitStatus(`molt ${GOOD} committed`, (s) => !!s.self?.history.some((h) => h.event === 'commit' && h.version === GOOD), 60_000);
    assert.equal(s1.self?.running, GOOD);
    assert.equal(s1.self?.current, GOOD);
    assert.equal(pid1()?.version, GOOD);
    assert.equal(pid1()?.entry, fs.realpathSync(path.join(stack.home, 'molt', 'versions', GOOD, 'molt.mjs')));
    assert.deepEqual(pid1()?.adopted, { of: 3, accounted: 3 }, 'app, updater and keeper taken over');
    assert.equal(count(stack.m!.err(), 'init: starting pid=1'), 2, 'PID 1 re-executed; the container did not restart');
    assert.equal(keeperPid(), keeper, 'keeper kept its pid');

    await stack.waitAppVersion('2.0.0', 60_000);
    const s2 = await stack.waitStatus('2.0.0 committed', (s) => s.phase === 'idle' && s.history.some((h) => h.event === 'commit' && h.version === '2.0.0'));
    const moltCommit = Date.parse(s2.self!.history.find((h) => h.event === 'commit' && h.version === GOOD)!.at);
    const appUpdate = Date.parse(s2.history.find((h) => h.event === 'update' && h.version === '2.0.0')!.at);
    assert.ok(moltCommit <= appUpdate, 'molt first, then the app');
    assert.ok(!fs.existsSync(path.join(stack.home, 'molt', 'versions', MINOR)), `${MINOR} (minor) never installed under patch`);
    // Notified, each marked as molt's or the app's.
    const n = await waitFor('both commits notified', () => {
      const all = notified();
      return all.some((x) => x.event === 'commit' && x.version === '2.0.0') && all.some((x) => x.event === 'commit' && x.of === 'molt') && all;
    }, 15_000);
    const moltNote = n.find((x) => x.event === 'commit' && x.of === 'molt')!;
    assert.equal(moltNote.version, GOOD);
    assert.ok(n.some((x) => x.event === 'update' && x.of === 'molt' && x.version === GOOD), 'its update too (MOLT_NOTIFY_URL sends update events)');
    assert.match(moltNote.text, new RegExp(`molt ${GOOD.replace(/\./g, '\\.')} passed its trial`));
    assert.equal(n.find((x) => x.event === 'commit' && x.version === '2.0.0')!.of, undefined, 'the app\'s commit is not marked as molt\'s');

    // Visible: molt status and /metrics.
    const st = await stack.cli(['status']);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /molt itself\n\s+running\s+\S+ \(PID 1\)/);
    assert.match(st.stdout, new RegExp(`current\\s+${GOOD.replace(/\./g, '\\.')}`));
    assert.match(st.stdout, /source\s+dir .*MOLT_SELF=/);
    const metrics = await stack.api('GET', '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, new RegExp(`molt_self_version_info\\{version="${GOOD.replace(/\./g, '\\.')}"\\} 1`));
  });

  test('the updater restarts into the new molt', async () => {
    const newEntry = path.join(stack.home, 'molt', 'versions', GOOD, 'molt.mjs');
    const updaterOn = (entry: string) => async () => {
      const root = await stack.m!.moltPid();
      for (const pid of descendantsOf(root)) {
        try {
          const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
          if (argv[argv.length - 1] === 'updater' && argv.some((a) => a === entry || a.endsWith('/cli/main.js'))) return { pid, argv };
        } catch {
          // gone
        }
      }
      return undefined;
    };
    const old = await waitFor('the updater', updaterOn(newEntry), 10_000);
    assert.ok(!old.argv.includes(newEntry), 'the updater that installed it still runs the image\'s molt');
    process.kill(old.pid, 'SIGKILL');
    const next = await waitFor('the restarted updater', async () => {
      const u = await updaterOn(newEntry)();
      return u && u.pid !== old.pid ? u : undefined;
    }, 30_000);
    // It starts as the image's molt and execs into the installed one: same pid, so its supervisor still follows it.
    const argv = await waitFor(`the restarted updater to run ${newEntry}`, () => {
      try {
        const a = fs.readFileSync(`/proc/${next.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
        return a.includes(newEntry) ? a : undefined;
      } catch {
        return undefined;
      }
    }, 30_000);
    assert.equal(argv[argv.length - 1], 'updater');
    assert.equal(fs.readFileSync(path.join(stack.services, 'updater', 'supervise', 'pid'), 'utf8').trim(), String(await nsPid(next.pid)), 'the supervisor follows the same process');
    const s = await stack.waitStatus('the new updater answers', (x) => x.self?.updater === GOOD);
    assert.equal(s.self?.running, GOOD);
  });

  test('a molt that exits at once is refused by PID 1, blocked, and current goes back; the app is updated after it', async () => {
    publishBrokenMolt(selfDir, BAD);
    const s = await stack.waitStatus(`molt ${BAD} blocked`, (x) => !!x.self?.blocked.some((b) => b.version === BAD) && x.self.phase === 'idle', 90_000);
    assert.match(s.self!.blocked.find((b) => b.version === BAD)!.reason, /did not re-execute/);
    assert.equal(s.self?.current, GOOD, 'current back to the molt before');
    assert.equal(fs.realpathSync(path.join(stack.home, 'molt', 'current')), fs.realpathSync(path.join(stack.home, 'molt', 'versions', GOOD)));
    assert.match(stack.m!.err(), /re-exec refused reason="the new molt cannot adopt \(exit 1: [^)]*\); staying on this one"/);
    assert.equal(count(stack.m!.err(), 'init: starting pid=1'), 2, 'PID 1 never left the good molt');
    assert.equal(pid1()?.version, GOOD);
    assert.equal(keeperPid(), keeper, 'keeper still runs, same pid');
    assert.ok(s.self!.history.some((h) => h.event === 'rollback' && h.from === BAD && h.version === GOOD));
    const blockNote = await waitFor(`molt ${BAD}'s block notified`, () => notified().find((x) => x.event === 'block' && x.version === BAD), 15_000);
    assert.equal(blockNote.of, 'molt');
    assert.match(blockNote.text, new RegExp(`blocked molt ${BAD.replace(/\./g, '\\.')}: `));
    assert.equal(await stack.appVersion(), '2.0.0', 'the app runs on');

    writeAppRelease(appDir, '3.0.0');
    await stack.waitAppVersion('3.0.0', 60_000);
    const s3 = await stack.waitStatus('3.0.0 committed', (x) => x.phase === 'idle' && x.history.some((h) => h.event === 'commit' && h.version === '3.0.0'));
    assert.equal(s3.self?.blocked.filter((b) => b.version === BAD).length, 1, `${BAD} tried once`);
    assert.equal(s3.self?.history.filter((h) => h.event === 'update' && h.version === BAD).length, 1);

    // molt unblock --self: BAD may be taken again; still the newest patch, it is tried, refused by PID 1 and blocked again.
    const ub = await stack.cli(['unblock', BAD, '--self']);
    assert.equal(ub.code, 0, ub.stderr);
    assert.equal(ub.stdout, `unblocked molt ${BAD}\n`);
    const again = await stack.waitStatus(`molt ${BAD} tried again and blocked again`, (x) => x.self?.phase === 'idle' && x.self.history.filter((h) => h.event === 'update' && h.version === BAD).length === 2 && x.self.blocked.some((b) => b.version === BAD), 90_000);
    assert.ok(again.self!.history.some((h) => h.event === 'unblock' && h.version === BAD));
    assert.equal(again.self?.current, GOOD);
    assert.equal(keeperPid(), keeper, 'keeper still runs, same pid');
    const none = await stack.cli(['unblock', '9.9.9', '--self']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /molt 9\.9\.9 is not blocked/);
  });

  test('after a container restart PID 1 is the image\'s molt again: it is re-executed into the installed one', async () => {
    await stack.stop();
    const m = stack.start();
    const s = await stack.waitStatus(`PID 1 back on molt ${GOOD}`, (x) => x.self?.running === GOOD && x.self.phase === 'idle' && x.self.history.filter((h) => h.event === 'commit' && h.version === GOOD).length === 2, 90_000);
    assert.equal(count(m.err(), 'init: starting pid=1'), 2, 'started as the image\'s molt, then re-executed');
    assert.ok(s.self!.history.some((h) => h.event === 'update' && h.version === GOOD && /PID 1 runs another molt/.test(h.detail ?? '')));
    assert.equal(s.self?.current, GOOD);
    await stack.waitAppVersion('3.0.0', 60_000);
  });
});
