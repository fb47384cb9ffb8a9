// `molt sv` against Debian's runit: real runsv processes on temporary service
// directories, the same command through /usr/bin/sv and through molt, and the
// same stdout, stderr and exit code expected from both.
//
// Read-only commands run against one runsv, one command after the other.
// Commands that change state run on twins: two identical service directories,
// each with its own runsv, one per sv, run at the same time; their output may
// then differ only in pids (other processes) and seconds (by one tick).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeStatus, encodeStatus, type SuperviseStatus } from '../../src/supervise/status.js';

const SV = '/usr/bin/sv';
const RUNSV = '/usr/bin/runsv';
const MOLT = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const haveRunit = fs.existsSync(SV) && fs.existsSync(RUNSV);
const skip = haveRunit ? false : 'Debian runit (/usr/bin/sv, /usr/bin/runsv) is not installed';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-sv-'));
const runsvs: ChildProcess[] = [];

after(() => {
  // runsv is started in its own process group, with its services in it: one
  // KILL per group ends runsv, the service and its logger, TERM-deaf or not.
  for (const p of runsvs) {
    try {
      if (p.pid) process.kill(-p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  fs.rmSync(root, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------
// Service directories

const scripts = {
  sleeper: '#!/bin/sh\nexec sleep 1000\n',
  // Ignores TERM (the disposition survives exec): only KILL stops it.
  deaf: "#!/bin/sh\ntrap '' TERM\nexec sleep 1000\n",
  logger: '#!/bin/sh\nexec cat >/dev/null\n',
};

interface ServiceSpec {
  run?: string;
  /** Mode of ./run; 0o644 makes runsv fail to start it, once a second. */
  runMode?: number;
  down?: boolean;
  log?: boolean;
  check?: string;
  checkMode?: number;
}

function makeService(dir: string, spec: ServiceSpec): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'run'), spec.run ?? scripts.sleeper, { mode: spec.runMode ?? 0o755 });
  if (spec.down) fs.writeFileSync(path.join(dir, 'down'), '');
  if (spec.check !== undefined) fs.writeFileSync(path.join(dir, 'check'), spec.check, { mode: spec.checkMode ?? 0o755 });
  if (spec.log) {
    fs.mkdirSync(path.join(dir, 'log'));
    fs.writeFileSync(path.join(dir, 'log', 'run'), scripts.logger, { mode: 0o755 });
  }
}

function startRunsv(dir: string): ChildProcess {
  const p = spawn(RUNSV, [dir], { stdio: 'ignore', detached: true });
  runsvs.push(p);
  return p;
}

function readStatus(dir: string): SuperviseStatus | undefined {
  try {
    const b = fs.readFileSync(path.join(dir, 'supervise', 'status'));
    return b.length === 20 ? decodeStatus(b) : undefined;
  } catch {
    return undefined;
  }
}

async function waitFor(dir: string, what: string, ok: (s: SuperviseStatus) => boolean, ms = 5000): Promise<SuperviseStatus> {
  const deadline = performance.now() + ms;
  for (;;) {
    const s = readStatus(dir);
    if (s && ok(s)) return s;
    if (performance.now() > deadline) throw new Error(`${dir}: not ${what} within ${ms} ms (status ${JSON.stringify(s)})`);
    await sleep(25);
  }
}

const isUp = (s: SuperviseStatus) => s.state === 'run' && s.pid > 0;
const isDown = (s: SuperviseStatus) => s.state === 'down' && s.pid === 0;

/** Writes control letters straight into runsv's FIFO (set-up, not under test). */
function sendControl(dir: string, letters: string): void {
  const fd = fs.openSync(path.join(dir, 'supervise', 'control'), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  try {
    fs.writeSync(fd, letters);
  } finally {
    fs.closeSync(fd);
  }
}

/** Starts runsv on a service and waits until it (and its logger) settled. */
async function supervise(dir: string, spec: ServiceSpec): Promise<void> {
  makeService(dir, spec);
  startRunsv(dir);
  if (spec.runMode === 0o644) await waitFor(dir, 'flapping', (s) => s.want === 'up');
  else await waitFor(dir, spec.down ? 'down' : 'up', spec.down ? isDown : isUp);
  if (spec.log) await waitFor(path.join(dir, 'log'), 'up', isUp);
}

/** Waits until the wall clock is in a later second than the service's stamp on both twins. */
async function untilSecondAfter(dirs: { real: string; molt: string }, name: string): Promise<void> {
  const stamps = [dirs.real, dirs.molt].map((d) => readStatus(path.join(d, name))!.stampMs);
  const target = (Math.floor(Math.max(...stamps) / 1000) + 1) * 1000;
  const wait = target - Date.now();
  if (wait > 0) await sleep(wait + 10);
}

let twinCount = 0;

/** Two service directories with the same services, each under its own runsv. */
async function twins(services: Record<string, ServiceSpec>): Promise<{ real: string; molt: string }> {
  const n = ++twinCount;
  const dirs = { real: path.join(root, `twin${n}-real`), molt: path.join(root, `twin${n}-molt`) };
  await Promise.all(
    Object.values(dirs).flatMap((svdir) =>
      Object.entries(services).map(([name, spec]) => supervise(path.join(svdir, name), spec)),
    ),
  );
  return dirs;
}

// ---------------------------------------------------------------------------
// Running both implementations

interface Ran {
  out: string;
  err: string;
  code: number | null;
  /** When the command started, wall clock: seconds fields depend on it. */
  startedMs: number;
}

function runCmd(cmd: string, args: string[], svdir: string, cwd = root, extraEnv: Record<string, string> = {}): Promise<Ran> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.MOLT_SERVICES;
  delete env.SVWAIT;
  Object.assign(env, { SVDIR: svdir }, extraEnv);
  const startedMs = Date.now();
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    // Every command here ends within a few seconds; 20 s means it hung.
    const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ out, err, code, startedMs });
    });
  });
}

