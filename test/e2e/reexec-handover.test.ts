// Re-exec (issue 15), the handover's edges: signals that reach PID 1 while it
// re-executes are acted on by the new molt, and each kind of broken new molt
// leaves PID 1 the old molt with every service running. Real PID namespace.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cli, molt, repoRoot, runitSv, run, script, startMolt, stopAndWait, tmpdir, waitFor, type Running } from '../helpers/molt.js';

const pidOf = (slotDir: string) => Number(fs.readFileSync(path.join(slotDir, 'supervise', 'pid'), 'utf8').trim());
const count = (text: string, needle: string) => text.split(needle).length - 1;

/** A CMD that writes each USR1 and TERM it gets to `file`, and exits 5 on TERM. */
function recordingCmd(file: string, stop: string): string[] {
  return ['sh', '-c', `trap 'echo usr1 >> ${file}' USR1; trap 'echo term >> ${file}; exit 5' TERM; echo up > ${file}; while [ ! -e ${stop} ]; do sleep 0.02; done`];
}

function reexec(services: string, target?: string): void {
  const r = molt(target ? ['reexec', target] : ['reexec'], { MOLT_SERVICES: services });
  assert.equal(r.status, 0, r.stderr);
}

async function upWith(m: Running, slot: string, file: string): Promise<number> {
  await waitFor('service and CMD up', () => fs.existsSync(path.join(slot, 'supervise', 'pid')) && pidOf(slot) > 0 && fs.existsSync(file), 15_000);
  return pidOf(slot);
}

describe('molt init: signals during a re-exec are not lost', () => {
  test('USR1 and TERM sent between the decision and the exec are held, then acted on by the new molt after it adopted', async () => {
    const services = tmpdir('reexec-sig');
    const gate = path.join(services, '..', `gate-${path.basename(services)}`);
    const rec = path.join(services, '..', `rec-${path.basename(services)}`);
    script(path.join(services, 'a', 'run'), 'exec sleep 1000\n');
    const m = startMolt(['init', '--', ...recordingCmd(rec, path.join(services, 'never'))], { env: { MOLT_SERVICES: services, MOLT_TEST_REEXEC_GATE: gate } });
    try {
      const a = path.join(services, 'a');
      const pidA = await upWith(m, a, rec);
      reexec(services);
      await waitFor('the old molt decided and waits at the gate', () => m.err().includes('re-exec waits for the test gate'), 30_000);
      await m.kill('SIGUSR1');
      await waitFor('USR1 held', () => m.err().includes('signal held for after the re-exec signal=SIGUSR1'), 10_000);
      await m.kill('SIGTERM');
      await waitFor('TERM held', () => m.err().includes('signal held for after the re-exec signal=SIGTERM'), 10_000);
      assert.equal(fs.readFileSync(rec, 'utf8'), 'up\n', 'held: neither reached CMD from the old molt');
      assert.doesNotMatch(m.err(), /shutting down/, 'the old molt did not act on TERM');
      fs.writeFileSync(gate, '');
      const r = await m.exited;
      const err = m.err();
      assert.equal(count(err, 'init: starting pid=1'), 2, 'PID 1 re-executed');
      assert.match(err, /re-executing .*held_signals=SIGUSR1,SIGTERM/);
      const adopted = err.indexOf('adopted service=a ');
      const replay = err.indexOf('replaying signals received during the re-exec signals=SIGUSR1,SIGTERM');
      assert.ok(adopted > 0 && replay > adopted, 'replayed by the new molt, after adoption');
      assert.ok(err.indexOf('signal received, stopping signal=SIGTERM') > replay, 'TERM acted on: the new molt shut down');
      assert.equal(fs.readFileSync(rec, 'utf8'), 'up\nusr1\nterm\n', 'CMD got USR1, then TERM, once each');
      assert.equal(r.code, 5, "the adopted CMD's exit status is molt's");
      assert.match(err, new RegExp(`service killed service=a signal=SIGTERM`), `a (pid ${pidA}) was stopped by the new molt's shutdown, not before`);
    } finally {
      await stopAndWait(m);
    }
  });

  /** The new molt (`entry`, dist's CLI or the image's bundle) signals itself from a module loaded before its entry. */
  async function earlySignalReplayed(entry: string): Promise<void> {
    const services = tmpdir('reexec-early');
    const rec = path.join(services, '..', `rec-${path.basename(services)}`);
    const stop = path.join(services, '..', `stop-${path.basename(services)}`);
    script(path.join(services, 'a', 'run'), 'exec sleep 1000\n');
    // The new molt signals itself from a module loaded before molt's entry (so before molt init's handlers).
    const preload = path.join(services, '..', `preload-${path.basename(services)}.mjs`);
    fs.writeFileSync(preload, `if (!process.argv.includes('--check-adopt')) {
  await import(${JSON.stringify(path.join(repoRoot, 'dist/src/init/earlySignals.js'))});
  process.kill(process.pid, 'SIGUSR1');
}
`);
    const newMolt = script(path.join(services, '..', `early-${path.basename(services)}`), `#!/bin/sh\nexec ${process.execPath} --import ${preload} ${entry} "$@"\n`);
    const m = startMolt(['init', '--', ...recordingCmd(rec, stop)], { env: { MOLT_SERVICES: services } });
    try {
      await upWith(m, path.join(services, 'a'), rec);
      reexec(services, newMolt);
      await waitFor('adopted', () => m.err().includes('adopted service=a '), 30_000);
      await waitFor('CMD got the USR1 sent before the handlers existed', () => fs.readFileSync(rec, 'utf8').includes('usr1'), 10_000);
      assert.match(m.err(), /replaying signals received during the re-exec signals=SIGUSR1/);
      assert.doesNotMatch(m.err(), /Debugger listening/, "USR1 never reached Node's own handler (the inspector)");
      fs.writeFileSync(stop, '');
      assert.equal((await m.exited).code, 0);
    } finally {
      await stopAndWait(m);
    }
  }

  test('a signal reaching the new molt before molt init installed its handlers is queued and replayed', () => earlySignalReplayed(cli));

  test('the same with the image\'s bundle, where molt init is built apart from the entry that queues', async () => {
    const out = path.join(repoRoot, 'dist', 'reexec-bundle', 'molt.mjs'); // under the repository: koffi resolves from its node_modules
    const b = run(process.execPath, [path.join(repoRoot, 'scripts/bundle.mjs'), '--out', out]);
    assert.equal(b.status, 0, b.stderr);
    await earlySignalReplayed(out);
  });
});

