// The hold protocol from PID 1's side: an `essential` service exiting while
// another process holds supervise/hold (flock, as the updater does) with
// `apply` is restarted and the container stays up; with `staged` only exit 42
// is; nobody holding it, the exit ends the container as before (after a few
// restarts when the word left is `apply`: the updater died mid-update).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { script, startMolt, stopAndWait, tmpdir, waitFor } from '../helpers/molt.js';
import { STALE_APPLY_EXITS } from '../../src/supervise/hold.js';

const starts = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').length : 0);

/** An essential service whose run exits with the code in `code` (1 if absent) after a moment. */
function essentialService(services: string): { dir: string; log: string; code: string } {
  const dir = path.join(services, 'app');
  const log = path.join(services, 'starts');
  const code = path.join(services, 'code');
  script(path.join(dir, 'run'), `echo start >> ${log}\nsleep 0.2\nexit $(cat ${code} 2>/dev/null || echo 1)\n`);
  fs.writeFileSync(path.join(dir, 'essential'), '');
  fs.mkdirSync(path.join(dir, 'supervise'), { recursive: true });
  return { dir, log, code };
}

/** Hold supervise/hold with `word`, as the updater does: flock, then the word written in place. */
async function hold(dir: string, word: string): Promise<ChildProcess> {
  const file = path.join(dir, 'supervise', 'hold');
  const ready = path.join(dir, 'held');
  const p = spawn('flock', [file, 'sh', '-c', `printf ${word} > ${file}; touch ${ready}; exec sleep 60`], { stdio: 'ignore', detached: true });
  await waitFor('the hold taken', () => fs.existsSync(ready), 5000);
  return p;
}

async function release(p: ChildProcess): Promise<void> {
  const gone = new Promise((r) => p.once('exit', r));
  // The whole group: sleep inherited the locked fd from flock.
  killGroup(p);
  await gone;
}

function killGroup(p: ChildProcess): void {
  try {
    process.kill(-p.pid!, 'SIGKILL');
  } catch {
    // gone
  }
}

const env = (services: string) => ({ MOLT_SERVICES: services, MOLT_MAX_BACKOFF: '300ms', MOLT_STOP_TIMEOUT: '2s' });

describe('hold: essential services during an update', () => {
  test('apply held: the exit restarts the service; released: the next exit ends the container', async () => {
    const services = tmpdir('hold-apply');
    const { dir, log } = essentialService(services);
    const holder = await hold(dir, 'apply');
    const m = startMolt(['init'], { env: env(services), pidns: false });
    try {
      await waitFor('restarted twice under the hold', () => starts(log) >= 3, 15_000);
      assert.equal(m.proc.exitCode, null, 'the container is still up');
      assert.match(m.err(), /essential service exited during an update \(hold\); restarting it, the container stays up service=app status=1 hold=apply/);
      await release(holder);
      const r = await Promise.race([m.exited, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('molt did not end')), 15_000).unref())]);
      assert.equal(r.code, 1, 'without the hold the essential exit ends the container with its status');
      assert.match(m.err(), /essential service exited, stopping the container service=app status=1/);
    } finally {
      killGroup(holder);
      await stopAndWait(m);
    }
  });

  test('no hold (the file there, nobody holding it): the first exit ends the container', async () => {
    const services = tmpdir('hold-none');
    const { dir, log } = essentialService(services);
    fs.writeFileSync(path.join(dir, 'supervise', 'hold'), 'staged'); // a word left behind, no lock
    const m = startMolt(['init'], { env: env(services), pidns: false });
    try {
      const r = await m.exited;
      assert.equal(r.code, 1);
      assert.equal(starts(log), 1);
    } finally {
      await stopAndWait(m);
    }
  });

  test('a stale apply (left by an updater that died mid-update, nobody holding it): a bounded number of restarts, then the exit ends the container', async () => {
    const services = tmpdir('hold-stale');
    const { dir, log } = essentialService(services);
    fs.writeFileSync(path.join(dir, 'supervise', 'hold'), 'apply');
    const m = startMolt(['init'], { env: env(services), pidns: false });
    try {
      const r = await Promise.race([m.exited, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('molt did not end')), 30_000).unref())]);
      assert.equal(r.code, 1);
      assert.equal(starts(log), STALE_APPLY_EXITS + 1, 'restarted STALE_APPLY_EXITS times, then the essential promise');
      assert.match(m.err(), /essential service exited during an interrupted update \(stale hold\); restarting it for the updater to resume, the container stays up service=app status=1 hold=apply left=4/);
    } finally {
      await stopAndWait(m);
    }
  });

  test('staged held: exit 42 restarts the service, exit 3 ends the container', async () => {
    const services = tmpdir('hold-staged');
    const { dir, log, code } = essentialService(services);
    fs.writeFileSync(code, '42');
    const holder = await hold(dir, 'staged');
    const m = startMolt(['init'], { env: env(services), pidns: false });
    try {
      await waitFor('restarted after exit 42', () => starts(log) >= 2, 15_000);
      assert.equal(m.proc.exitCode, null, 'exit 42 with a release staged does not end the container');
      assert.match(m.err(), /hold\); restarting it, the container stays up service=app status=42 hold=staged/);
      fs.writeFileSync(code, '3');
      const r = await Promise.race([m.exited, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('molt did not end')), 15_000).unref())]);
      assert.equal(r.code, 3, 'any other exit still ends the container');
    } finally {
      killGroup(holder);
      await stopAndWait(m);
    }
  });
});