const realSv = (args: string[], svdir: string, cwd?: string, env?: Record<string, string>) => runCmd(SV, args, svdir, cwd, env);
const moltSv = (args: string[], svdir: string, cwd?: string, env?: Record<string, string>) =>
  runCmd(process.execPath, [MOLT, 'sv', ...args], svdir, cwd, env);

/** Seconds in status lines: `: 12s` when down, `) 12s` when running. */
const SECONDS = /(?<=[:)] )(\d+)(?=s\b)/g;

/**
 * Same text, except for pids on twins, and seconds fields: those may differ
 * by one tick, plus the whole seconds between the two commands' starts when
 * they could not run at the same time.
 */
function assertSameText(real: string, molt: string, what: string, maskPids: boolean, slackSec: number): void {
  const mask = (s: string) => (maskPids ? s.replace(/\(pid \d+\)/g, '(pid N)') : s);
  const a = mask(real);
  const b = mask(molt);
  assert.equal(b.replace(SECONDS, '#'), a.replace(SECONDS, '#'), `${what}: molt sv differs from sv`);
  const secsA = [...a.matchAll(SECONDS)].map((m) => Number(m[1]));
  const secsB = [...b.matchAll(SECONDS)].map((m) => Number(m[1]));
  for (const [i, s] of secsA.entries()) {
    assert.ok(Math.abs(s - secsB[i]!) <= 1 + slackSec, `${what}: seconds ${secsB[i]} vs sv's ${s}\n${molt}`);
  }
}

function assertSame(real: Ran, molt: Ran, what: string, maskPids = false): void {
  const slack = Math.ceil(Math.abs(molt.startedMs - real.startedMs) / 1000);
  assertSameText(real.out, molt.out, `${what} (stdout)`, maskPids, slack);
  assertSameText(real.err, molt.err, `${what} (stderr)`, maskPids, slack);
  assert.equal(molt.code, real.code, `${what}: exit code`);
}

/**
 * One command through both, on the same directory: at the same time when it
 * only reads (status, check), else one after the other.
 */