describe('molt init: a signal before the decision is the old molt\'s', () => {
  test('TERM while the new molt is being checked: the old molt shuts down and does not exec', async () => {
    const services = tmpdir('reexec-check-term');
    const side = path.join(services, '..', `side-${path.basename(services)}`);
    fs.mkdirSync(side);
    script(path.join(services, 'a', 'run'), 'exec sleep 1000\n');
    // Its check waits for the gate, then is a real molt's check (it passes).
    const slow = script(path.join(side, 'slow-check'), `#!/bin/sh
if [ "$2" = --check-adopt ]; then touch ${side}/checking; while [ ! -e ${side}/gate ]; do sleep 0.02; done; fi
exec ${process.execPath} ${cli} "$@"
`);
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services } });
    try {
      const a = path.join(services, 'a');
      await waitFor('up', () => fs.existsSync(path.join(a, 'supervise', 'pid')) && pidOf(a) > 0, 15_000);
      reexec(services, slow);
      await waitFor('checking', () => fs.existsSync(path.join(side, 'checking')), 30_000);
      await m.kill('SIGTERM');
      await waitFor('shutting down', () => m.err().includes('signal received, stopping signal=SIGTERM'), 10_000);
      fs.writeFileSync(path.join(side, 'gate'), '');
      const r = await m.exited;
      assert.equal(r.code, 0);
      assert.equal(count(m.err(), 'init: starting pid=1'), 1, 'no exec');
      assert.doesNotMatch(m.err(), /re-executing/);
    } finally {
      await stopAndWait(m);
    }
  });
});

