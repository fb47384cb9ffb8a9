// Re-exec (issue 15): molt init, PID 1 of a fresh PID namespace, execs into a
// new molt and takes over its running services without stopping any. Real
// processes, real pipes, runit's own `sv`.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cli, descendantsOf, molt, procState, runitSv, run, script, startMolt, stopAndWait, tmpdir, waitFor, type Running } from '../helpers/molt.js';
import { freePort } from '../helpers/stack.js';
import { get, load } from '../helpers/load.js';
import { encodeState } from '../../src/supervise/reexecState.js';
import { initialState } from '../../src/supervise/machine.js';

const pidOf = (slotDir: string) => Number(fs.readFileSync(path.join(slotDir, 'supervise', 'pid'), 'utf8').trim());
/** The TAI64N stamp of supervise/status: what `sv status` counts the uptime from. */
const stampOf = (slotDir: string) => fs.readFileSync(path.join(slotDir, 'supervise', 'status')).subarray(0, 12).toString('hex');
const count = (text: string, needle: string) => text.split(needle).length - 1;

/** The counter lines `n 1`, `n 2`... with no number skipped (one repeated across a restart is fine). */
function noGap(file: string): void {
  let prev = 0;
  for (const [i, line] of fs.readFileSync(file, 'utf8').trim().split('\n').entries()) {
    const n = Number(line.split(' ')[1]);
    assert.ok(n === prev + 1 || (n === prev && i > 0), `line ${i + 1} of the logger's output: n ${n} after n ${prev}`);
    prev = n;
  }
}

function requestReexec(services: string, target?: string): void {
  const r = molt(target ? ['reexec', target] : ['reexec'], { MOLT_SERVICES: services });
  assert.equal(r.status, 0, r.stderr);
}

/** The host pid of the process below molt whose command line includes `needle`. */
function hostPid(m: Running, needle: string): number | undefined {
  for (const pid of descendantsOf(m.proc.pid!)) {
    try {
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').includes(needle)) return pid;
    } catch {
      // gone
    }
  }
  return undefined;
}