async function compare(args: string[], svdir: string, cwd?: string, env?: Record<string, string>, readOnly = false): Promise<Ran> {
  let real: Ran;
  let molt: Ran;
  if (readOnly) [real, molt] = await Promise.all([realSv(args, svdir, cwd, env), moltSv(args, svdir, cwd, env)]);
  else {
    real = await realSv(args, svdir, cwd, env);
    molt = await moltSv(args, svdir, cwd, env);
  }
  assertSame(real, molt, `sv ${args.join(' ')}`);
  return real;
}

type Settle = Record<string, (s: SuperviseStatus) => boolean>;

/**
 * One command through both, each on its twin, at the same time; then, once
 * runsv has acted on it (`settle`: a condition per service), the states must
 * match too.
 */
async function compareTwins(args: string[], dirs: { real: string; molt: string }, names: string[], settle: Settle = {}): Promise<[Ran, Ran]> {
  const [real, molt] = await Promise.all([realSv(args, dirs.real), moltSv(args, dirs.molt)]);
  assertSame(real, molt, `sv ${args.join(' ')}`, true);
  await Promise.all(
    [dirs.real, dirs.molt].flatMap((svdir) =>
      Object.entries(settle).map(([name, ok]) => waitFor(path.join(svdir, name), `settled after sv ${args.join(' ')}`, ok)),
    ),
  );
  const [sReal, sMolt] = await Promise.all([realSv(['status', ...names], dirs.real), realSv(['status', ...names], dirs.molt)]);
  assertSame(sReal, sMolt, `state after sv ${args.join(' ')}`, true);
  return [real, molt];
}

// ---------------------------------------------------------------------------
// Read-only: status and errors, on one set of services

const shared = path.join(root, 'shared');

test('set up shared services under real runsv', { skip }, async () => {
  await Promise.all([
    supervise(path.join(shared, 'run'), {}),
    supervise(path.join(shared, 'normdown'), { down: true }),
    supervise(path.join(shared, 'upnormdown'), { down: true }),
    supervise(path.join(shared, 'logged'), { log: true }),
    supervise(path.join(shared, 'paused'), {}),
    supervise(path.join(shared, 'termed'), { run: scripts.deaf }),
    supervise(path.join(shared, 'flap'), { runMode: 0o644 }),
    supervise(path.join(shared, 'gone'), {}),
    // Ignores HUP, so that reload leaves it running.
    supervise(path.join(shared, 'checked'), { run: "#!/bin/sh\ntrap '' HUP\nexec sleep 1000\n", check: '#!/bin/sh\nexit 0\n' }),
  ]);
  sendControl(path.join(shared, 'upnormdown'), 'u');
  await waitFor(path.join(shared, 'upnormdown'), 'up', isUp);
  sendControl(path.join(shared, 'paused'), 'p');
  await waitFor(path.join(shared, 'paused'), 'paused', (s) => s.paused);
  sendControl(path.join(shared, 'termed'), 'd');
  await waitFor(path.join(shared, 'termed'), 'TERMed', (s) => s.gotTerm && s.want === 'down');
  // A runsv killed outright leaves supervise/ok with no reader: "runsv not running".
  const gone = runsvs.find((p) => p.spawnargs[1] === path.join(shared, 'gone'))!;
  process.kill(-gone.pid!, 'SIGKILL');
  await new Promise((r) => (gone.exitCode !== null || gone.signalCode !== null ? r(null) : gone.once('exit', r)));
  // log/ added after runsv started: it has no supervise/ (sv then reprints stale bytes).
  fs.mkdirSync(path.join(shared, 'run', 'log'));
  // log that is a file: sv cannot change into it.
  makeService(path.join(shared, 'logfile'), {});
  startRunsv(path.join(shared, 'logfile'));
  await waitFor(path.join(shared, 'logfile'), 'up', isUp);
  fs.writeFileSync(path.join(shared, 'logfile', 'log'), '');
  // No runsv ever: no supervise/ at all.
  makeService(path.join(shared, 'never'), {});
});

test('status of a running service whose log is a file', { skip }, async () => {
  const r = await compare(['status', 'logfile'], shared);
  assert.match(r.out, /^run: logfile: \(pid \d+\) \d+s; warning: logfile\/log: unable to change directory: not a directory\n$/);
});

