// issue 11 item 2, end to end with the real pieces together: molt init as PID 1
// of a PID namespace, the example app service marked `essential`, the real
// updater (MOLT_DIR source) holding the app's supervise/hold. A crash during a
// trial and an exit 42 with a release staged are the updater's to handle and
// must not end the container; any other crash of the essential app still does.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { UpdaterStatus } from '../../src/api/types.js';
import { alive, descendantsOf, tmpdir, waitFor, type Running } from '../helpers/molt.js';
import { packHello, Stack, writeAppRelease } from './updater-stack.js';

const stacks: Stack[] = [];
const dirs: string[] = [];
after(async () => {
  for (const s of stacks) await s.dispose();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const committed = (v: string) => (s: UpdaterStatus) => s.phase === 'idle' && s.history.some((h) => h.event === 'commit' && h.version === v);

/** A stack over a fresh release directory, its app service `essential`. */
async function essentialStack(label: string, env: Record<string, string>): Promise<{ s: Stack; rel: string }> {
  const rel = tmpdir(`${label}-rel`);
  dirs.push(rel);
  const s = await Stack.create({ label, env: { MOLT_DIR: rel, ...env } });
  stacks.push(s);
  fs.writeFileSync(path.join(s.services, 'app', 'essential'), '');
  return { s, rel };
}

const running = (m: Running) => m.proc.exitCode === null && m.proc.signalCode === null;

/** Host pid of the process whose command line contains `needle`, under this run of molt. */
async function pidOf(s: Stack, needle: string): Promise<number> {
  const root = await s.m!.moltPid();
  return waitFor(`a process running ${needle}`, () =>
    descendantsOf(root).find((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle);
      } catch {
        return false;
      }
    }),
    10_000,
  );
}

/** The container's end, or a failure after `ms`. */
function ended(m: Running, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return Promise.race([m.exited, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('molt init did not end')), ms).unref())]);
}

