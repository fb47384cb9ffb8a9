// The wall clock jumping hours back or forward under a running molt (an NTP
// step, a VM resumed, a host whose RTC was wrong): the trial's stay-up clock,
// the download-failure backoff and MOLT_DELAY must not move with it, because
// they are measured on the monotonic clock. The whole "container" (molt init
// as PID 1 of a PID namespace, the updater, the app) runs with Debian's
// libfaketime preloaded; the test rewrites its timestamp file to move
// CLOCK_REALTIME by +5 h / -5 h while CLOCK_MONOTONIC keeps going
// (FAKETIME_DONT_FAKE_MONOTONIC=1). Every case first checks that the jump
// really reached the updater (the times it reports are hours off), so that a
// preload that silently did nothing cannot make the test pass.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { sleep, tmpdir, waitFor } from '../helpers/molt.js';
import { Stack, writeAppRelease } from './updater-stack.js';

const HOUR = 3600_000;

/** Debian's libfaketime (package faketime): /usr/lib/<multiarch>/faketime/libfaketime.so.1. */
function libfaketime(): string {
  const candidates = fs
    .readdirSync('/usr/lib')
    .map((d) => path.join('/usr/lib', d, 'faketime', 'libfaketime.so.1'))
    .filter((f) => fs.existsSync(f));
  if (!candidates[0]) throw new Error('libfaketime.so.1 not found under /usr/lib/*/faketime: install Debian package faketime (npm test does, as root)');
  return candidates[0];
}

/** A wall-clock offset that every process started with env() follows from its next clock_gettime on. */
class FakeClock {
  readonly file: string;
  offsetMs = 0;

  constructor(dir: string) {
    this.file = path.join(dir, 'faketime');
    this.set('+0');
  }

  env(): Record<string, string> {
    return {
      LD_PRELOAD: libfaketime(),
      FAKETIME_TIMESTAMP_FILE: this.file,
      // Read the file at every call, not once a few seconds: the jump is immediate.
      FAKETIME_NO_CACHE: '1',
      // Only CLOCK_REALTIME moves: performance.now(), hrtime and timers stay real.
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    };
  }

  /** '+5h', '-5h', '+0': written beside and renamed in, so no reader sees a half-written file. */
  set(spec: '+5h' | '-5h' | '+0'): void {
    fs.writeFileSync(this.file + '.new', `${spec}\n`);
    fs.renameSync(this.file + '.new', this.file);
    this.offsetMs = spec === '+0' ? 0 : (spec.startsWith('-') ? -5 : 5) * HOUR;
  }
}

function phaseOf(stack: Stack): { phase: string; target?: string } | undefined {
  try {
    const s = stack.state();
    return { phase: s.phase, target: s.target?.version };
  } catch {
    return undefined;
  }
}

/** Wait until state.json says `version` is on trial (sampled often: the trial lasts 3 s). */
function waitTrial(stack: Stack, version: string): Promise<unknown> {
  return waitFor(`${version} on trial`, () => {
    const p = phaseOf(stack);
    return p?.phase === 'trial' && p.target === version;
  }, 30_000, 20).catch((err: Error) => {
    throw new Error(`${err.message}\n${stack.logs().slice(-6000)}`);
  });
}

/** Wait until the updater's own wall clock shows the jump: every poll, trial or not, stamps lastCheck.at with it. */
function seesJump(stack: Stack, clock: FakeClock): Promise<unknown> {
  const sign = Math.sign(clock.offsetMs);
  return stack.waitStatus(`the ${sign > 0 ? '+' : '-'}5 h jump to reach the updater`, (x) => x.lastCheck !== undefined && sign * (Date.parse(x.lastCheck.at) - Date.now()) > 4 * HOUR, 10_000);
}

function committed(stack: Stack, version: string, timeoutMs = 20_000) {
  return stack.waitStatus(`${version} committed`, (x) => x.phase === 'idle' && x.history.some((h) => h.event === 'commit' && h.version === version), timeoutMs);
}

