// Failures of an update's steps, end to end under molt init with a local
// release directory (MOLT_DIR). Each step that fails is a transition with a way
// out, never a phase left behind:
// - a stop that outlasts MOLT_STOP_TIMEOUT (a slow `finish`), at the first
//   install and at an update: the old version runs again, the update is retried
//   later, and the real cause is logged;
// - state.json that cannot be written (MOLT_HOME on a full tmpfs) between
//   stopping and swapping, and during a crashing release's trial: the app keeps
//   running what `current` says, and once space is freed the update (or the
//   rollback) completes; no temp file is left behind.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { UpdaterStatus } from '../../src/api/types.js';
import { tmpdir, waitFor } from '../helpers/molt.js';
import { Stack, writeAppRelease } from './updater-stack.js';

const stacks: Stack[] = [];
const dirs: string[] = [];
const mounts: string[] = [];

after(async () => {
  for (const s of stacks) await s.stop();
  for (const m of mounts) spawnSync('umount', ['-l', m]);
  for (const s of stacks) await s.dispose();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function newStack(label: string, env: Record<string, string> = {}): Promise<{ stack: Stack; rel: string }> {
  const rel = tmpdir(`${label}-rel`);
  dirs.push(rel);
  const stack = await Stack.create({ label, env: { MOLT_DIR: rel, MOLT_TRIAL: '1s', ...env } });
  stacks.push(stack);
  return { stack, rel };
}

const committed = (v: string) => (s: UpdaterStatus) => s.phase === 'idle' && s.history.some((h) => h.event === 'commit' && h.version === v);
const appStat = (stack: Stack) => {
  try {
    return fs.readFileSync(path.join(stack.services, 'app', 'supervise', 'stat'), 'utf8').trim();
  } catch {
    return undefined;
  }
};
const stuck = /is not in the table/;

describe('a stop that outlasts MOLT_STOP_TIMEOUT (slow finish)', () => {
  test('first install and an update: the old run is started again, the update retried, the cause logged; done once the finish is fast', async () => {
    const { stack, rel } = await newStack('slowstop', { MOLT_STOP_TIMEOUT: '1s' });
    const slow = path.join(stack.root, 'slow-finish');
    fs.writeFileSync(slow, '');
    // runit's finish runs after run has exited; while it runs the service is not down.
    fs.writeFileSync(path.join(stack.services, 'app', 'finish'), `#!/bin/sh\nif [ -e "${slow}" ]; then sleep 5; fi\nexit 0\n`, { mode: 0o755 });
    writeAppRelease(rel, '1.0.0');
    const m = stack.start();

    // First install: the run loop waiting for `current` is the one that cannot be stopped in time.
    await waitFor('the stop to fail', () => /did not stop within 1000 ms, even after KILL/.test(m.out()), 30_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${stack.logs().slice(-4000)}`);
    });
    await waitFor('1.0.0 staged again, its waiting run up again', () => stack.state().phase === 'staged' && stack.state().target?.version === '1.0.0' && appStat(stack) === 'run', 20_000).catch(
      (err: Error) => {
        throw new Error(`${err.message}\nphase ${stack.state().phase}, app ${appStat(stack)}\n${stack.logs().slice(-4000)}`);
      },
    );
    assert.equal(stack.current(), undefined, 'nothing was swapped in');
    fs.rmSync(slow);
    await stack.waitAppVersion('1.0.0', 60_000);
    await stack.waitStatus('1.0.0 committed', committed('1.0.0'), 30_000);

    // An update: the old version answers again after the failed stop, and the update is retried.
    fs.writeFileSync(slow, '');
    const failedBefore = m.out().match(/did not stop within/g)?.length ?? 0;
    writeAppRelease(rel, '2.0.0');
    await waitFor('the stop of 1.0.0 to fail', () => (m.out().match(/did not stop within/g)?.length ?? 0) > failedBefore, 30_000);
    await stack.waitAppVersion('1.0.0', 30_000);
    const s = await stack.waitStatus('2.0.0 staged, waiting for its retry', (x) => x.phase === 'staged' && /failed 1 time/.test(x.waiting ?? ''), 20_000);
    assert.equal(s.current, '1.0.0');
    assert.equal(stack.current(), '1.0.0');
    fs.rmSync(slow);
    await stack.waitAppVersion('2.0.0', 60_000);
    await stack.waitStatus('2.0.0 committed', committed('2.0.0'), 30_000);
    assert.doesNotMatch(m.out(), stuck, 'no phase was ever left behind');
    assert.match(m.out(), /update step failed.*step=stopping/, 'the failed step is logged with its cause');
  });
});

/** A tmpfs of `size` at dir (the test is root). */
function mountTmpfs(dir: string, size: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, `mount tmpfs: ${r.stderr}`);
  mounts.push(dir);
}

/** Fill the file system holding dir to the last byte. */
function fill(dir: string): string {
  const f = path.join(dir, 'fill');
  spawnSync('dd', ['if=/dev/zero', `of=${f}`, 'bs=4k'], { encoding: 'utf8' });
  const r = spawnSync('sh', ['-c', `echo x > "${dir}/probe"`], { encoding: 'utf8' });
  assert.notEqual(r.status, 0, 'the tmpfs is full');
  return f;
}

const tempFiles = (home: string) => fs.readdirSync(home).filter((n) => /^state\.json\..*\.new$/.test(n));

describe('state.json cannot be written (MOLT_HOME on a full tmpfs)', () => {
  test('full between stopping and swapping: the app runs again, and after space is freed the update completes', async () => {
    const pause = path.join(tmpdir('fullswap-pause'), 'pause');
    dirs.push(path.dirname(pause));
    const { stack, rel } = await newStack('fullswap', { MOLT_FAULT_PAUSE: `@${pause}` });
    mountTmpfs(stack.home, '4m');
    writeAppRelease(rel, '1.0.0');
    const m = stack.start();
    await stack.waitAppVersion('1.0.0', 60_000);
    await stack.waitStatus('1.0.0 committed', committed('1.0.0'), 30_000);

    fs.writeFileSync(pause, 'stopping:2000');
    writeAppRelease(rel, '2.0.0');
    await waitFor('stopping 2.0.0', () => stack.state().phase === 'stopping', 30_000);
    const filler = fill(stack.home);
    fs.rmSync(pause);
    // The stop happens, `swapping` cannot be written: the old version must come back.
    await waitFor('the failed write to be logged', () => /ENOSPC/.test(m.out()), 30_000);
    await stack.waitAppVersion('1.0.0', 30_000);
    assert.equal(stack.current(), '1.0.0');
    assert.deepEqual(tempFiles(stack.home), [], 'no temp file of state.json is left behind');
    // Still full: polls go on, the app keeps answering.
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(await stack.appVersion(), '1.0.0');
    assert.doesNotMatch(m.out(), stuck);

    fs.rmSync(filler);
    await stack.waitAppVersion('2.0.0', 60_000);
    await stack.waitStatus('2.0.0 committed', committed('2.0.0'), 30_000);
    const cli = await stack.cli(['rollback']);
    assert.equal(cli.code, 0, `molt rollback works again: ${cli.stdout}${cli.stderr}`);
    await stack.waitAppVersion('1.0.0', 30_000);
    assert.doesNotMatch(m.out(), stuck);
  });

  test("full during a crashing release's trial: rolled back and blocked once space is freed; never shown rolling-back meanwhile", async () => {
    const pause = path.join(tmpdir('fulltrial-pause'), 'pause');
    dirs.push(path.dirname(pause));
    const { stack, rel } = await newStack('fulltrial', { MOLT_FAULT_PAUSE: `@${pause}`, MOLT_TRIAL: '5s' });
    mountTmpfs(stack.home, '4m');
    writeAppRelease(rel, '1.0.0');
    const m = stack.start();
    await stack.waitAppVersion('1.0.0', 60_000);
    await stack.waitStatus('1.0.0 committed', committed('1.0.0'), 30_000);

    fs.writeFileSync(pause, 'trial:1500');
    writeAppRelease(rel, '2.0.0', { exitAfterMs: 300, exitCode: 1 });
    await waitFor('2.0.0 on trial', () => stack.state().phase === 'trial', 30_000);
    const filler = fill(stack.home);
    fs.rmSync(pause);
    await waitFor('the failed write to be logged', () => /ENOSPC/.test(m.out()), 30_000);
    const during = await stack.status();
    assert.notEqual(during?.phase, 'rolling-back', 'the phase shown is what state.json says');
    assert.deepEqual(tempFiles(stack.home), []);

    fs.rmSync(filler);
    const s = await stack.waitStatus('2.0.0 blocked', (x) => x.phase === 'idle' && x.blocked.some((b) => b.version === '2.0.0'), 60_000);
    assert.equal(s.current, '1.0.0');
    await stack.waitAppVersion('1.0.0', 30_000);
    assert.match(s.blocked.find((b) => b.version === '2.0.0')!.reason, /crashed/);
    assert.doesNotMatch(m.out(), stuck);
  });
});