describe('molt init: re-exec without stopping a service', () => {
  test('a logger, a notification-fd service and a prefixed one keep their pids, uptimes, readiness and output', async () => {
    const services = tmpdir('reexec');
    const logFile = path.join(services, 'counter.log');
    // The count survives a restart of run (a kill between echo and save repeats a number, never skips one).
    // It is saved by rename: `> count` alone truncates first, and a TERM right then restarted the count at 1.
    script(path.join(services, 'cnt', 'run'), 'i=$(cat count 2>/dev/null || echo 0)\nwhile :; do i=$((i+1)); echo "n $i"; echo $i > count.new; mv count.new count; sleep 0.005; done\n');
    script(path.join(services, 'cnt', 'log', 'run'), `exec cat >> ${logFile}\n`);
    script(path.join(services, 'ready', 'run'), 'echo >&3\nexec sleep 1000\n');
    fs.writeFileSync(path.join(services, 'ready', 'notification-fd'), '3\n');
    script(path.join(services, 'plain', 'run'), 'while :; do echo tick; sleep 0.05; done\n');
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services } });
    try {
      const slots = ['cnt', 'cnt/log', 'ready', 'plain'].map((s) => path.join(services, s));
      const health = () => JSON.parse(fs.readFileSync(path.join(services, 'ready', 'supervise', 'health'), 'utf8'));
      await waitFor('all up, ready reported, lines logged', () => slots.every((d) => fs.existsSync(path.join(d, 'supervise', 'pid')) && pidOf(d) > 0) && health().ready && fs.existsSync(logFile) && fs.statSync(logFile).size > 100, 15_000);
      const pids = slots.map(pidOf);
      const stamps = slots.map(stampOf);

      requestReexec(services);
      await waitFor('the new molt adopted every service', () => ['cnt', 'ready', 'plain'].every((s) => m.err().includes(`adopted service=${s} `)), 30_000);
      assert.equal(count(m.err(), 'init: starting pid=1'), 2, 'PID 1 started twice: it re-executed, and the container did not restart');
      assert.match(m.err(), /re-executing molt=/);

      assert.deepEqual(slots.map(pidOf), pids, 'no service was restarted');
      assert.deepEqual(slots.map(stampOf), stamps, 'uptimes are kept');
      const sv = run(runitSv, ['status', ...['cnt', 'ready', 'plain'].map((s) => path.join(services, s))]);
      assert.equal(sv.status, 0, sv.stderr);
      assert.match(sv.stdout, new RegExp(`^run: .*/cnt: \\(pid ${pids[0]}\\) \\d+s; run: log: \\(pid ${pids[1]}\\)`, 'm'));
      assert.match(sv.stdout, new RegExp(`^run: .*/ready: \\(pid ${pids[2]}\\)`, 'm'));
      assert.equal(health().ready, true, 'readiness is kept');

      // Output keeps flowing: the logger's pipe (molt holds it) and the prefixed stdout (handed over).
      const ticksAtAdoption = count(m.out(), '[plain] tick');
      const linesAtAdoption = fs.readFileSync(logFile, 'utf8').split('\n').length;
      await waitFor('more output after the re-exec', () => count(m.out(), '[plain] tick') > ticksAtAdoption + 5 && fs.readFileSync(logFile, 'utf8').split('\n').length > linesAtAdoption + 50, 15_000);
      noGap(logFile);

      // The new PID 1 supervises them: a run that exits is restarted.
      const r = run(runitSv, ['term', path.join(services, 'plain')]);
      assert.equal(r.status, 0, r.stderr);
      await waitFor('plain restarted by the new molt', () => pidOf(path.join(services, 'plain')) > 0 && pidOf(path.join(services, 'plain')) !== pids[3], 15_000);
      assert.match(m.err(), /service killed service=plain signal=SIGTERM/);
      // A new run of the logged service writes into the pipe the old molt made: the logger sees no gap.
      run(runitSv, ['term', path.join(services, 'cnt')]);
      await waitFor('cnt restarted by the new molt', () => pidOf(path.join(services, 'cnt')) > 0 && pidOf(path.join(services, 'cnt')) !== pids[0], 15_000);
      const lines = fs.readFileSync(logFile, 'utf8').split('\n').length;
      await waitFor('the new run logs', () => fs.readFileSync(logFile, 'utf8').split('\n').length > lines + 50, 15_000);
      assert.equal(pidOf(path.join(services, 'cnt/log')), pids[1], 'the logger was never restarted');
      noGap(logFile);
    } finally {
      const r = await stopAndWait(m);
      assert.equal(r.code, 0, 'the new molt stops the adopted services in order and exits 0');
    }
  });

  test('CMD and a zombie made during the handover: CMD is adopted (its exit code is molt\'s), the zombie is reaped', async () => {
    const services = tmpdir('reexec-cmd');
    const orphanFile = path.join(services, 'orphan.pid');
    // The subshell exits at once: its sleep is reparented to PID 1.
    script(path.join(services, 'maker', 'run'), `(sleep 999 & echo $! > ${orphanFile})\nexec sleep 1000\n`);
    // The new molt's first act, while it is a shell and PID 1: kill the orphan, leaving a zombie for the new molt.
    const newMolt = script(path.join(services, '..', `newmolt-${path.basename(services)}`), `#!/bin/sh
if [ "$2" != --check-adopt ]; then kill -9 "$(cat ${orphanFile})"; fi
exec ${process.execPath} ${cli} "$@"
`);
    const stop = path.join(services, 'stop');
    const m = startMolt(['init', '--', 'sh', '-c', `while [ ! -e ${stop} ]; do sleep 0.05; done; exit 7`], { env: { MOLT_SERVICES: services } });
    try {
      await waitFor('orphan made', () => fs.existsSync(orphanFile) && fs.readFileSync(orphanFile, 'utf8').trim() !== '', 15_000);
      const cmd = await waitFor('CMD running', () => hostPid(m, `while [ ! -e ${stop} ]`), 10_000);
      const orphan = await waitFor('orphan found', () => hostPid(m, 'sleep 999'), 10_000);
      requestReexec(services, newMolt);
      await waitFor('adopted', () => m.err().includes('adopted service=maker '), 30_000);
      await waitFor('the zombie reaped by the new molt', () => procState(orphan) === undefined, 10_000);
      assert.equal(procState(cmd) !== undefined && procState(cmd) !== 'Z', true, 'CMD still runs, same pid');
      fs.writeFileSync(stop, '');
      const r = await m.exited;
      assert.equal(r.code, 7, 'the adopted CMD exited 7: so does molt');
    } finally {
      await stopAndWait(m);
    }
  });

  test('a new molt that cannot adopt, or that vanishes before the exec: PID 1 stays the old molt and everything runs on', async () => {
    const services = tmpdir('reexec-bad');
    script(path.join(services, 'a', 'run'), 'exec sleep 1000\n');
    script(path.join(services, 'b', 'run'), 'i=0\nwhile :; do i=$((i+1)); echo "n $i"; sleep 0.01; done\n');
    script(path.join(services, 'b', 'log', 'run'), `exec cat >> ${services}/b.log\n`);
    const broken = script(path.join(services, '..', `broken-${path.basename(services)}`), '#!/bin/sh\necho no koffi here >&2\nexit 1\n');
    // Passes the check, then is gone: execve fails (ENOENT) after the fds were made inheritable.
    const vanishing = path.join(services, '..', `vanishing-${path.basename(services)}`);
    script(vanishing, `#!/bin/sh\nrm -f "$0"\necho 'state of 2 service(s) can be adopted'\n`);
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services } });
    try {
      const a = path.join(services, 'a');
      await waitFor('up', () => fs.existsSync(path.join(a, 'supervise', 'pid')) && pidOf(a) > 0 && fs.existsSync(`${services}/b.log`), 15_000);
      const pidA = pidOf(a);
      requestReexec(services, broken);
      await waitFor('refused', () => /re-exec refused reason="the new molt cannot adopt \(exit 1: no koffi here\); staying on this one"/.test(m.err()), 15_000);
      requestReexec(services, vanishing);
      await waitFor('exec failed', () => /re-exec failed; staying on this molt reason=.*ENOENT/.test(m.err()), 15_000);
      assert.equal(count(m.err(), 'init: starting pid=1'), 1, 'PID 1 never left the old molt');
      assert.equal(pidOf(a), pidA);
      // The old molt still supervises: a killed run comes back.
      run(runitSv, ['term', a]);
      await waitFor('a restarted', () => pidOf(a) > 0 && pidOf(a) !== pidA, 15_000);
      // And a good re-exec still works after both failures (the fds were taken back, not lost).
      requestReexec(services);
      await waitFor('adopted', () => m.err().includes('adopted service=b '), 30_000);
      const n = fs.readFileSync(`${services}/b.log`, 'utf8').trim().split('\n').length;
      await waitFor('b still logs', () => fs.readFileSync(`${services}/b.log`, 'utf8').trim().split('\n').length > n + 20, 15_000);
      fs.readFileSync(`${services}/b.log`, 'utf8').trim().split('\n').forEach((l, i) => assert.equal(l, `n ${i + 1}`));
    } finally {
      const r = await stopAndWait(m);
      assert.equal(r.code, 0);
    }
  });

  test('a service between two steady states (not ready yet) postpones the re-exec (refused: one line, exit 1, nothing changes); a FIFO others may write is not listened on', async () => {
    const services = tmpdir('reexec-busy');
    script(path.join(services, 'slow', 'run'), `while [ ! -e ${services}/go ]; do sleep 0.05; done\necho >&3\nexec sleep 1000\n`);
    fs.writeFileSync(path.join(services, 'slow', 'notification-fd'), '3\n');
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services } });
    try {
      const slow = path.join(services, 'slow');
      await waitFor('slow started', () => fs.existsSync(path.join(slow, 'supervise', 'pid')) && pidOf(slow) > 0, 15_000);
      const pid = pidOf(slow);
      // --wait prints PID 1's answer: one line, exit 1, nothing changed.
      const refused = molt(['reexec', '--wait'], { MOLT_SERVICES: services });
      assert.equal(refused.status, 1);
      assert.equal(refused.stderr, 'molt reexec: refused: service slow: it has not reported ready yet\n');
      await waitFor('logged', () => /re-exec refused reason="service slow: it has not reported ready yet"/.test(m.err()), 15_000);
      assert.equal(pidOf(slow), pid);
      assert.equal(count(m.err(), 'init: starting pid=1'), 1);
      fs.writeFileSync(path.join(services, 'go'), '');
      await waitFor('ready', () => m.err().includes('service ready service=slow'), 15_000);
      requestReexec(services);
      await waitFor('adopted once ready', () => m.err().includes('adopted service=slow '), 30_000);
    } finally {
      await stopAndWait(m);
    }
    const lax = tmpdir('reexec-lax');
    fs.mkdirSync(path.join(lax, 'svc'));
    run('mkfifo', ['-m', '0622', path.join(lax, 'svc', '.molt-reexec')]);
    const m2 = startMolt(['init'], { env: { MOLT_SERVICES: path.join(lax, 'svc') } });
    try {
      await waitFor('warned', () => /re-exec not offered .*writable by others/.test(m2.err()), 15_000);
      const r = molt(['reexec'], { MOLT_SERVICES: path.join(lax, 'svc') });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /molt init is not listening/);
    } finally {
      await stopAndWait(m2);
    }
  });

  test('listen sockets are handed over: a request loop through the re-exec and a restart after it loses nothing', async () => {
    const services = tmpdir('reexec-listen');
    const port = await freePort();
    script(path.join(services, 'web', 'run'), 'exec ./app.js\n');
    script(path.join(services, 'web', 'app.js'), `#!${process.execPath}
const server = require('node:http').createServer((q, r) => r.end(String(process.pid))).listen({ fd: 3 });
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`);
    fs.writeFileSync(path.join(services, 'web', 'listen'), `tcp 127.0.0.1:${port} http\n`);
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services } });
    try {
      await waitFor('serving', async () => (await get(port)).ok, 15_000);
      const web = path.join(services, 'web');
      const before = pidOf(web);
      const l = load(port);
      requestReexec(services);
      await waitFor('adopted', () => m.err().includes('adopted service=web '), 30_000);
      run(runitSv, ['term', web]);
      await waitFor('restarted by the new molt', () => pidOf(web) > 0 && pidOf(web) !== before, 15_000);
      await waitFor('the new run serves', async () => {
        const r = await get(port);
        return r.ok && r.body !== undefined && Number(r.body) > 0;
      }, 10_000);
      const { done, failures } = await l.stop();
      assert.ok(done > 0);
      assert.deepEqual(failures, [], `${done} requests, none failed`);
    } finally {
      await stopAndWait(m);
    }
  });
});

