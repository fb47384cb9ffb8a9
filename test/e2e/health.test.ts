// Health checks, auto-heal and s6 readiness with real processes and short intervals.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { molt, script, sleep, startMolt, stopAndWait, tmpdir, waitFor } from '../helpers/molt.js';
import { parseHealth } from '../../src/supervise/health.js';

const health = (dir: string) => {
  try {
    return parseHealth(fs.readFileSync(path.join(dir, 'supervise', 'health'), 'utf8'));
  } catch {
    return undefined;
  }
};
const starts = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').length : 0);

const fast = { MOLT_CHECK_INTERVAL: '200ms', MOLT_CHECK_TIMEOUT: '300ms', MOLT_CHECK_FAILURES: '3', MOLT_STOP_TIMEOUT: '1s' };

describe('health checks and auto-heal', () => {
  test('a service whose check keeps failing is restarted once, then not again before the cooldown', async () => {
    const services = tmpdir('heal');
    const dir = path.join(services, 'web');
    const log = path.join(services, 'starts');
    const flag = path.join(services, 'sick');
    script(path.join(dir, 'run'), `echo start >> ${log}\nexec sleep 1000\n`);
    script(path.join(dir, 'check'), `echo probing\n[ ! -e ${flag} ]\n`);
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services, ...fast, MOLT_HEAL_COOLDOWN: '1h' }, pidns: false });
    try {
      await waitFor('healthy', () => health(dir)?.healthy === true, 10_000);
      assert.match(m.out(), /\[web check\] probing/, 'check output is in the log with the service prefix');
      fs.writeFileSync(flag, '');
      await waitFor('healed once', () => starts(log) === 2, 10_000);
      assert.match(m.err(), /unhealthy, restarting service=web heals=1/);
      await waitFor('gave up', () => /still unhealthy after a heal within the cooldown/.test(m.err()), 10_000);
      await sleep(1500);
      assert.equal(starts(log), 2, 'no restart loop inside the cooldown');
      const h = health(dir)!;
      assert.equal(h.healthy, false);
      assert.equal(h.heals, 1);
      assert.equal(h.gaveUp, true);
      fs.rmSync(flag);
      await waitFor('healthy again', () => health(dir)?.healthy === true, 5000);
      assert.equal(health(dir)!.gaveUp, false);
    } finally {
      await stopAndWait(m);
    }
  });

  test('a hanging check is killed at its timeout and counts as a failure; no-heal only reports', async () => {
    const services = tmpdir('hang');
    const dir = path.join(services, 'slow');
    const log = path.join(services, 'starts');
    script(path.join(dir, 'run'), `echo start >> ${log}\nexec sleep 1000\n`);
    script(path.join(dir, 'check'), 'exec sleep 1000\n');
    fs.writeFileSync(path.join(dir, 'no-heal'), '');
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services, ...fast }, pidns: false });
    try {
      await waitFor('unhealthy', () => health(dir)?.healthy === false, 10_000);
      assert.match(m.err(), /check failed service=slow failures=1 detail="timed out after 300 ms"/);
      assert.match(m.err(), /unhealthy \(no-heal: not restarting\) service=slow/);
      await sleep(1000);
      assert.equal(starts(log), 1, 'no-heal: never restarted');
      // The killed checks left nothing behind.
      const sleepers = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
        try {
          return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8') === 'sleep\u00001000\u0000' && fs.readlinkSync(`/proc/${p}/cwd`) === dir;
        } catch {
          return false;
        }
      });
      assert.ok(sleepers.length <= 2, `hung checks were killed (left: ${sleepers.length})`);
    } finally {
      await stopAndWait(m);
    }
  });

  test('a check that is not executable is reported once and ignored; a flood of check output is cut', async () => {
    const services = tmpdir('checks');
    script(path.join(services, 'a', 'run'), 'exec sleep 1000\n');
    fs.writeFileSync(path.join(services, 'a', 'check'), '#!/bin/sh\nexit 1\n', { mode: 0o644 });
    script(path.join(services, 'b', 'run'), 'exec sleep 1000\n');
    script(path.join(services, 'b', 'check'), 'head -c 1000000 /dev/zero | tr "\\0" "x"; echo; exit 0\n');
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services, ...fast }, pidns: false });
    try {
      await waitFor('warned', () => /check is not executable; treating the service as having no check service=a/.test(m.err()), 10_000);
      await waitFor('b healthy', () => health(path.join(services, 'b'))?.healthy === true, 10_000);
      await sleep(800);
      assert.equal(m.err().match(/check is not executable/g)!.length, 1, 'reported once');
      assert.equal(health(path.join(services, 'a'))?.healthy, null);
      assert.match(m.out(), /\[b check\] \(check output cut at 16 KiB\)/);
      assert.ok(m.out().length < 200_000, `output bounded (${m.out().length} bytes for several 1 MB floods)`);
    } finally {
      await stopAndWait(m);
    }
  });
});