describe('libfaketime moves the wall clock of node, not its monotonic clock', () => {
  test('Date.now() follows the timestamp file; performance.now(), hrtime and setTimeout do not', () => {
    const dir = tmpdir('faketime-probe');
    try {
      const clock = new FakeClock(dir);
      const probe = `
        import fs from 'node:fs';
        const f = process.env.FAKETIME_TIMESTAMP_FILE;
        const set = (s) => { fs.writeFileSync(f + '.new', s + '\\n'); fs.renameSync(f + '.new', f); };
        const d0 = Date.now(), p0 = performance.now(), h0 = process.hrtime.bigint();
        set('+5h');
        const d1 = Date.now(), p1 = performance.now(), h1 = process.hrtime.bigint();
        set('-5h');
        const t = performance.now();
        await new Promise((r) => setTimeout(r, 200));
        const d2 = Date.now(), p2 = performance.now();
        console.log(JSON.stringify({ wallPlus: d1 - d0, monoPlus: p1 - p0, hrPlus: Number(h1 - h0) / 1e6, wallMinus: d2 - d1, monoMinus: p2 - p1, timerMono: p2 - t }));
      `;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { env: { ...process.env, ...clock.env() }, encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 0, r.stderr);
      const m = JSON.parse(r.stdout.trim()) as Record<string, number>;
      console.log(`faketime probe: ${r.stdout.trim()}`);
      assert.ok(m.wallPlus! > 4.9 * HOUR && m.wallPlus! < 5.1 * HOUR, `Date.now() jumped +5 h (${m.wallPlus} ms)`);
      assert.ok(m.wallMinus! < -9.9 * HOUR && m.wallMinus! > -10.1 * HOUR, `Date.now() jumped -10 h (${m.wallMinus} ms)`);
      for (const k of ['monoPlus', 'hrPlus', 'monoMinus']) assert.ok(m[k]! >= 0 && m[k]! < 60_000, `${k} did not jump (${m[k]} ms)`);
      assert.ok(m.timerMono! >= 150 && m.timerMono! < 60_000, `a 200 ms setTimeout waited on the monotonic clock (${m.timerMono} ms)`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('updater under wall-clock jumps: trial, rollback and download backoff', () => {
  let stack: Stack;
  let clock: FakeClock;
  let releases: string;

  before(async () => {
    stack = await Stack.create({ env: {}, label: 'clock' });
    releases = path.join(stack.root, 'releases');
    fs.mkdirSync(releases);
    clock = new FakeClock(stack.root);
    writeAppRelease(releases, '1.0.0');
    stack.start({ MOLT_DIR: releases, MOLT_TRIAL: '3s', MOLT_INTERVAL: '1s', MOLT_CRASH_LIMIT: '2', ...clock.env() });
    await stack.waitAppVersion('1.0.0', 60_000);
    await committed(stack, '1.0.0', 30_000);
  });
  after(async () => {
    await stack?.dispose();
  });

  test('(a) +5 h during a 3 s trial: no early commit; it commits after staying up 3 s', { timeout: 90_000 }, async () => {
    clock.set('+0');
    writeAppRelease(releases, '2.0.0');
    await waitTrial(stack, '2.0.0');
    clock.set('+5h');
    const jumped = performance.now();
    await seesJump(stack, clock);
    // A wall-clock trial would commit at its next 100 ms poll; a monotonic one is still on trial.
    await sleep(Math.max(0, 1000 - (performance.now() - jumped)));
    const mid = await stack.status();
    assert.equal(mid?.phase, 'trial', `still on trial 1 s after the jump\n${stack.logs().slice(-4000)}`);
    assert.equal(mid?.trial?.version, '2.0.0');
    assert.ok(!mid?.history.some((h) => h.event === 'commit' && h.version === '2.0.0'), 'not committed early');
    // The deadline it shows, in its (jumped) wall time, is within the 3 s trial of its own now, not 5 h behind it.
    const aheadOfFakeNow = Date.parse(mid!.trial!.deadlineAt) - (Date.now() + clock.offsetMs);
    assert.ok(aheadOfFakeNow > -1000 && aheadOfFakeNow < 4000, `the deadline shown stays within the trial (${aheadOfFakeNow} ms ahead of the updater's now)`);
    const s = await committed(stack, '2.0.0');
    console.log(`(a) committed ${Math.round(performance.now() - jumped)} ms after the +5 h jump (trial 3 s)`);
    assert.equal(s.current, '2.0.0');
    assert.equal(s.blocked.length, 0);
    assert.match(s.history.find((h) => h.event === 'commit' && h.version === '2.0.0')?.detail ?? '', /stayed up/);
    assert.equal(await stack.appVersion(), '2.0.0');
  });

  test('(b) -5 h during a 3 s trial: the trial still ends, no hang, and commits', { timeout: 90_000 }, async () => {
    clock.set('+0');
    writeAppRelease(releases, '3.0.0');
    await waitTrial(stack, '3.0.0');
    clock.set('-5h');
    const jumped = performance.now();
    await seesJump(stack, clock);
    await sleep(Math.max(0, 1000 - (performance.now() - jumped)));
    assert.equal((await stack.status())?.phase, 'trial', 'still on trial 1 s after the jump');
    // A wall-clock trial would wait 5 h more; bounded here at 20 s.
    const s = await committed(stack, '3.0.0', 20_000);
    console.log(`(b) committed ${Math.round(performance.now() - jumped)} ms after the -5 h jump (trial 3 s)`);
    assert.equal(s.current, '3.0.0');
    assert.equal(s.previous, '2.0.0');
    assert.equal(await stack.appVersion(), '3.0.0');
    // The history is stamped with the wall clock of the moment: the commit carries the faked time.
    const commit = s.history.find((h) => h.event === 'commit' && h.version === '3.0.0')!;
    assert.ok(Date.parse(commit.at) < Date.now() - 4 * HOUR, `the commit was stamped with the jumped clock (${commit.at})`);
  });

  test('(c) a release that crashes while the clock jumps +5 h, then -5 h, is rolled back and blocked', { timeout: 90_000 }, async () => {
    clock.set('+0');
    // Up 1 s, then exit 1: a 3 s stay-up clock on the wall would "see" 5 h of uptime at the jump and commit it.
    writeAppRelease(releases, '4.0.0', { exitAfterMs: 1000, exitCode: 1 });
    await waitTrial(stack, '4.0.0');
    clock.set('+5h');
    await seesJump(stack, clock);
    const afterOne = await stack.waitStatus(
      'a first crash (or a verdict)',
      (x) => (x.trial?.version === '4.0.0' && x.trial.crashes >= 1) || x.history.some((h) => (h.event === 'commit' || h.event === 'block') && h.version === '4.0.0'),
      20_000,
    );
    assert.ok(!afterOne.history.some((h) => h.event === 'commit' && h.version === '4.0.0'), 'not committed by the forward jump');
    clock.set('-5h');
    await seesJump(stack, clock);
    const s = await stack.waitStatus('4.0.0 blocked', (x) => x.phase === 'idle' && x.blocked.some((b) => b.version === '4.0.0'), 30_000);
    assert.ok(!s.history.some((h) => h.event === 'commit' && h.version === '4.0.0'), '4.0.0 was never committed');
    assert.match(s.blocked.find((b) => b.version === '4.0.0')!.reason, /crashed 2 times during its trial/);
    assert.ok(s.history.some((h) => h.event === 'rollback' && h.from === '4.0.0' && h.version === '3.0.0'), 'rolled back from 4.0.0 to 3.0.0');
    assert.equal(s.current, '3.0.0');
    assert.equal(stack.current(), '3.0.0', 'current resolves to 3.0.0 on disk');
    await stack.waitAppVersion('3.0.0', 15_000);
    assert.equal(stack.versionFileText(), '3.0.0');
    // Blocked for good: a few polls later (on the timer, whatever the wall says) it is not tried again.
    const polls = (stack.m!.out().match(/phase from=idle to=checking/g) ?? []).length;
    await waitFor('three more polls', () => (stack.m!.out().match(/phase from=idle to=checking/g) ?? []).length >= polls + 3, 15_000);
    const later = await stack.status();
    assert.equal(later?.history.filter((h) => h.event === 'update' && h.version === '4.0.0').length, 1, '4.0.0 was tried once');
    assert.equal(later?.current, '3.0.0');
  });

  test('(d) download-failure backoff: a jump neither makes every poll retry (+5 h) nor stops the retries (-5 h)', { timeout: 90_000 }, async () => {
    clock.set('+0');
    const running = (await stack.status())?.current;
    assert.ok(running, 'a version runs before the failing release appears');
    // Not a gzip archive: every attempt fails in extraction, after the release was listed.
    fs.writeFileSync(path.join(releases, '5.0.0.tar.gz'), 'this is not a release\n');
    const out = () => stack.m!.out();
    // Each poll enters `checking` (debug line); each failed attempt logs its count. One stream, in order.
    const events = (): string[] => {
      const ev: string[] = [];
      for (const line of out().split('\n')) {
        if (/molt: updater: phase from=idle to=checking/.test(line)) ev.push('poll');
        const f = /molt: updater: download failed version=5\.0\.0 .*attempts=(\d+)/.exec(line);
        if (f) ev.push(`fail${f[1]}`);
      }
      return ev;
    };
    const waitFail = (n: number, timeoutMs: number) =>
      waitFor(`failed attempt ${n} at 5.0.0`, () => events().includes(`fail${n}`), timeoutMs, 20).catch((err: Error) => {
        throw new Error(`${err.message}\nevents: ${events().join(' ')}\n${stack.logs().slice(-5000)}`);
      });
    /** Polls that did not retry between attempt n and n+1 (the poll that made n+1 not counted). */
    const skipped = (n: number): number => {
      const ev = events();
      const a = ev.indexOf(`fail${n}`);
      const b = ev.indexOf(`fail${n + 1}`);
      return ev.slice(a + 1, b).filter((e) => e === 'poll').length - 1;
    };

    await waitFail(1, 20_000);
    // Backoff after attempt 1: two intervals, so the next poll must not retry. Jump forward now.
    clock.set('+5h');
    await seesJump(stack, clock);
    await waitFail(2, 20_000);
    // Counts of polls, not durations: the +5 h jump did not make the next poll retry.
    const s1 = skipped(1);
    assert.ok(s1 >= 1, `after the +5 h jump at least one poll passed without a retry (${s1}; events: ${events().join(' ')})`);
    assert.ok(s1 <= 4, `attempt 2 came within a few polls (${s1})`);
    // Backoff after attempt 2: four intervals. Jump back 10 h: a wall-clock backoff would wait 10 h.
    clock.set('-5h');
    await seesJump(stack, clock);
    await waitFail(3, 30_000);

    const s2 = skipped(2);
    console.log(`(d) events: ${events().join(' ')}`);
    console.log(`(d) polls without a retry: ${s1} after attempt 1 (backoff 2 intervals), ${s2} after attempt 2 (4 intervals)`);
    // The -5 h jump did not stop the retries (attempt 3 came, within the bound waited) nor make them eager.
    assert.ok(s2 >= 1 && s2 <= 6, `attempt 3 came after a backoff of a few polls (${s2})`);
    const st = await stack.status();
    assert.equal(st?.current, running, 'the running version is untouched by the failing release');
    assert.match(st?.waiting ?? '', /5\.0\.0 failed \d+ times?; retrying later/);
    assert.deepEqual(stack.stagingEntries(), [], 'no staging debris from failed attempts');
  });
});

describe('MOLT_DELAY under wall-clock jumps', () => {
  let stack: Stack;
  let clock: FakeClock;
  let releases: string;

  before(async () => {
    stack = await Stack.create({ env: {}, label: 'clock-delay' });
    releases = path.join(stack.root, 'releases');
    fs.mkdirSync(releases);
    clock = new FakeClock(stack.root);
    writeAppRelease(releases, '1.0.0');
    // A short trial: this block is about the delay, not the trial.
    stack.start({ MOLT_DIR: releases, MOLT_DELAY: '6s', MOLT_TRIAL: '1s', MOLT_INTERVAL: '1s', ...clock.env() });
    // The first install is not delayed (nothing runs yet).
    await stack.waitAppVersion('1.0.0', 60_000);
    await committed(stack, '1.0.0', 30_000);
  });
  after(async () => {
    await stack?.dispose();
  });

  test('+5 h after discovery: the release is not applied before the delay has passed', { timeout: 90_000 }, async () => {
    clock.set('+0');
    writeAppRelease(releases, '2.0.0');
    await stack.waitStatus('2.0.0 staged, waiting for the delay', (x) => x.phase === 'staged' && /^delay/.test(x.waiting ?? ''), 20_000);
    clock.set('+5h');
    const jumped = performance.now();
    await seesJump(stack, clock);
    // The gate is looked at again every interval: a wall-clock delay would be over at the next look.
    await sleep(Math.max(0, 2500 - (performance.now() - jumped)));
    const mid = await stack.status();
    assert.equal(mid?.phase, 'staged', `still staged 2.5 s after the jump\n${stack.logs().slice(-4000)}`);
    assert.equal(mid?.current, '1.0.0');
    assert.match(mid?.waiting ?? '', /^delay: applies after /);
    assert.equal(await stack.appVersion(), '1.0.0');
    const s = await committed(stack, '2.0.0', 30_000);
    assert.equal(s.current, '2.0.0');
  });

  test('-5 h after discovery: the release is still applied once the delay has passed (not 5 h later)', { timeout: 90_000 }, async () => {
    clock.set('+0');
    writeAppRelease(releases, '3.0.0');
    await stack.waitStatus('3.0.0 staged, waiting for the delay', (x) => x.phase === 'staged' && /^delay/.test(x.waiting ?? ''), 20_000);
    clock.set('-5h');
    await seesJump(stack, clock);
    // Bounded: a wall-clock delay would now end 5 h from here.
    const s = await committed(stack, '3.0.0', 30_000);
    assert.equal(s.current, '3.0.0');
    assert.equal(await stack.appVersion(), '3.0.0');
  });
});