describe('the re-exec FIFO belongs to the molt that made it', () => {
  test('molt init leaves the service directory as it found it when it exits (the image build rmdirs it)', () => {
    const services = tmpdir('reexec-clean');
    const r = molt(['init', '--', 'true'], { MOLT_SERVICES: services });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(fs.readdirSync(services), []);
  });
});

describe('molt init --check-adopt', () => {
  const good = () =>
    encodeState({
      version: 1,
      pid: 1,
      writtenMs: Date.now(),
      servicesDir: '/etc/service',
      services: [{ name: 'a', dir: '/etc/service/a', listen: [], main: { state: { ...initialState(false), phase: 'run' }, pid: 10, stampMs: 1, ranMs: 1, delayMs: 0, deathAgesMs: [], ready: false, sup: { lock: 3, control: 4, controlWrite: 5, ok: 6 } } }],
    });

  test('a valid state passes; a corrupt, truncated or missing one is refused with one line', () => {
    const dir = tmpdir('check-adopt');
    const file = path.join(dir, 'state');
    fs.writeFileSync(file, good());
    const ok = molt(['init', '--check-adopt', file]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /state of 1 service\(s\) can be adopted/);
    for (const [body, why] of [
      [good().slice(0, 40), /not JSON/],
      [good().replace('"run"', '"running"'), /state\.services\[0\]\.main\.state\.phase/],
      [good().replace('"pid":10', '"pid":0'), /a running slot needs its pid/],
    ] as const) {
      fs.writeFileSync(file, body);
      const r = molt(['init', '--check-adopt', file]);
      assert.equal(r.status, 1);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      assert.match(r.stderr, why);
    }
    const missing = molt(['init', '--check-adopt', path.join(dir, 'nope')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /cannot adopt .*nope: ENOENT/);
  });
});
