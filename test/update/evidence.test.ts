// Evidence that a process runs a release, read from /proc of real processes.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isRunScript, runsRelease, showsRelease } from '../../src/update/evidence.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-evidence-'));
const release = path.join(root, 'versions', '1.0.0');
const elsewhere = path.join(root, 'service');
fs.mkdirSync(release, { recursive: true });
fs.mkdirSync(elsewhere);
fs.symlinkSync('versions/1.0.0', path.join(root, 'current'));
const kids: ChildProcess[] = [];
after(() => {
  for (const k of kids) k.kill('SIGKILL');
  fs.rmSync(root, { recursive: true, force: true });
});

function run(cmd: string, args: string[], cwd: string): number {
  const p = spawn(cmd, args, { cwd, stdio: 'ignore' });
  kids.push(p);
  return p.pid!;
}

async function until(probe: () => boolean): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (probe()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

test('pure: cwd, exe, a path argument (also after =) or an open file inside the release; nothing else', () => {
  const none = { args: [], files: [] };
  assert.ok(showsRelease({ ...none, cwd: release }, release));
  assert.ok(showsRelease({ ...none, cwd: `${release}/sub` }, release));
  assert.ok(!showsRelease({ ...none, cwd: `${release}-old` }, release), 'a sibling with the same prefix is not inside');
  assert.ok(showsRelease({ ...none, exe: `${release}/bin/app (deleted)` }, release));
  assert.ok(showsRelease({ cwd: elsewhere, args: ['node', '../versions/1.0.0/app.mjs'], files: [] }, release));
  assert.ok(showsRelease({ cwd: '/', args: ['app', `--config=${release}/c.toml`], files: [] }, release));
  assert.ok(showsRelease({ cwd: '/', args: ['app'], files: ['socket:[123]', `${release}/data.db`] }, release));
  assert.ok(!showsRelease({ cwd: elsewhere, exe: '/bin/sh', args: ['sh', './run'], files: ['/dev/null'] }, release), 'a run script waiting elsewhere');
  // Through `current`: the resolver maps it to the version directory.
  const resolve = (p: string) => p.replace(`${root}/current`, release);
  assert.ok(showsRelease({ cwd: '/', args: ['sh', `${root}/current/run`], files: [] }, release, resolve));
});

test('real processes: a process in the release, and a child of one that is not', async () => {
  const inside = run('sleep', ['30'], release);
  assert.ok(await until(() => runsRelease(inside, release) === true), 'cwd in the release');
  const outside = run('sleep', ['30'], elsewhere);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(runsRelease(outside, release), false, 'cwd elsewhere, nothing open in it');
  // A wrapper that stays elsewhere and starts the app in the release (through `current`).
  const wrapper = run('sh', ['-c', `(cd ${root}/current && exec sleep 30); true`], elsewhere);
  assert.ok(await until(() => runsRelease(wrapper, release) === true), 'a descendant runs it');
  // exec through a path argument: sh reads its script from the release.
  fs.writeFileSync(path.join(release, 'run'), '#!/bin/sh\nsleep 30\n', { mode: 0o755 });
  const script = run('sh', [path.join(root, 'current', 'run')], elsewhere);
  assert.ok(await until(() => runsRelease(script, release) === true), 'its script argument is in the release');
  assert.equal(runsRelease(0, release), false);
});

test('pure: still the run script (exe, argv[0..1] or an open file), or exec\'d away from it', () => {
  const runFile = `${elsewhere}/run`;
  assert.ok(isRunScript({ cwd: elsewhere, exe: '/bin/dash', args: ['/bin/sh', './run'], files: [] }, runFile));
  assert.ok(isRunScript({ cwd: '/tmp', exe: '/bin/dash', args: ['/bin/sh', './run'], files: [] }, runFile), './run after a cd');
  assert.ok(isRunScript({ cwd: '/', exe: '/bin/bash', args: ['bash'], files: [runFile] }, runFile), 'a shell holding its script open');
  assert.ok(isRunScript({ cwd: '/', exe: runFile, args: ['run'], files: [] }, runFile), 'a compiled run');
  assert.ok(!isRunScript({ cwd: elsewhere, exe: '/usr/bin/sleep', args: ['sleep', '1000'], files: [] }, runFile));
});

test('real processes: a run script waiting in a loop is not running the release; one that exec\'d its program is', async () => {
  const svc = fs.mkdtempSync(path.join(root, 'svc-'));
  fs.writeFileSync(path.join(svc, 'run'), '#!/bin/sh\nwhile :; do sleep 1; done\n', { mode: 0o755 });
  const waiting = run('./run', [], svc);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(runsRelease(waiting, release, path.join(svc, 'run')), false, 'the looping script and its sleep children show nothing');
  const svc2 = fs.mkdtempSync(path.join(root, 'svc-'));
  fs.writeFileSync(path.join(svc2, 'run'), '#!/bin/sh\nexec sleep 30\n', { mode: 0o755 });
  const execd = run('./run', [], svc2);
  assert.ok(await until(() => runsRelease(execd, release, path.join(svc2, 'run')) === true), 'exec sleep: no longer the run script');
});