describe('molt init: a broken new molt leaves PID 1 the old one, every service running', () => {
  test('no koffi, exit 0 at once, ENOEXEC at the exec: refused or failed, then a good re-exec still works', async () => {
    const services = tmpdir('reexec-broken');
    const side = path.join(services, '..', `side-${path.basename(services)}`);
    fs.mkdirSync(side);
    script(path.join(services, 'a', 'run'), 'exec sleep 1000\n');
    // A real molt without koffi: a copy of dist/ beside every package but koffi.
    const tree = path.join(side, 'nokoffi');
    fs.cpSync(path.join(repoRoot, 'dist'), path.join(tree, 'dist'), { recursive: true });
    fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(tree, 'package.json'));
    fs.mkdirSync(path.join(tree, 'node_modules'));
    const modules = fs.realpathSync(path.join(repoRoot, 'node_modules'));
    for (const name of fs.readdirSync(modules)) if (name !== 'koffi' && !name.startsWith('.')) fs.symlinkSync(path.join(modules, name), path.join(tree, 'node_modules', name));
    const noKoffi = script(path.join(side, 'nokoffi-molt'), `#!/bin/sh\nexec ${process.execPath} ${path.join(tree, 'dist/src/cli/main.js')} "$@"\n`);
    // Exits 0 for anything: it must not pass for a molt that read the state.
    const quitter = script(path.join(side, 'quitter'), '#!/bin/sh\nexit 0\n');
    // Passes the check, then is replaced by a file that is executable but no program: execve fails with ENOEXEC.
    const garbage = path.join(side, 'garbage');
    fs.writeFileSync(garbage, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), { mode: 0o755 });
    const noexec = script(path.join(side, 'noexec'), `#!/bin/sh\necho 'state of 1 service(s) can be adopted'\nmv -f ${garbage} "$0"\n`);
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services } });
    try {
      const a = path.join(services, 'a');
      await waitFor('up', () => fs.existsSync(path.join(a, 'supervise', 'pid')) && pidOf(a) > 0, 15_000);
      const pidA = pidOf(a);
      const ask = (target: string) => molt(['reexec', '--wait', target], { MOLT_SERVICES: services });

      const r1 = ask(noKoffi);
      assert.equal(r1.status, 1);
      assert.match(r1.stderr, /^molt reexec: refused: the new molt cannot adopt \(exit 1: .*koffi.*\); staying on this one\n$/);
      const r2 = ask(quitter);
      assert.equal(r2.status, 1);
      assert.match(r2.stderr, /refused: the new molt cannot adopt \(exit 0 without confirming it can adopt the state\)/);
      const r3 = ask(noexec);
      assert.equal(r3.status, 1);
      assert.match(r3.stderr, /^molt reexec: failed: execve.*(ENOEXEC|Exec format error)/);

      assert.equal(count(m.err(), 'init: starting pid=1'), 1, 'PID 1 never left the old molt');
      assert.equal(pidOf(a), pidA, 'the service kept running');
      assert.equal(fs.existsSync(path.join(services, '.molt-reexec.state')), false, 'no state left behind');
      // After the failed execve the old molt still has its own signal handlers (PIPE, XFSZ, TERM...).
      const pid1 = await m.moltPid();
      const caught = BigInt(`0x${/SigCgt:\s*(\w+)/.exec(fs.readFileSync(`/proc/${pid1}/status`, 'utf8'))![1]}`);
      for (const sig of [13, 15, 25]) assert.ok(caught & (1n << BigInt(sig - 1)), `signal ${sig} still caught`);
      // Still supervising, and a good re-exec goes through and says so.
      run(runitSv, ['term', a]);
      await waitFor('a restarted', () => pidOf(a) > 0 && pidOf(a) !== pidA, 15_000);
      const pidA2 = pidOf(a);
      const ok = molt(['reexec', '--wait'], { MOLT_SERVICES: services });
      assert.equal(ok.status, 0, ok.stderr);
      assert.equal(ok.stdout, 'molt reexec: re-executed: 1 service(s) adopted\n');
      assert.equal(pidOf(a), pidA2);
    } finally {
      const r = await stopAndWait(m);
      assert.equal(r.code, 0);
    }
  });

  test('a service in its restart backoff is handed over: the new molt waits the delay out and starts it', async () => {
    const services = tmpdir('reexec-backoff');
    const go = path.join(services, '..', `go-${path.basename(services)}`);
    script(path.join(services, 'flap', 'run'), `if [ -e ${go} ]; then exec sleep 1000; fi\nexit 1\n`);
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services, MOLT_MAX_BACKOFF: '60s' } });
    try {
      // A wait of 4 s or more: long enough that the re-exec (check child included) falls inside it.
      await waitFor('a long backoff', () => /restart throttled service=flap wait_ms=([4-9]\d{3}|\d{5})/.test(m.err()), 30_000);
      const ok = molt(['reexec', '--wait'], { MOLT_SERVICES: services });
      assert.equal(ok.status, 0, ok.stderr);
      await waitFor('the new molt adopted flap, still throttled', () => /adopted service=flap\b/.test(m.err()), 10_000);
      assert.equal(count(m.err(), 'init: starting pid=1'), 2);
      assert.match(run(runitSv, ['status', path.join(services, 'flap')]).stdout, /^down: /);
      fs.writeFileSync(go, '');
      const flap = path.join(services, 'flap');
      await waitFor('started by the new molt once the delay is over', () => run(runitSv, ['status', flap]).stdout.startsWith('run: '), 30_000);
    } finally {
      await stopAndWait(m);
    }
  });
});
