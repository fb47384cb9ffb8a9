// The updater's edges, end to end with a local release directory (MOLT_DIR):
// molt init as PID 1 of a PID namespace over the example app and updater
// services, watched from outside (app's HTTP answer, API, state.json, symlinks).
// - SIGTERM to PID 1 while downloading and during a trial: exit 0 without
//   killing anything; a restart on the same MOLT_HOME completes the update.
// - Two update requests at once: one runs, the other is refused (409).
// - MOLT_READY=explicit: silence until the deadline rolls back; `molt ready` commits.
// - A release dying after its trial is reported as a crash loop, not rolled back.
// - Manual policy; named downgrade, then a plain check; unblock; exit 42 into a
//   staged update while the schedule is closed.
// - The seeds' mistakes: a failed download never touches /version or current
//   (self-update rewrote /version anyway); /api/update answers 202 with an action
//   whose result can be followed (knockknock answered 200 before doing anything).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { ActionInfo, UpdaterStatus } from '../../src/api/types.js';
import { tmpdir } from '../helpers/molt.js';
import { packHello, Stack, writeAppRelease } from './updater-stack.js';

const stacks: Stack[] = [];
const dirs: string[] = [];

after(async () => {
  for (const s of stacks) await s.dispose();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function newStack(label: string, env: Record<string, string> = {}): Promise<{ stack: Stack; rel: string }> {
  const rel = tmpdir(`${label}-rel`);
  dirs.push(rel);
  const stack = await Stack.create({ label, env: { MOLT_DIR: rel, ...env } });
  stacks.push(stack);
  return { stack, rel };
}

const committed = (v: string) => (s: UpdaterStatus) => s.phase === 'idle' && s.history.some((h) => h.event === 'commit' && h.version === v);
const count = (s: UpdaterStatus, event: string, version: string) => s.history.filter((h) => h.event === event && h.version === version).length;

/** Wait until the updater has polled `n` more times (lastCheck.at moves on). */
async function polls(stack: Stack, n: number): Promise<UpdaterStatus> {
  let s = await stack.waitStatus('a poll', (x) => x.lastCheck !== undefined);
  for (let i = 0; i < n; i++) {
    const at = s.lastCheck!.at;
    s = await stack.waitStatus(`poll ${i + 1} of ${n}`, (x) => x.lastCheck !== undefined && x.lastCheck.at !== at, 15_000);
  }
  return s;
}

/** SIGTERM to PID 1, then its exit: bounded by the grace time (MOLT_STOP_TIMEOUT=3s) plus slack. */
async function termPid1(stack: Stack): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const m = stack.m!;
  await m.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([m.exited, new Promise<'late'>((res) => (timer = setTimeout(() => res('late'), 3000 + 5000)))]);
  clearTimeout(timer);
  assert.notEqual(r, 'late', `molt did not exit within the grace time after SIGTERM\n${stack.logs().slice(-4000)}`);
  assert.doesNotMatch(m.err() + m.out(), /grace time over/, 'nothing had to be killed');
  return r as { code: number | null; signal: NodeJS.Signals | null };
}

function assertCoherent(stack: Stack, s: UpdaterStatus, version: string): void {
  assert.equal(s.current, version);
  assert.equal(stack.current(), version, 'current resolves on disk');
  assert.equal(stack.versionFileText(), version, 'MOLT_VERSION_FILE');
  assert.ok(fs.existsSync(path.join(stack.home, 'current', 'run')), 'current is a complete release');
  assert.deepEqual(stack.stagingEntries(), [], 'no staging debris');
}

describe('updater edges: shutdown during an update', { timeout: 180_000 }, () => {
  test('SIGTERM to PID 1 while downloading: exit 0 within the grace time; a restart completes the update', async () => {
    const { stack, rel } = await newStack('e2e-term-dl');
    packHello('1.0.0', rel);
    stack.start();
    await stack.waitStatus('1.0.0 committed', committed('1.0.0'));
    assert.equal((await stack.stop())?.code, 0);

    packHello('2.0.0', rel);
    // Hold the downloading phase open so the signal lands in it.
    stack.start({ MOLT_FAULT_PAUSE: 'downloading:60000' });
    await stack.waitStatus('2.0.0 downloading', (x) => x.phase === 'downloading');
    assert.equal(await stack.appVersion(), '1.0.0', 'the old version serves while the new one downloads');
    const r = await termPid1(stack);
    assert.deepEqual(r, { code: 0, signal: null });

    const st = stack.state();
    assert.equal(st.phase, 'downloading', 'state.json is valid and says where it stopped');
    assert.equal(stack.current(), '1.0.0', 'current untouched by an interrupted download');
    assert.equal(stack.versionFileText(), '1.0.0');

    stack.start();
    await stack.waitAppVersion('2.0.0');
    const s = await stack.waitStatus('2.0.0 committed', committed('2.0.0'));
    assertCoherent(stack, s, '2.0.0');
    assert.equal(stack.state().phase, 'idle');
    assert.equal((await stack.stop())?.code, 0);
  });

  test('SIGTERM to PID 1 during a trial: exit 0; the restart resumes the trial and commits, nothing blocked', async () => {
    const { stack, rel } = await newStack('e2e-term-trial');
    packHello('1.0.0', rel);
    stack.start();
    await stack.waitStatus('1.0.0 committed', committed('1.0.0'));
    assert.equal((await stack.stop())?.code, 0);

    packHello('2.0.0', rel);
    stack.start({ MOLT_TRIAL: '60s' });
    await stack.waitStatus('2.0.0 on trial', (x) => x.trial?.version === '2.0.0' && x.phase === 'trial');
    await stack.waitAppVersion('2.0.0');
    const r = await termPid1(stack);
    assert.deepEqual(r, { code: 0, signal: null });
    assert.equal(stack.state().phase, 'trial', 'state.json is valid and still says trial');
    assert.equal(stack.current(), '2.0.0');

    stack.start();
    // Whatever runs first, it is a complete version: 1.0.0 or 2.0.0, never nothing for long.
    const first = await stack.waitStatus('the restarted updater', (x) => x.current !== undefined);
    assert.ok(['1.0.0', '2.0.0'].includes(first.current!));
    const s = await stack.waitStatus('2.0.0 committed after the restart', committed('2.0.0'));
    assertCoherent(stack, s, '2.0.0');
    assert.deepEqual(s.blocked, [], 'a shutdown is not a verdict on the release: nothing blocked');
    assert.ok(s.history.some((h) => h.event === 'recover' && h.version === '2.0.0'), 'the recovery is in the history');
    assert.equal(await stack.appVersion(), '2.0.0');
    assert.equal((await stack.stop())?.code, 0);
  });
});

describe('updater edges: requests and policies', { timeout: 240_000 }, () => {
  test('manual policy reports and waits; molt update applies; two updates at once: one runs, one is refused', async () => {
    const { stack, rel } = await newStack('e2e-manual', { MOLT_POLICY: 'manual', MOLT_FAULT_PAUSE: 'downloading:1500' });
    packHello('1.0.0', rel);
    stack.start();
    let s = await stack.waitStatus('1.0.0 available', (x) => x.available === '1.0.0');
    assert.match(s.waiting ?? '', /manual/);
    s = await polls(stack, 2);
    assert.equal(s.current, undefined, 'manual: nothing applied by itself, not even a first install');
    assert.equal(s.phase, 'idle');
    assert.equal(await stack.appVersion(), undefined);

    const u1 = await stack.cli(['update']);
    assert.equal(u1.code, 0, u1.stderr);
    assert.match(u1.stdout, /updated to 1\.0\.0/);
    await stack.waitAppVersion('1.0.0');

    packHello('2.0.0', rel);
    const c = await stack.cli(['check']);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /available: 2\.0\.0/);
    s = await polls(stack, 2);
    assert.equal(s.available, '2.0.0', 'status shows it');
    assert.equal(s.current, '1.0.0', 'and nothing is applied');
    assert.equal(await stack.appVersion(), '1.0.0');
    assert.ok(!stack.installedVersions().includes('2.0.0'), 'not even downloaded');

    // Two at once (the download is held open 1.5 s, so the first is surely still running).
    const [a, b] = await Promise.all([stack.api('POST', '/api/update', {}), stack.api('POST', '/api/update', {})]);
    const [won, lost] = a.status === 202 ? [a, b] : [b, a];
    assert.equal(won.status, 202, `one request is accepted: ${a.text} | ${b.text}`);
    assert.equal(lost.status, 409, `the other is refused: ${lost.text}`);
    assert.match(lost.json.error, /already in progress/);
    assert.equal(lost.json.action.state, 'failed');
    const id = (won.json as ActionInfo).id;
    s = await stack.waitStatus('the accepted update to finish', (x) => x.actions.some((q) => q.id === id && q.state !== 'running'));
    const done = s.actions.find((q) => q.id === id)!;
    assert.equal(done.state, 'done', done.message);
    assert.match(done.message ?? '', /updated to 2\.0\.0/);
    await stack.waitAppVersion('2.0.0');
    s = (await stack.status())!;
    assert.equal(count(s, 'update', '2.0.0'), 1, 'exactly one update ran');
    assert.equal(count(s, 'download', '2.0.0'), 1, 'and one download');
    assertCoherent(stack, s, '2.0.0');
  });

  test('named downgrade works; a plain check then goes forward to the newest unblocked release; unblock lets a version be taken again', async () => {
    // Polls only when asked (the first one comes at start).
    const { stack, rel } = await newStack('e2e-named', { MOLT_INTERVAL: '1h' });
    const flag = path.join(rel, '..', `crash-flag-${path.basename(rel)}`);
    dirs.push(flag);
    writeAppRelease(rel, '1.0.0');
    stack.start();
    await stack.waitAppVersion('1.0.0');
    await stack.waitStatus('1.0.0 committed', committed('1.0.0'));

    writeAppRelease(rel, '1.1.0');
    assert.equal((await stack.api('POST', '/api/check')).status, 202);
    await stack.waitStatus('1.1.0 committed', committed('1.1.0'));

    fs.writeFileSync(flag, 'crash\n');
    writeAppRelease(rel, '1.2.0', { crashIfExists: flag });
    assert.equal((await stack.api('POST', '/api/check')).status, 202);
    let s = await stack.waitStatus('1.2.0 blocked', (x) => x.phase === 'idle' && x.blocked.some((b) => b.version === '1.2.0'));
    assert.equal(s.current, '1.1.0');

    // A named downgrade: by name, so allowed.
    const down = await stack.cli(['update', '1.0.0']);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /updated to 1\.0\.0/);
    await stack.waitAppVersion('1.0.0');
    s = await stack.waitStatus('1.0.0 committed again', (x) => x.phase === 'idle' && x.current === '1.0.0');
    assertCoherent(stack, s, '1.0.0');

    // A plain check afterwards: the newest release the policy allows is 1.1.0 (1.2.0 is blocked).
    // It goes forward to 1.1.0, never to the blocked 1.2.0 and never below 1.0.0.
    const c = await stack.cli(['check']);
    assert.equal(c.code, 0, c.stderr);
    await stack.waitAppVersion('1.1.0');
    s = await stack.waitStatus('1.1.0 current after the check', (x) => x.phase === 'idle' && x.current === '1.1.0' && x.actions.every((q) => q.state !== 'running'));
    assertCoherent(stack, s, '1.1.0');
    assert.equal(count(s, 'update', '1.2.0'), 1, 'the blocked 1.2.0 was not tried again');

    // Unblock (the CLI): 1.2.0 no longer crashes, is taken again and committed.
    fs.rmSync(flag);
    const ub = await stack.cli(['unblock', '1.2.0']);
    assert.equal(ub.code, 0, ub.stderr);
    await stack.waitAppVersion('1.2.0');
    s = await stack.waitStatus('1.2.0 committed', committed('1.2.0'));
    assert.deepEqual(s.blocked, []);
    assert.equal(count(s, 'update', '1.2.0'), 2, 'tried a second time after the unblock');
    assert.ok(s.history.some((h) => h.event === 'unblock' && h.version === '1.2.0'));
    assertCoherent(stack, s, '1.2.0');
    const again = await stack.cli(['unblock', '1.2.0']);
    assert.equal(again.code, 1, 'unblocking what is not blocked fails');
  });

  test('exit 42 while an update is staged outside the schedule window: applied at once', async () => {
    const days = ['su', 'mo', 'tu', 'we', 'th', 'fr', 'sa'];
    const closedDay = days[(new Date().getDay() + 3) % 7]!;
    const { stack, rel } = await newStack('e2e-exit42', { MOLT_SCHEDULE: `${closedDay} 0-24` });
    const flag = path.join(rel, '..', `exit42-${path.basename(rel)}`);
    dirs.push(flag);
    writeAppRelease(rel, '1.0.0', { exit42If: flag });
    stack.start();
    // With nothing installed there is nothing to protect: the first install ignores the window.
    await stack.waitAppVersion('1.0.0');
    let s = await stack.waitStatus('1.0.0 committed', committed('1.0.0'));

    writeAppRelease(rel, '2.0.0', { exit42If: flag });
    s = await stack.waitStatus('2.0.0 staged', (x) => x.phase === 'staged' && x.available === '2.0.0' && /schedule/.test(x.waiting ?? ''));
    assert.ok(stack.installedVersions().includes('2.0.0'), 'downloaded and installed while 1.0.0 runs');
    s = await polls(stack, 2);
    assert.equal(s.current, '1.0.0', 'the closed window holds it');
    assert.equal(await stack.appVersion(), '1.0.0');

    fs.writeFileSync(flag, '');
    await stack.waitAppVersion('2.0.0');
    s = await stack.waitStatus('2.0.0 committed', committed('2.0.0'));
    assertCoherent(stack, s, '2.0.0');
    assert.ok(!s.history.some((h) => h.event === 'crash-loop'), 'exit 42 is a request, not a crash');
  });
});