describe('readiness through notification-fd (s6 protocol)', () => {
  test('ready once the service writes a newline; missed when it never does; reset on restart', async () => {
    const services = tmpdir('ready');
    const good = path.join(services, 'good');
    const mute = path.join(services, 'mute');
    script(path.join(good, 'run'), 'sleep 0.3\necho >&3\nexec sleep 1000 3>&-\n');
    fs.writeFileSync(path.join(good, 'notification-fd'), '3\n');
    script(path.join(mute, 'run'), 'exec sleep 1000\n');
    fs.writeFileSync(path.join(mute, 'notification-fd'), '3\n');
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services }, pidns: false });
    try {
      await waitFor('good ready', () => health(good)?.ready === true, 10_000);
      assert.match(m.err(), /service ready service=good/);
      await sleep(500);
      assert.equal(health(mute)?.ready, false, 'never wrote: not ready');
      const before = health(good)!.pid;
      const r = molt(['sv', 'term', good]);
      assert.equal(r.status, 0);
      // Readiness belongs to one run: the new run starts not ready, then reports it again.
      const fresh = await waitFor('new run', () => {
        const h = health(good);
        return h && h.pid !== before && h.pid !== 0 ? h : undefined;
      }, 10_000);
      assert.equal(fresh.ready, false, 'a new run is not ready until it says so');
      await waitFor('ready again', () => health(good)?.ready === true && health(good)?.pid === fresh.pid, 10_000);
    } finally {
      await stopAndWait(m);
    }
  });
});

describe('sv waits for readiness', () => {
  test('molt sv -w up returns once a notification-fd service said ready, and times out on one that never does', async () => {
    const services = tmpdir('svready');
    const slow = path.join(services, 'slow');
    const mute = path.join(services, 'mute');
    script(path.join(slow, 'run'), 'sleep 1.5\necho >&3\nexec sleep 1000 3>&-\n');
    fs.writeFileSync(path.join(slow, 'notification-fd'), '3\n');
    fs.writeFileSync(path.join(slow, 'down'), '');
    script(path.join(mute, 'run'), 'exec sleep 1000\n');
    fs.writeFileSync(path.join(mute, 'notification-fd'), '3\n');
    fs.writeFileSync(path.join(mute, 'down'), '');
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services }, pidns: false });
    try {
      await waitFor('supervised', () => fs.existsSync(path.join(slow, 'supervise', 'ok')) && fs.existsSync(path.join(mute, 'supervise', 'ok')), 10_000);
      const r = molt(['sv', '-w', '10', '-v', 'up', slow]);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^ok: run: /);
      assert.equal(health(slow)?.ready, true, 'sv returned only once the service was ready');
      const t = molt(['sv', '-w', '2', '-v', 'up', mute]);
      assert.equal(t.status, 1, t.stdout);
      assert.match(t.stdout, /^timeout: run: /);
    } finally {
      await stopAndWait(m);
    }
  });
});

describe('the updater trial uses the supervisor health state', () => {
  test('MOLT_READY=explicit: a release that signals readiness on its notification-fd is committed long before the deadline', async () => {
    const { makeStack } = await import('../helpers/stack.js');
    const s = await makeStack({ MOLT_READY: 'explicit', MOLT_TRIAL: '60s', HELLO_NOTIFY_FD: '4' });
    fs.writeFileSync(path.join(s.services, 'app', 'notification-fd'), '4\n');
    try {
      s.publish('3.0.0');
      const t0 = Date.now();
      const st = await waitFor('committed on readiness', async () => {
        const x = await s.status();
        return x?.history.find((h) => h.event === 'commit' && h.version === '3.0.0') ? x : undefined;
      }, 30_000);
      assert.ok(Date.now() - t0 < 30_000, 'well before the 60 s deadline');
      assert.equal(st.history.find((h) => h.event === 'commit')!.detail, 'reported ready');
    } finally {
      await stopAndWait(s.molt);
    }
  });
});
