// molt init as PID 1 of a fresh PID namespace: exit codes, signal relay,
// zombie reaping, grace then KILL. Real processes, real signals.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { alive, cli, script, startMolt, stopAndWait, tmpdir, waitFor } from '../helpers/molt.js';

const emptyServices = () => tmpdir('empty');

describe('molt init -- CMD: exit status', () => {
  for (const n of [0, 1, 3, 42, 255]) {
    test(`CMD exiting ${n} makes molt exit ${n}`, async () => {
      const m = startMolt(['init', '--', 'sh', '-c', `exit ${n}`], { env: { MOLT_SERVICES: emptyServices() } });
      assert.deepEqual(await m.exited, { code: n, signal: null });
    });
  }

  test('CMD killed by signal N gives 128+N', async () => {
    const m = startMolt(['init', '--', 'sh', '-c', 'kill -QUIT $$'], { env: { MOLT_SERVICES: emptyServices() } });
    assert.equal((await m.exited).code, 128 + 3);
  });

  test('a missing CMD exits 127 naming it; a non-executable one exits 126', async () => {
    const missing = startMolt(['init', '--', '/nonexistent/prog'], { env: { MOLT_SERVICES: emptyServices() } });
    assert.equal((await missing.exited).code, 127);
    assert.match(missing.err(), /cannot run \/nonexistent\/prog: not found/);
    const dir = tmpdir('noexec');
    const file = path.join(dir, 'prog');
    fs.writeFileSync(file, '#!/bin/sh\necho hi\n', { mode: 0o644 });
    const noexec = startMolt(['init', '--', file], { env: { MOLT_SERVICES: emptyServices() } });
    assert.equal((await noexec.exited).code, 126);
    assert.match(noexec.err(), /permission denied/);
  });

  test('a bad setting is refused with exit 2 and one line naming it', async () => {
    const m = startMolt(['init', '--', 'true'], { env: { MOLT_STOP_TIMEOUT: 'later' } });
    assert.equal((await m.exited).code, 2);
    assert.equal(m.err().trim(), 'molt init: MOLT_STOP_TIMEOUT="later" is not a duration (examples: 7s, 500ms, 1m)');
  });
});