test('status of a service that is down with a down file, and normally down but running', { skip }, async () => {
  const r = await compare(['status', 'normdown', 'upnormdown'], shared);
  assert.match(r.out, /^down: normdown: \d+s\nrun: upnormdown: \(pid \d+\) \d+s, normally down\n$/);
});

test('status with a log service prints the logger after "; "', { skip }, async () => {
  const r = await compare(['status', 'logged'], shared);
  assert.match(r.out, /^run: logged: \(pid \d+\) \d+s; run: log: \(pid \d+\) \d+s\n$/);
});

test('status of a log/ without supervise/ warns, then reprints the service bytes as log', { skip }, async () => {
  const r = await compare(['status', 'run'], shared);
  assert.match(r.out, /^run: run: \(pid (\d+)\) \d+s; warning: run\/log: unable to open supervise\/ok: file does not exist\nrun: log: \(pid \1\) \d+s\n$/);
  assert.equal(r.code, 1);
});

test('status of paused and of got TERM services', { skip }, async () => {
  const r = await compare(['status', 'paused', 'termed'], shared);
  assert.match(r.out, /^run: paused: \(pid \d+\) \d+s, paused\nrun: termed: \(pid \d+\) \d+s, want down, got TERM\n$/);
});

test('status of a service wanted up that fails to start', { skip }, async () => {
  // runsv retries once a second; the short "run" moments are retried past.
  for (let attempt = 0; ; attempt++) {
    const real = await realSv(['status', 'flap'], shared);
    const molt = await moltSv(['status', 'flap'], shared);
    if (attempt < 5 && !(real.out.includes('want up') && molt.out.includes('want up'))) continue;
    assertSame(real, molt, 'sv status flap');
    assert.match(real.out, /^down: flap: \d+s, normally up, want up\n$/);
    break;
  }
});

test('status of a directory whose runsv is gone, and of one runsv never ran in', { skip }, async () => {
  const r = await compare(['status', 'gone', 'never'], shared);
  assert.equal(r.out, 'fail: gone: runsv not running\nwarning: never: unable to open supervise/ok: file does not exist\n');
  assert.equal(r.code, 2);
});

test('status of a missing directory, an empty name, and -v (status does not wait)', { skip }, async () => {
  const r = await compare(['-v', 'status', 'missing', '', 'paused'], shared);
  assert.match(r.out, /^fail: missing: unable to change to service directory: file does not exist\nfail: : unable to change/);
  assert.equal(r.code, 2);
});

test('names starting with "." or "/" or ending in "/" are paths', { skip }, async () => {
  await compare(['status', './shared/paused', `${shared}/termed`, 'shared/logged/'], '/nonexistent', root);
  // Waiting, sv forgets the trailing-"/" rule and looks under SVDIR: so do we.
  const r = await compare(['-v', 'up', 'shared/paused/'], '/nonexistent', root);
  assert.equal(r.out, 'fail: shared/paused/: unable to change to service directory: file does not exist\n');
});

test('molt reads MOLT_SERVICES before SVDIR', { skip }, async () => {
  const real = await realSv(['status', 'normdown'], shared);
  const molt = await moltSv(['status', 'normdown'], '/nonexistent', undefined, { MOLT_SERVICES: shared });
  assertSame(real, molt, 'MOLT_SERVICES');
});

test('status of many services counts each failure in the exit code', { skip }, async () => {
  const names = ['normdown', ...Array.from({ length: 5 }, (_, i) => `missing${i}`), 'gone'];
  const r = await compare(['status', ...names], shared);
  assert.equal(r.code, 6);
});

