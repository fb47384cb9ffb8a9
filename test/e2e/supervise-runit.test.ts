// The supervisor driven through Debian runit's own `sv` binary: molt's
// Runs molt as a subreaper (no PID namespace) so that the pids sv prints are the host's.
// supervise/ files must be indistinguishable from runsv's.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { run, runitSv, script, sleep, startMolt, stopAndWait, svStatus, tmpdir, waitFor, type Running } from '../helpers/molt.js';
import { readServices } from '../../src/api/services.js';

const sv = (...args: string[]) => run(runitSv, args);
const pidOf = (status: string) => Number(/\(pid (\d+)\)/.exec(status)?.[1] ?? 0);

describe('supervision through runit sv', () => {
  let services: string;
  let m: Running;
  const dir = (name: string) => path.join(services, name);

  before(async () => {
    services = tmpdir('runit');
    script(path.join(services, 'web', 'run'), 'echo web starting\nexec sleep 1000\n');
    script(path.join(services, 'idle', 'run'), 'exec sleep 1000\n');
    fs.writeFileSync(path.join(services, 'idle', 'down'), '');
    script(path.join(services, 'fin', 'run'), 'exec sleep 1000\n');
    script(path.join(services, 'fin', 'finish'), `echo "finish $1 $2" >> ${path.join(services, 'finish.log')}\n`);
    fs.writeFileSync(path.join(services, 'fin', 'down'), '');
    script(path.join(services, 'logged', 'run'), 'i=0; while :; do i=$((i+1)); echo "line $i"; sleep 0.01; done\n');
    // A logger that never drops a line it has read: the shell's read takes one line byte by
    // byte, and TERM only sets a flag that is looked at once the line is written. (A logger
    // killed between its read and its write loses that line by itself; not the pipe's doing.)
    script(
      path.join(services, 'logged', 'log', 'run'),
      `stop=\ntrap 'stop=1' TERM\nwhile IFS= read -r l; do echo "L:$l" >> ${path.join(services, 'logged.out')}; [ -z "$stop" ] || exit 0; done\n`,
    );
    m = startMolt(['init'], { env: { MOLT_SERVICES: services, MOLT_STOP_TIMEOUT: '3s' }, pidns: false });
    await waitFor('web up', () => svStatus(dir('web')).startsWith('run:'), 10_000);
  });
  after(async () => {
    await stopAndWait(m);
  });

  test('status lines are what runit prints: running, normally down, with a log service', async () => {
    assert.match(svStatus(dir('web')), /^run: .*\/web: \(pid \d+\) \d+s$/);
    assert.match(svStatus(dir('idle')), /^down: .*\/idle: \d+s$/);
    await waitFor('logger up', () => /; run: log: \(pid \d+\) \d+s$/.test(svStatus(dir('logged'))), 5000);
    assert.match(svStatus(dir('logged')), /^run: .*\/logged: \(pid \d+\) \d+s; run: log: \(pid \d+\) \d+s$/);
    const stat = fs.readFileSync(path.join(dir('web'), 'supervise', 'stat'), 'utf8');
    assert.equal(stat, 'run\n');
    const pidFile = fs.readFileSync(path.join(dir('web'), 'supervise', 'pid'), 'utf8');
    assert.equal(`${pidOf(svStatus(dir('web')))}\n`, pidFile);
    const st = fs.statSync(path.join(dir('web'), 'supervise', 'control'));
    assert.ok(st.isFIFO());
    assert.equal(st.mode & 0o777, 0o600);
  });

  test('sv up on a normally-down service starts it and says so', async () => {
    const r = sv('-w', '5', 'up', dir('idle'));
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ok: run: .*\/idle: \(pid \d+\) \d+s, normally down$/m);
  });

  test('sv down stops it, sv once runs it once, and it is not restarted', async () => {
    const r = sv('-w', '5', 'down', dir('idle'));
    assert.equal(r.status, 0, r.stdout);
    assert.match(r.stdout, /^ok: down: .*\/idle: \d+s$/m);
    const once = sv('once', dir('idle'));
    assert.equal(once.status, 0);
    await waitFor('idle running once', () => svStatus(dir('idle')).startsWith('run:'));
    const pid = pidOf(svStatus(dir('idle')));
    process.kill(pid, 'SIGKILL');
    await waitFor('down after exit', () => svStatus(dir('idle')).startsWith('down:'));
    await sleep(1500);
    assert.match(svStatus(dir('idle')), /^down: /, 'once: no restart');
  });

  test('sv term restarts a wanted-up service with a new pid; sv kill too', async () => {
    const before = pidOf(svStatus(dir('web')));
    assert.equal(sv('term', dir('web')).status, 0);
    const after1 = await waitFor('new pid', () => {
      const p = pidOf(svStatus(dir('web')));
      return p && p !== before ? p : undefined;
    }, 5000);
    assert.equal(sv('kill', dir('web')).status, 0);
    await waitFor('newer pid', () => {
      const p = pidOf(svStatus(dir('web')));
      return p && p !== after1 ? p : undefined;
    }, 5000);
  });

  test('sv pause and cont set and clear the paused flag', async () => {
    sv('pause', dir('web'));
    await waitFor('paused', () => svStatus(dir('web')).endsWith(', paused'));
    const pid = pidOf(svStatus(dir('web')));
    const state = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0];
    assert.equal(state, 'T', 'the process is stopped');
    sv('cont', dir('web'));
    await waitFor('not paused', () => !svStatus(dir('web')).includes('paused'));
  });

  test('finish gets runit arguments: exit code and signal, or -1 and the signal', async () => {
    const logFile = path.join(services, 'finish.log');
    sv('-w', '5', 'up', dir('fin'));
    sv('-w', '5', 'down', dir('fin'));
    await waitFor('finish after TERM', () => fs.existsSync(logFile) && fs.readFileSync(logFile, 'utf8').includes('finish -1 15'));
    script(path.join(dir('fin'), 'run'), 'exit 3\n');
    sv('once', dir('fin'));
    await waitFor('finish after exit 3', () => fs.readFileSync(logFile, 'utf8').includes('finish 3 0'));
  });

  test('the log pipe outlives logger restarts: no line is lost', async () => {
    const out = path.join(services, 'logged.out');
    for (let i = 0; i < 3; i++) {
      await sleep(200);
      sv('term', path.join(dir('logged'), 'log'));
    }
    await sleep(1500); // the logger restarts (throttled) and drains the pipe
    sv('-w', '5', 'down', dir('logged'));
    await waitFor('producer down', () => svStatus(dir('logged')).startsWith('down:'));
    await sleep(300);
    const lines = fs.readFileSync(out, 'utf8').trim().split('\n');
    const nums = lines.map((l) => Number(/^L:line (\d+)$/.exec(l)?.[1]));
    assert.ok(nums.length > 50, `got ${nums.length} lines`);
    for (let i = 0; i < nums.length; i++) assert.equal(nums[i], i + 1, `line ${i + 1} present and in order`);
  });

  test('sv status of a directory molt does not supervise: runsv not running', () => {
    const lonely = tmpdir('lonely');
    fs.mkdirSync(path.join(lonely, 'supervise'));
    execMkfifo(path.join(lonely, 'supervise', 'ok'));
    const r = sv('status', lonely);
    assert.equal(r.stdout.trim(), `fail: ${lonely}: runsv not running`);
    assert.equal(r.status, 1);
  });

  test('a flood of control bytes is handled and control keeps working', async () => {
    const fd = fs.openSync(path.join(dir('web'), 'supervise', 'control'), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    const junk = Buffer.alloc(60_000, 'z'); // unknown letters: ignored
    try {
      fs.writeSync(fd, junk);
    } catch {
      // a full FIFO is fine: we only need a flood
    }
    fs.closeSync(fd);
    const r = sv('-w', '5', 'down', dir('web'));
    assert.equal(r.status, 0, r.stdout);
    const u = sv('-w', '5', 'up', dir('web'));
    assert.equal(u.status, 0, u.stdout);
  });
});