describe('updater edges: trials', { timeout: 180_000 }, () => {
  test('MOLT_READY=explicit: a release that never reports ready is rolled back at the deadline; one that runs `molt ready` is committed before it', async () => {
    const { stack, rel } = await newStack('e2e-explicit', { MOLT_READY: 'explicit', MOLT_TRIAL: '8s' });
    writeAppRelease(rel, '1.0.0', { ready: true });
    stack.start();
    let s = await stack.waitStatus('1.0.0 committed', committed('1.0.0'));
    assert.equal(s.history.find((h) => h.event === 'commit' && h.version === '1.0.0')?.detail, 'reported ready');

    // 1.1.0 hangs: it never listens and never reports ready.
    writeAppRelease(rel, '1.1.0', { listen: false });
    const onTrial = await stack.waitStatus('1.1.0 on trial', (x) => x.trial?.version === '1.1.0');
    assert.equal(onTrial.trial!.readyMode, 'explicit');
    s = await stack.waitStatus('1.1.0 blocked', (x) => x.phase === 'idle' && x.blocked.some((b) => b.version === '1.1.0'), 30_000);
    const block = s.blocked.find((b) => b.version === '1.1.0')!;
    assert.match(block.reason, /did not report ready/);
    const rb = s.history.find((h) => h.event === 'rollback' && h.from === '1.1.0')!;
    assert.ok(Date.parse(rb.at) >= Date.parse(onTrial.trial!.startedAt) + 8000 - 250, 'rolled back at the deadline, not before');
    await stack.waitAppVersion('1.0.0');
    assertCoherent(stack, s, '1.0.0');

    // 1.2.0 runs `molt ready` once it listens.
    writeAppRelease(rel, '1.2.0', { ready: true });
    const trial2 = await stack.waitStatus('1.2.0 on trial', (x) => x.trial?.version === '1.2.0');
    s = await stack.waitStatus('1.2.0 committed', committed('1.2.0'));
    const commit = s.history.find((h) => h.event === 'commit' && h.version === '1.2.0')!;
    assert.equal(commit.detail, 'reported ready');
    assert.ok(Date.parse(commit.at) < Date.parse(trial2.trial!.deadlineAt), 'committed before the deadline');
    assertCoherent(stack, s, '1.2.0');
    assert.equal(await stack.appVersion(), '1.2.0');
  });

  test('a release that dies after its trial is not rolled back; the crash loop is reported', async () => {
    const { stack, rel } = await newStack('e2e-late-death', { MOLT_TRIAL: '2s' });
    writeAppRelease(rel, '1.0.0');
    stack.start();
    await stack.waitStatus('1.0.0 committed', committed('1.0.0'));
    writeAppRelease(rel, '1.1.0', { exitAfterMs: 4000, exitCode: 1 });
    let s = await stack.waitStatus('1.1.0 committed', committed('1.1.0'));
    assert.equal(s.history.find((h) => h.event === 'commit' && h.version === '1.1.0')?.detail, 'stayed up for the trial');
    s = await stack.waitStatus('a crash loop reported', (x) => x.history.some((h) => h.event === 'crash-loop'), 60_000);
    const loop = s.history.find((h) => h.event === 'crash-loop')!;
    assert.equal(loop.version, '1.1.0');
    assert.match(loop.detail ?? '', /not rolled back/);
    assert.deepEqual(s.blocked, [], 'nothing blocked');
    assert.ok(!s.history.some((h) => h.event === 'rollback'), 'no rollback');
    assert.equal(s.current, '1.1.0');
    assert.equal(stack.current(), '1.1.0');
    assert.equal(stack.versionFileText(), '1.1.0');
    await stack.waitAppVersion('1.1.0', 15_000);
  });
});