test('check commands: passing, failing and non-executable ./check', { skip }, async () => {
  const dir = path.join(shared, 'checked');
  let r = await compare(['check', 'checked', 'normdown'], shared);
  assert.match(r.out, /^ok: run: checked: \(pid \d+\) \d+s\nok: down: normdown: \d+s\n$/);
  // stdout is closed for ./check: this echo fails, so the check does.
  fs.writeFileSync(path.join(dir, 'check'), '#!/bin/sh\necho ready\n', { mode: 0o755 });
  r = await compare(['-w', '1', 'check', 'checked'], shared, undefined, undefined, true);
  assert.match(r.out, /^timeout: run: checked: \(pid \d+\) \d+s\n$/);
  assert.equal(r.code, 1);
  r = await compare(['-w1', 'start', 'checked'], shared);
  assert.equal(r.code, 1);
  // A check that cannot be executed warns and counts as passed, as in sv.
  fs.writeFileSync(path.join(dir, 'check'), '#!/bin/sh\nexit 1\n');
  fs.chmodSync(path.join(dir, 'check'), 0o644); // the mode option applies only to new files
  r = await compare(['check', 'checked'], shared);
  assert.equal(r.err, 'warning: unable to run checked/check: access denied\n');
  assert.equal(r.code, 0);
  fs.writeFileSync(path.join(dir, 'check'), '#!/bin/sh\necho "check ran" >&2\nexit 0\n');
  fs.chmodSync(path.join(dir, 'check'), 0o755);
  r = await compare(['-v', 'reload', 'checked'], shared);
  assert.match(r.out, /^ok: run: checked: \(pid \d+\) \d+s\n$/);
});

test('usage errors exit 100 with the usage line on stderr', { skip }, async () => {
  const cases = [[], ['status'], ['bogus', 'x'], ['restartx', 'x'], ['force-foo', 'x'], ['-z', 'up', 'x'], ['-w'], ['-', 'x'], ['', 'x']];
  for (const args of cases) {
    const real = await realSv(args, shared);
    const molt = await moltSv(args, shared);
    assert.equal(real.code, 100);
    assert.equal(molt.code, 100, `molt sv ${args.join(' ')}`);
    assert.equal(molt.out, real.out);
    assert.equal(molt.err.replaceAll('molt sv', 'sv'), real.err, `stderr of molt sv ${args.join(' ')}`);
  }
});

test('-- ends the options, and a word starting with -- is dropped like it', { skip }, async () => {
  await compare(['--', 'status', 'normdown'], shared);
  await compare(['--foo', 'status', 'normdown'], shared);
  await compare(['-vw5', 'status', 'normdown'], shared);
});

// ---------------------------------------------------------------------------
// Commands that change state: twins

test('up and down, without and with -v', { skip }, async () => {
  const dirs = await twins({ a: { down: true }, b: {} });
  let [r] = await compareTwins(['up', 'a'], dirs, ['a'], { a: isUp });
  assert.equal(r.out, '');
  [r] = await compareTwins(['down', 'a', 'b'], dirs, ['a', 'b'], { a: isDown, b: isDown });
  assert.equal(r.code, 0);
  let m: Ran;
  [r, m] = await compareTwins(['-v', 'up', 'a', 'b'], dirs, ['a', 'b']);
  assert.match(r.out, /^ok: run: a: \(pid \d+\) \d+s, normally down\nok: run: b: \(pid \d+\) \d+s\n$/);
  // The pid molt printed is the one its runsv started.
  const pidB = fs.readFileSync(path.join(dirs.molt, 'b', 'supervise', 'pid'), 'utf8').trim();
  assert.match(m.out, new RegExp(`ok: run: b: \\(pid ${pidB}\\)`));
  [r] = await compareTwins(['-v', 'down', 'a', 'b'], dirs, ['a', 'b']);
  assert.match(r.out, /^ok: down: a: \d+s\nok: down: b: \d+s, normally up\n$/);
});

