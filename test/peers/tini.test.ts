// krallin/tini's test/ (MIT): run_inner_tests.py, run_outer_tests.py and their
// stage scripts, re-expressed against molt init. Each test names the tini
// check it mirrors; where the outcome depends on the check and not on the
// init, it also runs against Debian's tini first. test/peers/README.md lists
// every tini check and why the others do not apply.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { descendantsOf, script, tmpdir, waitFor } from '../helpers/molt.js';
import { asPid1, killAll, moltEnv, moltInit, onPty, sig, start } from './harness.js';

const TINI = ['tini', '-s', '--'];

describe('tini run_inner_tests.py: exit code test', () => {
  for (const code of [0, 1, 2, 42, 127, 128, 143, 254, 255]) {
    test(`inclusive (-e ${code}) and exclusive (-e every other code) for ${code}`, async () => {
      assert.equal(await start([...moltInit(['-e', String(code)]), 'sh', '-c', `exit ${code}`], moltEnv()).exited, 0);
      const others = Array.from({ length: 256 }, (_, i) => i).filter((c) => c !== code).flatMap((c) => ['-e', String(c)]);
      // Their exclusive run passes no `--` (POSIXLY_CORRECT): options end at CMD.
      const r = start([process.execPath, ...moltInit().slice(1, -1), ...others, 'sh', '-c', `exit ${code}`], moltEnv());
      assert.equal(await r.exited, code);
    });
  }
});

/**
 * test/reaping/stage_1.py + stage_2.py: stage 2 starts 100 sleeps and exits; stage 1
 * (the init's child) waits until it is the init's only descendant, every descendant
 * on the way being in its process group, then fails if any process other than itself
 * is still in that group. It relies on the init giving its child a group of its own.
 * (Sleeps of 0.3 to 0.7 s here, not 1 to 3 s.)
 */
function reapingStage1(): string {
  const dir = tmpdir('reaping');
  const stage2 = script(path.join(dir, 'stage_2.sh'), `i=0\nwhile [ $i -lt 100 ]; do sleep 0.$((3 + i % 5)) & i=$((i+1)); done\n`);
  return script(
    path.join(dir, 'stage_1.mjs'),
    `#!${process.execPath}
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
const pgid = (pid) => { try { const s = fs.readFileSync('/proc/' + pid + '/stat', 'utf8'); return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[2]); } catch { return undefined; } };
const children = (pid) => { try { return fs.readdirSync('/proc/' + pid + '/task').flatMap((t) => fs.readFileSync('/proc/' + pid + '/task/' + t + '/children', 'utf8').split(' ').filter(Boolean).map(Number)); } catch { return []; } };
const tree = (pid) => children(pid).flatMap((c) => [c, ...tree(c)]);
spawnSync(${JSON.stringify(stage2)}, { stdio: 'inherit' });
const me = process.pid, init = process.ppid, mine = pgid(me);
for (let i = 0; ; i++) {
  const pids = tree(init);
  for (const p of pids) { const g = pgid(p); if (g !== undefined && g !== mine) { console.log('Child had unexpected pgid: ' + p); process.exit(1); } }
  if (pids.length === 1 && pids[0] === me) break;
  if (i > 200) { console.log('still there: ' + pids.join(' ')); process.exit(1); }
  await new Promise((r) => setTimeout(r, 50));
}
for (const p of fs.readdirSync('/proc').filter((n) => /^\\d+$/.test(n)).map(Number)) {
  if (p !== me && pgid(p) === mine) { console.log('Not reaped: pid ' + p); process.exit(1); }
}
console.log('reaped');
`,
  );
}

describe('tini run_inner_tests.py: reaping test', () => {
  test('reaping test (tini -s itself, to check the check)', async () => {
    const r = start([...TINI, reapingStage1()]);
    assert.equal(await r.exited, 0, r.err());
  });
  test('reaping test (molt not PID 1: a subreaper, as with tini -s)', async () => {
    const r = start([...moltInit(), reapingStage1()], moltEnv());
    const code = await r.exited;
    assert.equal(code, 0, `${await r.line().catch(() => '')}\n${r.err()}`);
    assert.doesNotMatch(r.err(), /zombie|cannot become a child subreaper/);
  });
  test('reaping test (molt as PID 1, as in run_outer_tests.py)', async () => {
    const r = start([...asPid1(moltInit()), reapingStage1()], moltEnv());
    assert.equal(await r.exited, 0, r.err());
  });
});