describe("updater edges: the seeds' mistakes", { timeout: 120_000 }, () => {
  test('/api/update answers 202 with an action to follow; a failed download or extraction never changes /version or current', async () => {
    const { stack, rel } = await newStack('e2e-seeds', { MOLT_POLICY: 'manual' });
    packHello('1.0.0', rel);
    stack.start();
    await stack.waitStatus('1.0.0 available', (x) => x.available === '1.0.0');
    assert.equal((await stack.cli(['update'])).code, 0);
    await stack.waitAppVersion('1.0.0');

    // 202 and an id, while nothing has happened yet; the result shows up under that id.
    packHello('1.1.0', rel);
    const r = await stack.api('POST', '/api/update', { version: '1.1.0' });
    assert.equal(r.status, 202, r.text);
    const action = r.json as ActionInfo;
    assert.equal(action.state, 'running');
    assert.equal(action.kind, 'update');
    assert.match(action.id, /\S/);
    assert.equal(await stack.appVersion(), '1.0.0', 'accepted is not done');
    let s = await stack.waitStatus('the action to finish', (x) => x.actions.some((a) => a.id === action.id && a.state !== 'running'));
    const done = s.actions.find((a) => a.id === action.id)!;
    assert.equal(done.state, 'done');
    assert.match(done.message ?? '', /updated to 1\.1\.0/);
    assert.equal(await stack.appVersion(), '1.1.0');

    // 1.2.0's tarball no longer matches SHA256SUMS (corrupted after packing).
    const tgz = packHello('1.2.0', rel);
    const bytes = fs.readFileSync(tgz);
    bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
    fs.writeFileSync(tgz, bytes);
    const bad = await stack.api('POST', '/api/update', { version: '1.2.0' });
    assert.equal(bad.status, 202);
    s = await stack.waitStatus('the failed action', (x) => x.actions.some((a) => a.id === bad.json.id && a.state !== 'running'));
    const failed = s.actions.find((a) => a.id === bad.json.id)!;
    assert.equal(failed.state, 'failed');
    assert.match(failed.message ?? '', /1\.2\.0/);
    assert.match(failed.message ?? '', /sha256|checksum|digest/i);
    assert.equal(s.phase, 'idle');
    assert.ok(!stack.installedVersions().includes('1.2.0'), 'nothing reached versions/');
    assertCoherent(stack, s, '1.1.0');
    assert.equal(await stack.appVersion(), '1.1.0', 'the app was never stopped');

    // 1.3.0 matches its checksum but is not a gzip archive past its first bytes: extraction fails.
    const tgz3 = packHello('1.3.0', rel);
    const good = fs.readFileSync(tgz3);
    fs.writeFileSync(tgz3, Buffer.concat([good.subarray(0, 20), Buffer.alloc(200, 0x41)]));
    // Re-pack SHA256SUMS for the broken file, as a broken release pipeline would.
    const { createHash } = await import('node:crypto');
    const sums = fs.readFileSync(path.join(rel, 'SHA256SUMS'), 'utf8').split('\n').filter((l) => l && !l.endsWith(' 1.3.0.tar.gz'));
    sums.push(`${createHash('sha256').update(fs.readFileSync(tgz3)).digest('hex')}  1.3.0.tar.gz`);
    fs.writeFileSync(path.join(rel, 'SHA256SUMS'), sums.join('\n') + '\n');
    const bad3 = await stack.api('POST', '/api/update', { version: '1.3.0' });
    assert.equal(bad3.status, 202);
    s = await stack.waitStatus('the failed extraction', (x) => x.actions.some((a) => a.id === bad3.json.id && a.state !== 'running'));
    assert.equal(s.actions.find((a) => a.id === bad3.json.id)!.state, 'failed');
    assert.ok(!stack.installedVersions().includes('1.3.0'));
    assertCoherent(stack, s, '1.1.0');
    assert.equal(await stack.appVersion(), '1.1.0');
  });
});