test('once, pause and cont, term, kill', { skip }, async () => {
  const dirs = await twins({ s: { down: true } });
  // once is done at once for a service down since before sv started; here
  // it must wait for the start: let a new second begin after runsv's stamp.
  await untilSecondAfter(dirs, 's');
  let [r] = await compareTwins(['-v', 'once', 's'], dirs, ['s']);
  assert.match(r.out, /^ok: run: s: \(pid \d+\) \d+s, normally down, want down\n$/);
  [r] = await compareTwins(['-v', 'pause', 's'], dirs, ['s']);
  assert.match(r.out, /, paused, want down\n$/);
  [r] = await compareTwins(['-v', 'cont', 's'], dirs, ['s']);
  assert.doesNotMatch(r.out, /paused/);
  await compareTwins(['up', 's'], dirs, ['s'], { s: (st) => st.want === 'up' });
  // -v term waits for the restart (a stamp not older than sv's start).
  await untilSecondAfter(dirs, 's');
  [r] = await compareTwins(['-v', 'term', 's'], dirs, ['s']);
  assert.match(r.out, /^ok: run: s: \(pid \d+\) \d+s, normally down\n$/);
  const before = { real: readStatus(path.join(dirs.real, 's'))!.pid, molt: readStatus(path.join(dirs.molt, 's'))!.pid };
  const [k, km] = await Promise.all([realSv(['kill', 's'], dirs.real), moltSv(['kill', 's'], dirs.molt)]);
  assertSame(k, km, 'sv kill s');
  assert.equal(k.out, '');
  // Killed, and restarted by runsv as it is wanted up: a new pid in both.
  await waitFor(path.join(dirs.real, 's'), 'restarted', (st) => isUp(st) && st.pid !== before.real);
  await waitFor(path.join(dirs.molt, 's'), 'restarted', (st) => isUp(st) && st.pid !== before.molt);
  // down after once (wanted down, not TERMed): sv still sends d.
  await compareTwins(['once', 's'], dirs, ['s'], { s: (st) => st.want === 'down' });
  [r] = await compareTwins(['-v', 'down', 's'], dirs, ['s']);
  assert.match(r.out, /^ok: down: s: \d+s\n$/);
});

test('-w 1 stop on a service that ignores TERM times out with rc 1', { skip }, async () => {
  const dirs = await twins({ deaf: { run: scripts.deaf } });
  const [r] = await compareTwins(['-w', '1', 'stop', 'deaf'], dirs, ['deaf']);
  assert.match(r.out, /^timeout: run: deaf: \(pid \d+\) \d+s, want down, got TERM\n$/);
  assert.equal(r.code, 1);
});

test('force-stop kills a service that ignores TERM when the wait runs out', { skip }, async () => {
  const dirs = await twins({ deaf: { run: scripts.deaf }, ok: {} });
  const [r] = await compareTwins(['-w', '1', 'force-stop', 'deaf', 'ok'], dirs, ['deaf', 'ok'], { deaf: isDown });
  assert.match(r.out, /^ok: down: ok: \d+s, normally up\nkill: run: deaf: \(pid \d+\) \d+s, want down, got TERM\n$/);
  assert.equal(r.code, 1);
});

test('restart waits for the new process and its ./check', { skip }, async () => {
  const dirs = await twins({ app: { check: '#!/bin/sh\nexit 0\n', log: true } });
  // Else the old process, stamped in sv's first second, would already count as restarted.
  await untilSecondAfter(dirs, 'app');
  const [r] = await compareTwins(['restart', 'app'], dirs, ['app']);
  assert.match(r.out, /^ok: run: app: \(pid \d+\) \d+s\n$/);
});

test('several services with one failing: each failure counts', { skip }, async () => {
  const dirs = await twins({ a: {}, b: { down: true } });
  const [r] = await compareTwins(['-v', 'up', 'a', 'nope', 'b', '/nonexistent/x'], dirs, ['a', 'b']);
  assert.equal(r.code, 2);
  assert.match(r.out, /^fail: nope: unable to change .*\nfail: \/nonexistent\/x: unable .*\nok: run: a: .*\nok: run: b: .*normally down\n$/);
});

test('exit: runsv stops, and -v waits until it is gone', { skip }, async () => {
  const dirs = await twins({ x: {} });
  const [r, m] = await Promise.all([realSv(['-v', 'exit', 'x'], dirs.real), moltSv(['-v', 'exit', 'x'], dirs.molt)]);
  assertSame(r, m, 'sv -v exit x');
  assert.equal(r.out, 'ok: x: runsv not running\n');
  await compare(['status', 'x'], dirs.molt);
  await compare(['exit', 'x'], dirs.molt);
});

