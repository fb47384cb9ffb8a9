// Yelp/dumb-init's tests/ (MIT), re-expressed against molt init. Each test
// names the dumb-init test it mirrors; where a check's outcome depends on the
// check and not on the init, it also runs against Debian's dumb-init first, so
// the check is known to hold for the peer. test/peers/README.md lists every
// dumb-init test and why the others do not apply.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { childrenOf, descendantsOf, script, tmpdir, waitFor } from '../helpers/molt.js';
import { asPid1, killAll, moltEnv, moltInit, onPty, printSignals, processState, sig, start, SUSPEND } from './harness.js';

const DUMB_INIT = ['dumb-init'];
const live = (pid: number) => ['running', 'sleeping'].includes(processState(pid) ?? '');

describe('dumb-init exit_status_test', () => {
  for (const status of [0, 1, 2, 32, 64, 127, 254, 255]) {
    test(`test_exit_status_regular_exit[${status}]`, async () => {
      assert.equal(await start([...moltInit(), 'sh', '-c', `exit ${status}`], moltEnv()).exited, status);
    });
  }
  for (const name of ['SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGKILL'] as const) {
    test(`test_exit_status_terminated_by_signal[${name}]`, async () => {
      // Node, not sh: dash and bash differ (dumb-init#115), as their test notes.
      const r = start([...moltInit(), process.execPath, '-e', `process.kill(process.pid, '${name}')`], moltEnv());
      assert.equal(await r.exited, 128 + sig[name]);
    });
  }
});

/** Every signal 1..31 but KILL, STOP, CHLD and the tty three, less what molt documents it does not relay. */
const NOT_RELAYED = new Set([sig.SIGPIPE, sig.SIGILL, sig.SIGTRAP, sig.SIGBUS, sig.SIGFPE, sig.SIGSEGV]);
const NORMAL = Array.from({ length: 31 }, (_, i) => i + 1).filter(
  (n) => ![sig.SIGKILL, sig.SIGSTOP, sig.SIGCHLD, ...SUSPEND].includes(n) && !NOT_RELAYED.has(n),
);

async function proxies(init: string[], env: NodeJS.ProcessEnv, sequence: number[]): Promise<void> {
  const r = start([...init, printSignals()], env);
  const pids = () => descendantsOf(r.proc.pid!);
  try {
    assert.match(await r.line(10_000), /^ready \(pid: \d+\)$/);
    for (const n of sequence) {
      r.proc.kill(n);
      assert.equal(await r.line(), String(n), `signal ${n} reached the child`);
    }
  } finally {
    killAll([...pids(), r.proc.pid!]);
  }
}

describe('dumb-init proxies_signals_test', () => {
  // Ascending, as their frozenset iterates: INT (2) starts molt's shutdown, and every
  // signal after it, TERM and QUIT included, must still reach the child.
  test('test_proxies_signals (dumb-init itself, to check the check)', () => proxies(DUMB_INIT, { DUMB_INIT_SETSID: '0' }, NORMAL));
  test('test_proxies_signals', () => proxies(moltInit(), moltEnv(), NORMAL));
  test('test_proxies_signals_with_rewrite[no rewrite: TERM, QUIT, CONT, INT]', () =>
    proxies(moltInit(), moltEnv(), [sig.SIGTERM, sig.SIGQUIT, sig.SIGCONT, sig.SIGINT]));
  test('test_proxies_signals_with_rewrite[no rewrite], repeated: a second TERM and QUIT reach the child', () =>
    proxies(moltInit(), moltEnv(), [sig.SIGTERM, sig.SIGTERM, sig.SIGQUIT, sig.SIGQUIT, sig.SIGINT]));
});

describe('dumb-init child_processes_test', () => {
  test('test_setsid_signals_entire_group: TERM ends the whole `yes|tail & yes|tail` pipeline', async () => {
    const r = start([...moltInit(), 'sh', '-c', "yes 'oh, hi' | tail & yes error | tail >&2"], moltEnv());
    // Their six are dumb-init, sh and the four; molt's descendants are the last five.
    const pids = await waitFor('sh and the four', () => {
      const d = descendantsOf(r.proc.pid!);
      return d.length === 5 && d;
    }, 10_000);
    r.proc.kill('SIGTERM');
    try {
      await r.exited;
      await waitFor('every one gone', () => pids.every((p) => !live(p) && processState(p) !== 'stopped'), 5000);
    } finally {
      killAll(pids);
    }
  });

  test('test_all_processes_receive_term_on_exit_if_setsid: a child left behind by CMD gets TERM', async () => {
    const printer = printSignals();
    const r = start([...moltInit(), 'sh', '-c', `${printer} & sleep 1`], { ...moltEnv(), MOLT_STOP_TIMEOUT: '1s' });
    const pid = Number(/^ready \(pid: (\d+)\)$/.exec(await r.line(10_000))?.[1]);
    try {
      assert.equal(await r.line(), '15');
      assert.equal(await r.exited, 0, 'the status is CMD\'s');
    } finally {
      killAll([pid]);
    }
  });

  for (const args of [['/doesnotexist'], ['--', '/doesnotexist']]) {
    test(`test_fails_nonzero_with_bad_exec[${args.join(' ')}]`, async () => {
      const r = start([process.execPath, ...moltInit().slice(1, -1), ...args], moltEnv());
      assert.notEqual(await r.exited, 0);
      assert.match(r.err(), /\/doesnotexist: not found/);
    });
  }
});

