// The control commands as a person runs them: `node dist/src/cli/main.js status`
// and friends against a real API socket backed by the fake updater, plus the
// messages and exit codes when the updater is not running or the usage is wrong.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startApi, type ApiHandle } from '../../src/api/server.js';
import { readServices } from '../../src/api/services.js';
import { setLogLevel } from '../../src/common/log.js';
import { encodeStatus } from '../../src/supervise/status.js';
import { FakeUpdater } from '../api/fake-updater.js';
import { cli, runCli } from '../helpers/molt.js';

setLogLevel('warn');

interface Result {
  code: number | null;
  out: string;
  err: string;
}

/** Run the built CLI without blocking this process's event loop (it serves the API). */
function molt(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 20_000): Promise<Result> {
  const base = { ...process.env };
  for (const k of ['MOLT_SOCKET', 'MOLT_SERVICES', 'SVDIR', 'MOLT_APP', 'MOLT_ADMIN_TOKEN']) delete base[k];
  return runCli(args, { ...base, ...env }, timeoutMs);
}

describe('molt control commands', () => {
  let tmp: string;
  let fake: FakeUpdater;
  let api: ApiHandle;
  let env: NodeJS.ProcessEnv;
  let services: string;
  const okReaders: number[] = [];

  const appStatus = (pid: number, state: 'run' | 'down') =>
    fs.writeFileSync(path.join(services, 'app', 'supervise', 'status'), encodeStatus({ stampMs: Date.now() - 65_000, pid, paused: false, want: 'up', gotTerm: false, state }));

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-cli-'));
    services = path.join(tmp, 'service');
    fs.mkdirSync(path.join(services, 'app', 'supervise'), { recursive: true });
    // A supervisor holds supervise/ok open for reading; the test plays that part.
    assert.equal(spawnSync('mkfifo', [path.join(services, 'app', 'supervise', 'ok')]).status, 0);
    okReaders.push(fs.openSync(path.join(services, 'app', 'supervise', 'ok'), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK));
    appStatus(777, 'run');
    fake = new FakeUpdater({ tickMs: 100, bad: ['1.2.0'], trialTicks: 3 });
    const socket = path.join(tmp, 'run', 'molt.sock');
    api = await startApi(fake, { socket, services: () => readServices(services), host: 'box' });
    env = { MOLT_SOCKET: socket, MOLT_SERVICES: services };
  });
  after(async () => {
    await api?.close();
    fake?.close();
    for (const fd of okReaders) fs.closeSync(fd);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('every command says the updater is not running, in one line, exit 1', async () => {
    const socket = path.join(tmp, 'nope', 'molt.sock');
    for (const args of [['status'], ['status', '--json'], ['check'], ['update'], ['update', '1.3.0'], ['rollback'], ['ready'], ['blocked'], ['unblock', '1.2.1']]) {
      const r = await molt(args, { MOLT_SOCKET: socket });
      assert.equal(r.code, 1, args.join(' '));
      assert.equal(r.err, `molt: updater not running (no socket at ${socket})\n`, args.join(' '));
      assert.equal(r.out, '');
    }
    const h = await molt(['health'], { MOLT_SOCKET: socket });
    assert.equal(h.code, 1);
    assert.equal(h.err, `molt: unhealthy: updater not running (no socket at ${socket})\n`);
  });

  test('without MOLT_SOCKET the default socket is named', async () => {
    if (fs.existsSync('/run/molt/molt.sock')) assert.fail('a real molt runs on this machine; this test needs /run/molt/molt.sock absent');
    const r = await molt(['status'], {});
    assert.equal(r.code, 1);
    assert.equal(r.err, 'molt: updater not running (no socket at /run/molt/molt.sock)\n');
  });

  test('usage errors exit 2 with the usage line', async () => {
    const cases: [string[], RegExp][] = [
      [['status', '--bogus'], /^molt: unknown option --bogus \(usage: molt status \[--json\]\)\n$/],
      [['check', 'now'], /unexpected argument "now"/],
      [['update', '1.0', '2.0'], /unexpected argument "2\.0"/],
      [['update', '../../etc'], /bad VERSION "\.\.\/\.\.\/etc": version contains a path separator/],
      [['unblock'], /VERSION is required \(usage: molt unblock VERSION \[--self\]\)/],
      [['unblock', '1.0.0', '--molt'], /unknown option --molt/],
      [['unblock', 'a/b'], /path separator/],
      [['ready', '--json'], /unknown option --json/],
    ];
    for (const [args, re] of cases) {
      const r = await molt(args, env);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.err, re, args.join(' '));
    }
    const help = await molt(['update', '--help'], env);
    assert.equal(help.code, 0);
    assert.equal(help.out, 'usage: molt update [VERSION]\n');
    assert.equal(fake.updateCalls, 0, 'no usage error reached the updater');
  });

  test('status: a compact table; --json: the full status', async () => {
    const r = await molt(['status'], env);
    assert.equal(r.code, 0, r.err);
    const lines = r.out.split('\n');
    assert.equal(lines[0], 'molt on box: idle');
    assert.ok(lines.includes('  current     1.1.0'), r.out);
    assert.ok(lines.includes('  previous    1.0.0'), r.out);
    assert.ok(lines.includes('  available   up to date'), r.out);
    assert.ok(lines.includes('  source      dir:/srv/releases  policy latest'), r.out);
    assert.ok(lines.some((l) => /^ {2}app {2}up {2}pid 777 {2}\d+m( \d+s)?$/.test(l)), r.out);
    assert.ok(lines.some((l) => /^ {2}1\.2\.1 {2}3h ago {2}crashed 2 times during its trial \(exit 1\)$/.test(l)), r.out);
    assert.ok(lines.includes('recent'), r.out);
    const j = await molt(['status', '--json'], env);
    assert.equal(j.code, 0);
    const s = JSON.parse(j.out);
    assert.equal(s.current, '1.1.0');
    assert.equal(s.services[0].pid, 777);
    assert.deepEqual(s.blocked.map((b: { version: string }) => b.version), ['1.2.1']);
  });

  test('check waits for the check and says what is available', async () => {
    const r = await molt(['check'], env);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, '1.3.0 is available\navailable: 1.3.0\n');
    assert.match(r.err, /^molt: check started \(check-\d+\)\n/);
  });

  test('update waits through download (percent lines when not a terminal) and trial, exit 0', async () => {
    const r = await molt(['update', '1.3.0'], env);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'updated to 1.3.0 (from 1.1.0)\n');
    assert.match(r.err, /^molt: update to 1\.3\.0 started \(update-\d+\)$/m);
    assert.match(r.err, /^molt: downloading 1\.3\.0$/m);
    assert.match(r.err, /^molt: download 1\.3\.0 \d+% \([\d.]+ MiB of 4\.0 MiB\)$/m);
    assert.match(r.err, /^molt: on trial 1\.3\.0 \(deadline (now|in \d+s)\)$/m);
    assert.ok(!r.err.includes('\r'), 'no terminal control characters in logs');
    assert.equal(fake.current, '1.3.0');
  });

  test('update to a version that fails its trial exits 1 with the reason; another version meanwhile is refused, none follows it', async () => {
    const first = molt(['update', '1.2.0'], env);
    for (let i = 0; i < 100 && !fake.actions.some((a) => a.version === '1.2.0' && a.state === 'running'); i++) await new Promise((r) => setTimeout(r, 20));
    const other = await molt(['update', '1.3.0'], env);
    assert.equal(other.code, 1);
    assert.match(other.err, /^molt: update to 1\.3\.0 refused: an update is already running \(update-\d+\)\n$/);
    // Without a version, the update under way is the one asked for: follow it to its end.
    const follower = molt(['update'], env);
    const [r, f] = await Promise.all([first, follower]);
    assert.equal(f.code, 1);
    assert.match(f.err, /^molt: an update is already running \(update-\d+\); following it$/m);
    assert.match(f.err, /^molt: update to 1\.2\.0 failed: 1\.2\.0 crashed/m);
    assert.equal(r.code, 1);
    assert.match(r.err, /^molt: update to 1\.2\.0 failed: 1\.2\.0 crashed 2 times during its trial \(exit 1\); rolled back to 1\.3\.0$/m);
    const h = await molt(['health'], env);
    assert.equal(h.code, 1);
    assert.match(h.err, /^molt: unhealthy: update to 1\.2\.0 failed: /);
  });

  test('blocked and unblock', async () => {
    const b = await molt(['blocked'], env);
    assert.equal(b.code, 0);
    assert.match(b.out, /^ {2}1\.2\.1 {2}3h ago {2}crashed 2 times during its trial \(exit 1\)$/m);
    assert.match(b.out, /^ {2}1\.2\.0 {2}(now|\d+s ago) +crashed/m);
    const j = JSON.parse((await molt(['blocked', '--json'], env)).out);
    assert.deepEqual(j.map((x: { version: string }) => x.version).sort(), ['1.2.0', '1.2.1']);
    const u = await molt(['unblock', '1.2.0'], env);
    assert.equal(u.code, 0);
    assert.equal(u.out, 'unblocked 1.2.0\n');
    const again = await molt(['unblock', '1.2.0'], env);
    assert.equal(again.code, 1);
    assert.equal(again.err, 'molt: 1.2.0 is not blocked\n');
  });

  test('block by hand: blocked with its reason, once; the running version refused in one line', async () => {
    const b = await molt(['block', '1.1.0', '--reason', 'bad migration'], env);
    assert.equal(b.code, 0, b.err);
    assert.equal(b.out, 'blocked 1.1.0: never installed until molt unblock 1.1.0\n');
    const list = JSON.parse((await molt(['blocked', '--json'], env)).out) as { version: string; reason: string }[];
    assert.equal(list.find((x) => x.version === '1.1.0')?.reason, 'blocked by hand: bad migration');
    assert.equal((await molt(['block', '1.1.0'], env)).out, '1.1.0 was blocked already\n');
    const running = await molt(['block', '1.3.0'], env);
    assert.equal(running.code, 1);
    assert.equal(running.err, 'molt: 1.3.0 is the running version\n');
    assert.equal((await molt(['block'], env)).code, 2);
    assert.equal((await molt(['unblock', '1.1.0'], env)).code, 0);
  });

  test('ready without a trial is fine (exit 0, says so)', async () => {
    const r = await molt(['ready'], env);
    assert.equal(r.code, 0);
    assert.equal(r.out, 'no update on trial; nothing to commit\n');
  });

  test('rollback waits and reports; health is good again afterwards', async () => {
    fake.previous = '1.1.0';
    const r = await molt(['rollback'], env);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'rolled back to 1.1.0\n');
    assert.equal(fake.current, '1.1.0');
    const h = await molt(['health'], env);
    assert.equal(h.code, 0, h.err);
    assert.match(h.out, /^healthy: app up for \d+s, version 1\.1\.0\n$/);
  });

  test('health: 1 with the reason when the app is down, unsupervised or missing', async () => {
    appStatus(0, 'down');
    let h = await molt(['health'], env);
    assert.equal(h.code, 1);
    assert.equal(h.err, 'molt: unhealthy: service app is down\n');
    appStatus(778, 'run');
    h = await molt(['health'], { ...env, MOLT_APP: 'web' });
    assert.equal(h.code, 1);
    assert.equal(h.err, `molt: unhealthy: no service directory ${path.join(services, 'web')}\n`);
    fs.closeSync(okReaders.pop()!); // the supervisor is gone
    h = await molt(['health'], env);
    assert.equal(h.code, 1);
    assert.match(h.err, /^molt: unhealthy: service app is not supervised/);
    okReaders.push(fs.openSync(path.join(services, 'app', 'supervise', 'ok'), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK));
    h = await molt(['health'], env);
    assert.equal(h.code, 0, h.err);
  });

  test('on a terminal, update draws one progress bar redrawn in place', async () => {
    // util-linux script(1) gives the command a pseudo-terminal.
    const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(cli)} update 1.3.0`;
    const r = await new Promise<Result>((resolve) => {
      const p = spawn('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      p.once('exit', (code) => resolve({ code, out, err: '' }));
    });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /\r {2}\[#*\.*\] +\d+% {2}[\d.]+ MiB of 4\.0 MiB\x1b\[K/);
    assert.doesNotMatch(r.out, /^molt: download 1\.3\.0 \d+%/m, 'no percentage lines on a terminal');
    assert.match(r.out, /updated to 1\.3\.0 \(from 1\.1\.0\)/);
  });
});