// ---------------------------------------------------------------------------
// Which bytes reach supervise/control: a supervise/ whose FIFOs the test
// holds open, with a status file the test writes, read by both sv's.

test('control bytes: skipped when already in effect, sent whole otherwise', { skip }, async () => {
  const dir = path.join(root, 'fake', 'svc');
  fs.mkdirSync(path.join(dir, 'supervise'), { recursive: true });
  execFileSync('mkfifo', [path.join(dir, 'supervise', 'ok'), path.join(dir, 'supervise', 'control')]);
  const { O_RDONLY, O_NONBLOCK } = fs.constants;
  const okFd = fs.openSync(path.join(dir, 'supervise', 'ok'), O_RDONLY | O_NONBLOCK);
  const ctlFd = fs.openSync(path.join(dir, 'supervise', 'control'), O_RDONLY | O_NONBLOCK);
  const drain = () => {
    const b = Buffer.alloc(64);
    try {
      return b.subarray(0, fs.readSync(ctlFd, b)).toString();
    } catch {
      return ''; // EAGAIN: nothing written
    }
  };
  const base: SuperviseStatus = { stampMs: Date.now() - 5000, pid: 4242, paused: false, want: 'up', gotTerm: false, state: 'run' };
  const cases: Array<[Partial<SuperviseStatus>, string, string]> = [
    [{}, 'up', ''],
    [{}, 'down', 'd'],
    [{ want: 'down', gotTerm: true }, 'down', ''],
    [{ want: 'down' }, 'down', 'd'], // taken up with once
    [{ want: 'down', gotTerm: true }, 'up', 'u'],
    [{}, 'restart', 'tcu'],
    [{}, 'try-restart', 'tc'],
    [{}, 'hup', 'h'],
    [{}, 'exit', 'x'],
    [{}, 'force-reload', 'tck'], // -w 0 runs out at once: KILL
    [{ pid: 0, state: 'down', want: 'down' }, 'once', 'o'],
    [{}, '2', '2'],
    [{}, 'alarm', 'a'],
    [{}, 'interrupt', 'i'],
    [{}, 'quit', 'q'],
    [{}, 'term', 't'],
    [{}, 'kill', 'k'],
  ];
  try {
    for (const [over, cmd, bytes] of cases) {
      fs.writeFileSync(path.join(dir, 'supervise', 'status'), encodeStatus({ ...base, ...over }));
      // LSB commands wait: -w 0 makes that one round (then timeout, or kill).
      const args = cmd.includes('-') || cmd === 'restart' ? ['-w', '0', cmd, 'svc'] : [cmd, 'svc'];
      const real = await realSv(args, path.dirname(dir));
      assert.equal(drain(), bytes, `sv ${args.join(' ')} with ${JSON.stringify(over)}`);
      const molt = await moltSv(args, path.dirname(dir));
      assert.equal(drain(), bytes, `molt sv ${args.join(' ')} with ${JSON.stringify(over)}`);
      assertSame(real, molt, `sv ${args.join(' ')}`);
    }
    // States runsv passes through too fast to catch: finish, and odd mixes.
    const states: Array<Partial<SuperviseStatus>> = [
      { state: 'finish', want: 'down' },
      { state: 'finish', paused: true, gotTerm: true },
      { state: 'down', pid: 0, want: 'up' },
      { state: 'run', stampMs: Date.now() + 60_000 }, // stamp in the future: 0s
    ];
    for (const over of states) {
      fs.writeFileSync(path.join(dir, 'supervise', 'status'), encodeStatus({ ...base, ...over }));
      await compare(['status', 'svc'], path.dirname(dir));
    }
    // A short status file is a bad format.
    fs.writeFileSync(path.join(dir, 'supervise', 'status'), 'short');
    const r = await compare(['status', 'svc'], path.dirname(dir));
    assert.equal(r.out, 'warning: svc: unable to read supervise/status: bad format\n');
  } finally {
    fs.closeSync(okFd);
    fs.closeSync(ctlFd);
  }
});