describe('molt init: signals', () => {
  test('HUP, USR1 (Node reserves it for the inspector), USR2, WINCH, ALRM and the rest tini forwards reach CMD; TERM stops it', async () => {
    const dir = tmpdir('sig');
    const relayed = ['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGALRM', 'SIGCONT', 'SIGTSTP', 'SIGURG', 'SIGVTALRM', 'SIGXCPU', 'SIGXFSZ', 'SIGIO', 'SIGPWR'] as const;
    const printer = script(
      path.join(dir, 'printer.mjs'),
      `#!${process.execPath}
for (const s of [${relayed.map((x) => `'${x}'`).join(',')},'SIGTERM']) process.on(s, () => { console.log('got ' + s); if (s === 'SIGTERM') process.exit(0); });
console.log('ready'); setInterval(() => {}, 1000);
`,
    );
    const m = startMolt(['init', '--', printer], { env: { MOLT_SERVICES: emptyServices() } });
    await waitFor('printer ready', () => m.out().includes('ready'), 10_000);
    for (const sig of relayed) {
      await m.kill(sig);
      await waitFor(`${sig} relayed`, () => m.out().includes(`got ${sig}`), 5000);
    }
    await m.kill('SIGTERM');
    const r = await m.exited;
    assert.match(m.out(), /got SIGTERM/);
    assert.equal(r.code, 0, 'CMD exited 0 on TERM, so molt does');
    assert.doesNotMatch(m.err(), /Debugger listening/, 'USR1 did not start the inspector');
  });

  test('TERM to PID 1 with an unhandling CMD exits 143 (docker stop)', async () => {
    const m = startMolt(['init', '--', 'sleep', '100'], { env: { MOLT_SERVICES: emptyServices() } });
    await waitFor('molt started', () => m.err().includes('starting'), 10_000);
    await m.kill('SIGTERM');
    assert.equal((await m.exited).code, 143);
  });

  test('-e 143 counts CMD killed by TERM as success (tini -e); a bad -e is a usage error', async () => {
    const m = startMolt(['init', '-e', '143', '--', 'sleep', '100'], { env: { MOLT_SERVICES: emptyServices() } });
    await waitFor('molt started', () => m.err().includes('starting'), 10_000);
    await m.kill('SIGTERM');
    assert.equal((await m.exited).code, 0);
    assert.match(m.err(), /exit status counted as success \(-e\) status=143/);
    const bad = startMolt(['init', '-e', 'x', '--', 'true'], { env: { MOLT_SERVICES: emptyServices() }, pidns: false });
    assert.equal((await bad.exited).code, 2);
    assert.match(bad.err(), /^molt init: -e wants an exit code from 0 to 255, got "x"\n$/);
  });

  test('-p TERM: when molt (not PID 1) loses its parent, it gets TERM and shuts down (tini -p)', async () => {
    const dir = tmpdir('pdeath');
    const pidfile = path.join(dir, 'molt.pid');
    const errfile = path.join(dir, 'molt.err');
    const parent = spawn('sh', ['-c', `MOLT_SERVICES=${emptyServices()} "${process.execPath}" "${cli}" init -p TERM -- sleep 1000 2>${errfile} & echo $! > ${pidfile}; wait`], { stdio: 'ignore', detached: true });
    const pid = await waitFor('molt pid', () => fs.existsSync(pidfile) && Number(fs.readFileSync(pidfile, 'utf8')), 5000);
    await waitFor('molt started', () => fs.existsSync(errfile) && fs.readFileSync(errfile, 'utf8').includes('starting'), 10_000);
    try {
      process.kill(parent.pid!, 'SIGKILL');
      await waitFor('molt gone', () => !alive(pid), 10_000);
      assert.match(fs.readFileSync(errfile, 'utf8'), /signal received, stopping signal=SIGTERM/);
    } finally {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
  });

  test('not PID 1: ABRT, SYS and PROF are relayed; a SEGV that kills molt leaves CMD a TERM, not an orphan\'s life', async () => {
    const dir = tmpdir('fatal');
    const printer = script(
      path.join(dir, 'printer.mjs'),
      `#!${process.execPath}
for (const s of ['SIGABRT', 'SIGSYS', 'SIGPROF', 'SIGTERM']) process.on(s, () => { console.log('got ' + s); if (s === 'SIGTERM') process.exit(0); });
console.log('ready ' + process.pid); setInterval(() => {}, 1000);
`,
    );
    const m = startMolt(['init', '--', printer], { env: { MOLT_SERVICES: emptyServices() }, pidns: false });
    const cmd = Number(await waitFor('printer ready', () => /ready (\d+)/.exec(m.out())?.[1], 10_000));
    try {
      for (const sig of ['SIGABRT', 'SIGSYS', 'SIGPROF'] as const) {
        await m.kill(sig);
        await waitFor(`${sig} relayed`, () => m.out().includes(`got ${sig}`), 5000);
      }
      // Node cannot safely catch a fault signal (a handler returns to the faulting
      // instruction), so it kills molt; CMD's parent-death signal is TERM.
      await m.kill('SIGSEGV');
      assert.equal((await m.exited).signal, 'SIGSEGV');
      await waitFor('CMD got TERM', () => m.out().includes('got SIGTERM'), 5000);
      await waitFor('CMD gone', () => !alive(cmd), 5000);
    } finally {
      if (alive(cmd)) process.kill(cmd, 'SIGKILL');
    }
  });

  test('a storm of relayed signals does not hurt PID 1', async () => {
    const m = startMolt(['init', '--', 'sh', '-c', 'trap "" HUP USR2; echo ready; sleep 100'], { env: { MOLT_SERVICES: emptyServices() } });
    await waitFor('ready', () => m.out().includes('ready'), 10_000);
    const pid = await m.moltPid();
    for (let i = 0; i < 2000; i++) process.kill(pid, i % 2 ? 'SIGHUP' : 'SIGUSR2');
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(alive(pid), 'molt survived the storm');
    await m.kill('SIGTERM');
    assert.equal((await m.exited).code, 143);
  });
});

describe('molt init: wrappers', () => {
  test('docker stop with a wrapper CMD: the child the wrapper leaves behind gets TERM at once, not KILL after the grace time', async () => {
    const dir = tmpdir('wrapper');
    const app = script(path.join(dir, 'app.sh'), `#!/bin/sh\ntrap 'echo app got TERM; exit 0' TERM\necho app ready\nwhile :; do sleep 0.05; done\n`);
    // The wrapper dies of its TERM (no trap, no exec) and leaves the app to PID 1.
    const m = startMolt(['init', '--', 'sh', '-c', `${app} & wait`], { env: { MOLT_SERVICES: emptyServices(), MOLT_STOP_TIMEOUT: '3s' } });
    await waitFor('app ready', () => m.out().includes('app ready'), 10_000);
    await m.kill('SIGTERM');
    const r = await m.exited;
    assert.match(m.out(), /app got TERM/);
    assert.doesNotMatch(m.err(), /grace time over/, 'nothing was left for KILL');
    assert.equal(r.code, 143, "the wrapper's status: killed by TERM");
  });
});

describe('molt init: zombies', () => {
  test('2,000 orphans are reaped: no zombie left 1 s after they die, and service exit codes stay right', async () => {
    const services = tmpdir('storm-svc');
    const marks = path.join(services, 'finish.log');
    // A service that exits 7 at once: its finish records what molt saw (libuv's exit status).
    script(path.join(services, 'seven', 'run'), 'exit 7\n');
    script(path.join(services, 'seven', 'finish'), `echo "$1 $2" >> ${marks}\n`);
    const storm = script(
      path.join(tmpdir('storm'), 'storm.sh'),
      `#!/bin/sh
# Each sleep becomes an orphan of PID 1 when the inner shell exits at once.
sh -c 'i=0; while [ $i -lt 2000 ]; do sleep 0.3 & i=$((i+1)); done'
sleep 1.3
# A zombie counts when it is still one 0.5 s later (same pid and start time): the
# supervised service below restarts on its own schedule, and its run may be caught
# in the microseconds between its exit and libuv's waitpid.
zombies() {
  for f in /proc/[0-9]*/stat; do
    read -r line < "$f" 2>/dev/null || continue
    case "$line" in *") Z "*) set -- $line; echo "$1:\${22}";; esac
  done
}
first=$(zombies)
sleep 0.5
second=$(zombies)
z=0
for a in $first; do
  for b in $second; do [ "$a" = "$b" ] && z=$((z+1)); done
done
echo "zombies=$z"
`,
    );
    const m = startMolt(['init', '--', storm], { env: { MOLT_SERVICES: services } });
    const r = await m.exited;
    assert.equal(r.code, 0, m.err());
    assert.match(m.out(), /zombies=0\n/);
    const seen = fs.readFileSync(marks, 'utf8').trim().split('\n');
    assert.ok(seen.length >= 1);
    for (const line of seen) assert.equal(line, '7 0', 'finish got the real exit code during the storm');
  });
});

describe('molt init: shutdown', () => {
  test('at shutdown a logger outlives its producer: the lines the producer writes on its way out are logged too', async () => {
    const services = tmpdir('drain');
    const out = path.join(services, 'chatty.out');
    script(
      path.join(services, 'chatty', 'run'),
      // It takes its time to say its last words: a logger stopped with it would miss them.
      `i=0\ntrap 'sleep 0.3; echo "last $i"; exit 0' TERM\nwhile :; do i=$((i+1)); echo "line $i"; sleep 0.002; done\n`,
    );
    script(path.join(services, 'chatty', 'log', 'run'), `exec cat >> ${out}\n`);
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services } });
    await waitFor('lines flowing', () => fs.existsSync(out) && fs.readFileSync(out, 'utf8').split('\n').length > 200, 10_000);
    await m.kill('SIGTERM');
    assert.equal((await m.exited).code, 0);
    const lines = fs.readFileSync(out, 'utf8').trim().split('\n');
    const last = lines.pop()!;
    const n = Number(/^last (\d+)$/.exec(last)?.[1]);
    assert.ok(n > 0, `the producer's last words were logged: ${JSON.stringify(last)}`);
    assert.equal(lines.length, n, 'every line before them too');
    lines.forEach((l, i) => assert.equal(l, `line ${i + 1}`));
  });

  test('a service that ignores TERM is killed when the grace time is over', async () => {
    const services = tmpdir('grace');
    script(path.join(services, 'stubborn', 'run'), `trap '' TERM\necho up\nexec sleep 1000\n`);
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services, MOLT_STOP_TIMEOUT: '1s' } });
    await waitFor('service up', () => m.out().includes('[stubborn] up'), 10_000);
    const t0 = performance.now();
    await m.kill('SIGTERM');
    const r = await m.exited;
    const took = performance.now() - t0;
    assert.equal(r.code, 0, 'a requested shutdown exits 0');
    assert.ok(took >= 900, `waited the grace time (${Math.round(took)} ms)`);
    assert.match(m.err(), /grace time over, killing what is left/);
  });

  test('as a subreaper (not PID 1), adopted orphans are killed at shutdown, TERM-ignoring ones included', async () => {
    const services = tmpdir('orphans');
    const pidfile = path.join(services, 'orphan.pid');
    script(
      path.join(services, 'spawner', 'run'),
      `sh -c 'trap "" TERM; echo $$ > ${pidfile}; while :; do sleep 1; done' &\nexec sleep 1000\n`,
    );
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services, MOLT_STOP_TIMEOUT: '1s' }, pidns: false });
    const orphan = await waitFor('orphan pid', () => {
      try {
        return Number(fs.readFileSync(pidfile, 'utf8')) || undefined;
      } catch {
        return undefined;
      }
    }, 10_000);
    assert.ok(alive(orphan));
    // Not stopAndWait: it would clean up after molt, and this test must see molt do it.
    await m.kill('SIGTERM');
    const r = await m.exited;
    assert.equal(r.code, 0);
    await waitFor('orphan gone', () => !alive(orphan), 3000).finally(() => {
      if (alive(orphan)) process.kill(orphan, 'SIGKILL');
    });
  });

  test('an essential service that exits ends the container with its status', async () => {
    const services = tmpdir('essential');
    script(path.join(services, 'main', 'run'), 'sleep 0.3\nexit 5\n');
    fs.writeFileSync(path.join(services, 'main', 'essential'), '');
    script(path.join(services, 'side', 'run'), 'exec sleep 1000\n');
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services } });
    const r = await m.exited;
    assert.equal(r.code, 5);
    assert.match(m.err(), /essential service exited, stopping the container service=main status=5/);
  });

  test('services get their down-signal at shutdown', async () => {
    const services = tmpdir('downsig');
    script(path.join(services, 'q', 'run'), `trap 'echo got-quit; exit 0' QUIT\ntrap '' TERM\necho up\nwhile :; do sleep 0.1; done\n`);
    fs.writeFileSync(path.join(services, 'q', 'down-signal'), 'QUIT\n');
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services, MOLT_STOP_TIMEOUT: '5s' } });
    await waitFor('up', () => m.out().includes('[q] up'), 10_000);
    const t0 = performance.now();
    const r = await stopAndWait(m);
    assert.equal(r.code, 0);
    assert.match(m.out(), /\[q\] got-quit/);
    assert.ok(performance.now() - t0 < 4000, 'stopped by QUIT, not by the grace KILL');
  });
});