describe('essential app and the updater (hold protocol, real pieces)', () => {
  test('a crashing release on trial is rolled back and blocked, the container stays up; then, no update under way, the app crash ends the container with its status', async () => {
    const { s, rel } = await essentialStack('ess-trial', {});
    packHello('1.0.0', rel);
    const m = s.start();
    await s.waitAppVersion('1.0.0', 60_000);
    await s.waitStatus('1.0.0 committed', committed('1.0.0'));

    // 1.1.0 exits 1 300 ms after each start: crashes within its trial.
    packHello('1.1.0', rel, 'crash');
    const st = await s.waitStatus('1.1.0 blocked', (x) => x.phase === 'idle' && x.blocked.some((b) => b.version === '1.1.0'), 60_000);
    assert.ok(running(m), `the container did not end:\n${s.logs().slice(-4000)}`);
    assert.match(st.blocked.find((b) => b.version === '1.1.0')!.reason, /crashed 2 times during its trial/);
    assert.equal(st.current, '1.0.0');
    await s.waitAppVersion('1.0.0');
    assert.ok(st.history.some((h) => h.event === 'rollback' && h.from === '1.1.0' && h.version === '1.0.0'));
    assert.ok(s.state().blocked.some((b) => b.version === '1.1.0' && /crashed/.test(b.reason)), 'state.json holds the block');
    const cliStatus = await s.cli(['status']);
    assert.equal(cliStatus.code, 0, cliStatus.stderr);
    assert.match(cliStatus.stdout, /1\.1\.0/, 'molt status shows the blocked version');
    assert.match(m.err(), /essential service exited during an update \(hold\); restarting it, the container stays up service=app status=1 hold=apply/);
    assert.ok(running(m));

    // Item 2: nothing under way (the hold was released at the rollback's end): the essential promise holds.
    await s.waitStatus('still idle', (x) => x.phase === 'idle');
    const app = await pidOf(s, 'server.mjs');
    process.kill(app, 'SIGKILL');
    const r = await ended(m, 20_000);
    assert.equal(r.code, 128 + 9, 'the container ends with the app status (killed by 9)');
    assert.match(m.err(), /essential service exited, stopping the container service=app status=137/);
  });

  test('exit 42 with a release staged (MOLT_DELAY holds it back): the container stays up and the staged release is applied', async () => {
    const { s, rel } = await essentialStack('ess-42', { MOLT_DELAY: '1h' });
    const ask = path.join(s.root, 'ask-for-update');
    writeAppRelease(rel, '1.0.0', { exit42If: ask });
    const m = s.start();
    await s.waitAppVersion('1.0.0', 60_000);
    await s.waitStatus('1.0.0 committed', committed('1.0.0'));

    writeAppRelease(rel, '2.0.0', { exit42If: ask });
    await s.waitStatus('2.0.0 staged behind MOLT_DELAY', (x) => x.phase === 'staged' && /delay/.test(x.waiting ?? ''));
    fs.writeFileSync(ask, '');
    await s.waitAppVersion('2.0.0', 30_000);
    const st = await s.waitStatus('2.0.0 committed', committed('2.0.0'));
    assert.equal(st.current, '2.0.0');
    assert.ok(running(m), 'exit 42 did not end the container');
    assert.match(m.err(), /restarting it, the container stays up service=app status=42 hold=staged/);
    assert.match(m.out() + m.err(), /app asked for the staged update \(exit 42\)/);
  });

  /** 1.0.0 committed, then 1.1.0 (fine until `flag` exists, then its run exits 3 at once) on a long trial. */
  async function onTrialOfCrashable(label: string): Promise<{ s: Stack; m1: Running; flag: string }> {
    // A long trial, so that the kills land inside it.
    const { s, rel } = await essentialStack(label, { MOLT_TRIAL: '120s' });
    const flag = path.join(s.root, 'crash-now');
    // 1.0.0 reports ready (`molt ready`): committed at once, not after the long trial.
    writeAppRelease(rel, '1.0.0', { ready: true });
    const m1 = s.start();
    await s.waitAppVersion('1.0.0', 60_000);
    await s.waitStatus('1.0.0 committed', committed('1.0.0'));
    const build = tmpdir(`${label}-build`);
    dirs.push(build);
    writeAppRelease(build, '1.1.0');
    fs.writeFileSync(path.join(build, '1.1.0', 'run'), `#!/bin/sh\nif [ -e "${flag}" ]; then echo "1.1.0: crashing"; exit 3; fi\nexec "${process.execPath}" ./app.mjs\n`, { mode: 0o755 });
    fs.renameSync(path.join(build, '1.1.0'), path.join(rel, '1.1.0'));
    await s.waitAppVersion('1.1.0', 60_000);
    await waitFor('1.1.0 on trial', () => s.state().phase === 'trial', 10_000);
    return { s, m1, flag };
  }

  /** kill -9 the updater (its flock goes with it) and wait until it is gone. */
  async function killUpdater(s: Stack): Promise<void> {
    const updater = await waitFor('the updater', () => s.updaterPid(), 5000);
    process.kill(updater, 'SIGKILL');
    await waitFor('the updater gone', () => !alive(updater), 5000);
  }

  async function blockedAndBack(s: Stack, m: Running): Promise<void> {
    const st = await s.waitStatus('1.1.0 blocked', (x) => x.phase === 'idle' && x.blocked.some((b) => b.version === '1.1.0'), 60_000).catch((err: Error) => {
      throw new Error(`${running(m) ? '' : `molt init ended: ${m.proc.exitCode}\n`}${err.message}`);
    });
    assert.ok(running(m), 'the container stays up');
    assert.match(st.blocked.find((b) => b.version === '1.1.0')!.reason, /crashed/);
    assert.equal(st.current, '1.0.0');
    await s.waitAppVersion('1.0.0');
    assert.ok(s.state().blocked.some((b) => b.version === '1.1.0'), 'state.json holds the block');
    assert.match(m.err(), /essential service exited during an interrupted update \(stale hold\); restarting it for the updater to resume/);
    assert.ok(running(m));
  }

  test('kill -9 of the updater during a crashing release\'s trial, then the app crashes: the container stays up until the restarted updater resumes the trial, rolls back and blocks', async () => {
    const { s, m1, flag } = await onTrialOfCrashable('ess-updkill');
    fs.writeFileSync(flag, '');
    await killUpdater(s);
    // At once, before the supervisor has the updater back: the essential app dies with nobody holding the hold.
    process.kill(await pidOf(s, 'app.mjs'), 'SIGKILL');
    await blockedAndBack(s, m1);
  });

  test('the container killed during a crashing release\'s trial (updater kill -9 first): after the restart the trial resumes, the release is rolled back and blocked, the container stays up', async () => {
    const { s, m1, flag } = await onTrialOfCrashable('ess-restart');
    // The updater dies, then the whole container (docker kill, OOM, power loss); the word `apply` stays in the file.
    fs.writeFileSync(flag, '');
    await killUpdater(s);
    process.kill(await m1.moltPid(), 'SIGKILL');
    await m1.exited;
    assert.equal(s.state().phase, 'trial', 'the journal was left in the trial');
    // The container restarts over the same MOLT_HOME and service directories: 1.1.0 exits at once,
    // before the updater is up to take the hold (before the fix: every start ended the same way).
    const m2 = s.start();
    await blockedAndBack(s, m2);
  });
});