async function shellBackground(init: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const r = start([...init, printSignals({ stoppable: true })], env);
  const initPid = r.proc.pid!;
  const child = Number(/^ready \(pid: (\d+)\)$/.exec(await r.line(10_000))?.[1]);
  try {
    for (const n of SUSPEND) {
      assert.ok(live(initPid) && live(child), 'both running');
      process.kill(initPid, n);
      await waitFor(`both stopped by ${n}`, () => processState(child) === 'stopped' && processState(initPid) === 'stopped', 5000);
      process.kill(initPid, 'SIGCONT');
      assert.equal(await r.line(), String(sig.SIGCONT));
      await waitFor('both running again', () => live(initPid) && live(child), 5000);
    }
  } finally {
    killAll([child, initPid]);
  }
}

describe('dumb-init shell_background_test', () => {
  // In dumb-init's setsid mode TSTP/TTOU/TTIN reach the child as STOP; molt sends them
  // as they are to CMD's process group (not orphaned, so they stop it) and stops
  // itself once CMD has stopped. The child here keeps their default action.
  test('test_shell_background_support_setsid (dumb-init itself, to check the check)', () => shellBackground(DUMB_INIT, {}));
  test('test_shell_background_support_setsid: TSTP, TTOU, TTIN stop CMD and molt; CONT resumes both', () =>
    shellBackground(moltInit(), moltEnv()));
});

describe('dumb-init cwd_test', () => {
  for (const [label, init, env] of [
    ['dumb-init itself, to check the check', DUMB_INIT, {}],
    ['molt', moltInit(), moltEnv()],
  ] as const) {
    test(`test_working_directories (${label}): the child starts in the init's start directory, the init holds /`, async () => {
      // dumb-init changes directory after its fork: give it a moment (bounded) to do so.
      const settle = 'i=0; while [ "$(readlink /proc/$PPID/cwd)" != / ] && [ $i -lt 40 ]; do sleep 0.05; i=$((i+1)); done; ';
      const r = start([...init, 'sh', '-c', settle + 'readlink /proc/$PPID/cwd && readlink /proc/$$/cwd'], env, '/tmp');
      const first = await r.line(10_000);
      const second = await r.line();
      assert.equal(await r.exited, 0);
      assert.deepEqual([first, second], ['/', '/tmp']);
    });
  }

  test('relative MOLT_SERVICES is resolved before the chdir: its service runs', async () => {
    const base = tmpdir('relsvc');
    const marker = path.join(base, 'ran');
    script(path.join(base, 'svc', 'one', 'run'), `touch ${marker}\nexec sleep 100\n`);
    const r = start([...moltInit(), 'sh', '-c', `i=0; while [ ! -e ${marker} ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; [ -e ${marker} ]`], { MOLT_SERVICES: 'svc' }, base);
    assert.equal(await r.exited, 0, r.err());
  });
});

describe('dumb-init tty_test', () => {
  test('test_tty: `tac` on a pty round-trips, nothing else is written (molt is quiet on a tty)', async () => {
    const t = onPty(`stty -echo -opost; exec ${moltInit().join(' ')} tac`, moltEnv());
    try {
      await new Promise((r) => setTimeout(r, 1500)); // `script` passes input only once the pty is open
      t.type('1\n2\n3\n');
      t.type('\x04\x04');
      assert.equal(await t.status(), 0);
      assert.equal(t.out(), '3\n2\n1\n');
    } finally {
      t.p.kill('SIGKILL');
    }
  });

  test('test_child_gets_controlling_tty_if_we_had_one: `bash -m` under molt has job control', async () => {
    const t = onPty(`stty -echo -opost; exec ${asPid1(moltInit()).join(' ')} bash --norc --noprofile -m`, moltEnv());
    try {
      await new Promise((r) => setTimeout(r, 1500));
      t.type('echo "flags are: [[$-]]"\n');
      t.type('exit 0\n');
      assert.equal(await t.status(), 0, t.out());
      const flags = /flags are: \[\[([a-zA-Z]+)\]\]/.exec(t.out())?.[1];
      assert.ok(flags?.includes('m'), t.out());
    } finally {
      t.p.kill('SIGKILL');
    }
  });
});

describe('dumb-init tests/test-zombies', () => {
  test('as PID 1: a grandchild left as a zombie is reaped within a second', async () => {
    const r = start(
      [...asPid1(moltInit()), 'sh', '-c', `sh -c "sh -c 'echo i am a zombie' &" & sleep 1
z=0; for f in /proc/[0-9]*/stat; do read -r l < "$f" 2>/dev/null || continue; case "$l" in *") Z "*) z=$((z+1));; esac; done; echo "zombies=$z"`],
      moltEnv(),
    );
    assert.equal(await r.line(10_000), 'i am a zombie');
    assert.equal(await r.line(), 'zombies=0');
    assert.equal(await r.exited, 0);
    assert.deepEqual(childrenOf(r.proc.pid!), []);
  });
});