function execMkfifo(p: string) {
  run('mkfifo', [p]);
}

describe('throttle, scanning, bad services', () => {
  test('a service that dies at once is throttled (>= 1 s apart, doubling) while sv down still works', async () => {
    const services = tmpdir('crashy');
    const starts = path.join(services, 'starts');
    script(path.join(services, 'crash', 'run'), `date +%s%N >> ${starts}\nexit 1\n`);
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services }, pidns: false });
    try {
      await waitFor('three starts', () => fs.existsSync(starts) && fs.readFileSync(starts, 'utf8').trim().split('\n').length >= 3, 10_000);
      const t = fs.readFileSync(starts, 'utf8').trim().split('\n').map((l) => Number(BigInt(l) / 1_000_000n));
      assert.ok(t[1]! - t[0]! >= 950, `first gap ${t[1]! - t[0]!} ms`);
      assert.ok(t[2]! - t[1]! >= 1900, `second gap ${t[2]! - t[1]!} ms (doubled)`);
      // During the 4 s wait, control still answers at once.
      const t0 = performance.now();
      const r = sv('-w', '3', 'down', path.join(services, 'crash'));
      assert.equal(r.status, 0, r.stdout);
      assert.ok(performance.now() - t0 < 2000, 'sv down was not blocked by the throttle');
      const count = fs.readFileSync(starts, 'utf8').trim().split('\n').length;
      await sleep(4500);
      assert.equal(fs.readFileSync(starts, 'utf8').trim().split('\n').length, count, 'no restart after down');
    } finally {
      await stopAndWait(m);
    }
  });

  test('a finish that exits 125 keeps the service down until sv up (s6), and sv shows it down', async () => {
    const services = tmpdir('permafail');
    const starts = path.join(services, 'starts');
    const dir = path.join(services, 'broken');
    script(path.join(dir, 'run'), `echo x >> ${starts}\nexit 1\n`);
    script(path.join(dir, 'finish'), 'exit 125\n');
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services }, pidns: false });
    try {
      await waitFor('down after one start', () => /^down: .*: \d+s, normally up$/.test(svStatus(dir)), 10_000);
      await sleep(2500); // a restart would have come after 1 s
      assert.equal(fs.readFileSync(starts, 'utf8').trim().split('\n').length, 1, 'started once');
      assert.match(m.err(), /finish exited 125: not restarting until sv up service=broken/);
      assert.equal(readServices(services).find((x) => x.name === 'broken')?.failed, true, 'held down on purpose: shown as failed');
      sv('up', dir);
      await waitFor('started again', () => fs.readFileSync(starts, 'utf8').trim().split('\n').length === 2, 5000);
    } finally {
      await stopAndWait(m);
    }
  });

  test('max-deaths: a service that dies that often is not restarted until sv up, and shows as failed', async () => {
    const services = tmpdir('maxdeaths');
    const starts = path.join(services, 'starts');
    const dir = path.join(services, 'flaky');
    script(path.join(dir, 'run'), `echo x >> ${starts}\nexit 1\n`);
    fs.writeFileSync(path.join(dir, 'max-deaths'), '2 60\n');
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services }, pidns: false });
    try {
      await waitFor('failed', () => /failed: not restarting until sv up service=flaky deaths=2 window_ms=60000/.test(m.err()), 10_000);
      await waitFor('down', () => /^down: .*: \d+s, normally up$/.test(svStatus(dir)), 5000);
      await sleep(2500); // the next restart would have come after 2 s
      assert.equal(fs.readFileSync(starts, 'utf8').trim().split('\n').length, 2, 'started twice, then no more');
      assert.equal(readServices(services).find((x) => x.name === 'flaky')?.failed, true, 'the API shows it failed');
      sv('up', dir);
      await waitFor('started again', () => fs.readFileSync(starts, 'utf8').trim().split('\n').length === 3, 5000);
    } finally {
      await stopAndWait(m);
    }
  });

  test('directories added and removed while running are picked up within 5 s', async () => {
    const services = tmpdir('scan');
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services }, pidns: false });
    try {
      await waitFor('molt up', () => m.err().includes('starting'), 10_000);
      const staging = tmpdir('scan-staging');
      script(path.join(staging, 'late', 'run'), 'echo late here\nexec sleep 1000\n');
      fs.renameSync(path.join(staging, 'late'), path.join(services, 'late'));
      await waitFor('late started', () => m.out().includes('[late] late here'), 5500);
      const pid = pidOf(svStatus(path.join(services, 'late')));
      assert.ok(pid > 0);
      fs.rmSync(path.join(services, 'late'), { recursive: true });
      await waitFor('late stopped', () => m.err().includes('service removed, stopping service=late'), 5500);
      await waitFor('its process gone', () => {
        try {
          return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z');
        } catch {
          return true; // gone (reaped) between two looks
        }
      }, 3000);
    } finally {
      await stopAndWait(m);
    }
  });

  test('missing or non-executable run, odd names: a clear log line, the others keep running', async () => {
    const services = tmpdir('bad');
    fs.mkdirSync(path.join(services, 'norun'));
    fs.mkdirSync(path.join(services, 'noexec'));
    fs.writeFileSync(path.join(services, 'noexec', 'run'), '#!/bin/sh\nexit 0\n', { mode: 0o644 });
    script(path.join(services, 'odd name ü', 'run'), 'echo odd ok\nexec sleep 1000\n');
    script(path.join(services, 'good', 'run'), 'echo good ok\nexec sleep 1000\n');
    fs.mkdirSync(path.join(services, '.hidden'));
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services }, pidns: false });
    try {
      await waitFor('good and odd up', () => m.out().includes('[good] good ok') && m.out().includes('[odd name ü] odd ok'), 10_000);
      await waitFor('errors logged', () => /cannot start service=norun file=.\/run error="file does not exist"/.test(m.err()) && /cannot start service=noexec file=.\/run error="not executable"/.test(m.err()), 5000);
      assert.doesNotMatch(m.err(), /hidden/);
      assert.ok(!fs.existsSync(path.join(services, '.hidden', 'supervise')));
    } finally {
      await stopAndWait(m);
    }
  });

  test('a finish that hangs is killed after its timeout and the service restarts', async () => {
    const services = tmpdir('hangfin');
    const starts = path.join(services, 'starts');
    script(path.join(services, 'h', 'run'), `echo x >> ${starts}\nexit 0\n`);
    script(path.join(services, 'h', 'finish'), 'exec sleep 1000\n');
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services, MOLT_FINISH_TIMEOUT: '500ms' }, pidns: false });
    try {
      await waitFor('second start', () => fs.existsSync(starts) && fs.readFileSync(starts, 'utf8').split('\n').length > 2, 8000);
      assert.match(m.err(), /finish timed out, killing it service=h/);
    } finally {
      await stopAndWait(m);
    }
  });

  test('output is prefixed per line: partial lines, invalid UTF-8 and a 1 MB line, with bounded pieces', async () => {
    const services = tmpdir('prefix');
    script(
      path.join(services, 'chatty', 'run'),
      `#!${process.execPath}
process.stdout.write('par'); setTimeout(() => process.stdout.write('tial\\n'), 50);
setTimeout(() => { process.stderr.write(Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x0a])); process.stdout.write('x'.repeat(1 << 20) + '\\n'); process.stdout.write('no newline at end'); }, 100);
setTimeout(() => process.exit(0), 300);
`,
    );
    fs.writeFileSync(path.join(services, 'chatty', 'down'), '');
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services }, pidns: false });
    try {
      await waitFor('molt up', () => m.err().includes('service added service=chatty'), 10_000);
      sv('once', path.join(services, 'chatty'));
      await waitFor('tail flushed', () => m.out().includes('[chatty] no newline at end'), 5000);
      const lines = m.out().split('\n');
      assert.ok(lines.includes('[chatty] partial'));
      assert.ok(lines.includes('[chatty] bad\ufffd\ufffd'), 'invalid bytes passed through (decoded here as U+FFFD)');
      const pieces = lines.filter((l) => l.startsWith('[chatty] xxx'));
      assert.equal(pieces.length, 16, 'a 1 MiB line comes out as 16 pieces of 64 KiB');
      assert.equal(pieces.reduce((n, l) => n + l.length - '[chatty] '.length, 0), 1 << 20);
    } finally {
      await stopAndWait(m);
    }
  });
});