/** test/signals/test.py: the child runs `sleep 100` and waits; TERM, USR1 and USR2 to the init end it with 128+sig. */
describe('tini signals test (run_inner_tests.py and run_outer_tests.py)', () => {
  for (const name of ['SIGTERM', 'SIGUSR1', 'SIGUSR2'] as const) {
    for (const [label, argv] of [
      ['not PID 1', moltInit()],
      ['PID 1', asPid1(moltInit())],
    ] as const) {
      test(`${name} gives ${128 + sig[name]} (molt ${label})`, async () => {
        const r = start([...argv, 'sh', '-c', 'sleep 100; :'], moltEnv());
        const target = label === 'PID 1' ? await waitFor('molt', () => descendantsOf(r.proc.pid!)[0]) : r.proc.pid!;
        await waitFor('the child and its sleep', () => descendantsOf(target).length > 1, 10_000);
        const tree = descendantsOf(r.proc.pid!);
        process.kill(target, name);
        try {
          assert.equal(await r.exited, 128 + sig[name]);
        } finally {
          killAll(tree);
        }
      });
    }
  }
});

describe('tini run_inner_tests.py: signal configuration test', () => {
  // sigconf-test.c ignores TTOU, SEGV, INT and blocks TTIN, ILL, TERM, then execs the
  // init; tini's child still has them. Node resets every disposition and the mask
  // before molt's first line runs, so molt cannot see them: CMD starts with none
  // ignored or blocked, Node's own ignored PIPE and XFSZ included (README: a
  // documented difference). The ignoring half is done with sh's `trap ''`.
  const status = (init: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = start(['sh', '-c', `trap '' TTOU SEGV INT; exec "$@"`, 'sh', ...init, 'cat', '/proc/self/status'], env);
    return r.exited.then(async () => {
      const fields: Record<string, bigint> = {};
      for (;;) {
        const l = await r.line(1000).catch(() => undefined);
        if (l === undefined) break;
        const m = /^(SigBlk|SigIgn):\s+([0-9a-f]+)$/.exec(l);
        if (m) fields[m[1]!] = BigInt('0x' + m[2]!);
      }
      return fields;
    });
  };
  const bit = (n: number) => 1n << BigInt(n - 1);
  test('tini keeps the ignored set (to show the check and the difference)', async () => {
    const f = await status(TINI);
    for (const n of [sig.SIGTTOU, sig.SIGSEGV, sig.SIGINT]) assert.ok((f.SigIgn! & bit(n)) !== 0n, `signal ${n} still ignored`);
  });
  test('molt: CMD has no signal ignored or blocked', async () => {
    const f = await status(moltInit(), moltEnv());
    assert.equal(f.SigIgn, 0n);
    assert.equal(f.SigBlk, 0n);
  });
});

describe('tini run_inner_tests.py: parent death signal test', () => {
  // pdeathsignal/stage_1.py runs `init -p SIGUSR1 -- stage_2 PID FILE`; stage 2 kills
  // stage 1 (the init's parent); the init gets USR1 and passes it on; stage 2 writes ok.
  for (const [label, init] of [
    ['tini itself, to check the check', ['tini', '-p', 'SIGUSR1', '--']],
    ['molt', moltInit(['-p', 'SIGUSR1'])],
  ] as const) {
    test(`parent death signal test (${label})`, async () => {
      const dir = tmpdir('pdeath');
      const ok = path.join(dir, 'ret');
      const stage2 = script(path.join(dir, 'stage_2.sh'), `trap 'printf ok > ${ok}; exit 0' USR1\nkill -KILL $1\ni=0\nwhile [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done\n`);
      const stage1 = script(path.join(dir, 'stage_1.sh'), `${init.join(' ')} ${stage2} $$\n`);
      const r = start([stage1], moltEnv());
      await r.exited;
      await waitFor('stage 2 wrote ok', () => fs.existsSync(ok) && fs.readFileSync(ok, 'utf8') === 'ok', 10_000);
    });
  }
});

describe('tini run_outer_tests.py: exit code of a missing binary', () => {
  test('zzzz gives 127', async () => {
    assert.equal(await start([...asPid1(moltInit()), 'zzzz'], moltEnv()).exited, 127);
  });
});

describe('tini run_outer_tests.py: TTY handling (docker run -it, here script + unshare, no setsid)', () => {
  test('dash, then `exit 0`, exits 0', async () => {
    const t = onPty(asPid1(moltInit()).join(' ') + ' dash', moltEnv());
    try {
      await waitFor('the prompt', () => t.out().includes('#') || t.out().includes('$ '), 10_000);
      t.type('\n');
      t.type('exit 0\n');
      assert.equal(await t.status(), 0, t.out());
      assert.doesNotMatch(t.out(), /Cannot set tty process group/);
    } finally {
      t.p.kill('SIGKILL');
    }
  });

  test("dash -c 'while true; do echo #; sleep 0.1; done', then Ctrl-C, exits 130", async () => {
    const t = onPty(`${asPid1(moltInit()).join(' ')} dash -c 'while true; do echo \\#; sleep 0.1; done'`, moltEnv());
    try {
      await waitFor('the loop', () => t.out().includes('#'), 10_000);
      t.type('\x03');
      assert.equal(await t.status(), 130, t.out());
    } finally {
      t.p.kill('SIGKILL');
    }
  });
});
