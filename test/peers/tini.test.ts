// krallin/tini's test/ (MIT): run_inner_tests.py, run_outer_tests.py and their
// stage scripts, re-expressed against molt init. Each test names the tini
// check it mirrors; where the outcome depends on the check and not on the
// init, it also runs against Debian's tini first. test/peers/README.md lists
// every tini check and why the others do not apply.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cli, descendantsOf, repoRoot, script, tmpdir, waitFor } from '../helpers/molt.js';
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
  // sigconf-test.c ignores TTOU, SEGV and INT, blocks TTIN, ILL and TERM, then execs the
  // init; its CMD `cat /proc/self/status` must still have them (tini restores the mask and
  // the dispositions it changed). The same in Perl (perl-base is Essential in Debian),
  // whose exec passes on exactly these six.
  const IGNORED = [sig.SIGTTOU, sig.SIGSEGV, sig.SIGINT];
  const BLOCKED = [sig.SIGTTIN, sig.SIGILL, sig.SIGTERM];
  const sigconf = [
    'perl',
    '-e',
    'use POSIX; $SIG{$_} = "IGNORE" for qw(TTOU SEGV INT); sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGTTIN, SIGILL, SIGTERM)) or die; exec {$ARGV[0]} @ARGV or die',
  ];
  const mask = (nums: number[]) => nums.reduce((m, n) => m | (1n << BigInt(n - 1)), 0n);
  /** SigIgn and SigBlk of CMD, `cat /proc/self/status`, run by the init at the end of `argv`. */
  const status = async (argv: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = start([...argv, 'cat', '/proc/self/status'], env);
    assert.equal(await r.exited, 0, r.err());
    const fields: Record<string, bigint> = {};
    for (;;) {
      const l = await r.line(1000).catch(() => undefined);
      if (l === undefined) break;
      const m = /^(SigBlk|SigIgn):\s+([0-9a-f]+)$/.exec(l);
      if (m) fields[m[1]!] = BigInt('0x' + m[2]!);
    }
    return fields;
  };
  /**
   * The image's `molt` (docker/molt) as it is, but for the bundle's path, which is this
   * checkout's entry file; node is on its PATH, as in the image.
   */
  const wrapper = (): { file: string; env: NodeJS.ProcessEnv } => {
    const text = fs.readFileSync(path.join(repoRoot, 'docker/molt'), 'utf8');
    const bundle = '/usr/local/lib/molt/molt.mjs';
    assert.equal(text.split(bundle).length, 2, 'docker/molt runs the bundle at ' + bundle);
    const file = script(path.join(tmpdir('wrapper'), 'molt'), text.replace(bundle, cli));
    return { file, env: { ...moltEnv(), PATH: `${path.dirname(process.execPath)}:${process.env.PATH}` } };
  };
  const same = (f: Record<string, bigint>) => {
    assert.equal(f.SigIgn?.toString(16), mask(IGNORED).toString(16), 'SigIgn: TTOU, SEGV, INT');
    assert.equal(f.SigBlk?.toString(16), mask(BLOCKED).toString(16), 'SigBlk: TTIN, ILL, TERM');
  };

  test('tini keeps both (to check the check)', async () => {
    same(await status([...sigconf, ...TINI]));
  });
  test("molt through the image's molt command (sh): CMD keeps both, molt not PID 1", async () => {
    const w = wrapper();
    same(await status([...sigconf, w.file, 'init', '--'], w.env));
  });
  test("molt through the image's molt command (sh): CMD keeps both, molt PID 1 with no terminal", async () => {
    // As PID 1 without a terminal CMD is otherwise spawned straight (libuv resets signals).
    const w = wrapper();
    same(await status(asPid1([...sigconf, w.file, 'init', '--']), w.env));
  });
  test('molt through the molt command run by bash: bash ignores QUIT itself, CMD does not get it', async () => {
    const w = wrapper();
    same(await status([...sigconf, 'bash', w.file, 'init', '--'], w.env));
  });
  test('molt started by node itself (no wrapper): CMD has none, not even Node\'s own PIPE and XFSZ', async () => {
    // Node resets every disposition and the mask before molt's first line: without
    // the wrapper's note, what the parent set is gone (docs/init.md says so).
    const f = await status([...sigconf, ...moltInit()], moltEnv());
    assert.equal(f.SigIgn, 0n);
    assert.equal(f.SigBlk, 0n);
  });
  test('services do not inherit them, and neither services nor CMD see MOLT_INHERITED_SIGNALS (runsvdir passes nothing on)', async () => {
    const w = wrapper();
    const out = path.join(tmpdir('sigconf-svc'), 'svc.txt');
    const svc = path.join(w.env.MOLT_SERVICES!, 'probe');
    fs.mkdirSync(svc);
    script(
      path.join(svc, 'run'),
      `#!/bin/sh\n{ while read -r k v; do case $k in SigIgn:|SigBlk:) echo "$k $v" ;; esac; done < /proc/$$/status; env; } > ${out}.new\nmv ${out}.new ${out}\nexec sleep 100\n`,
    );
    // CMD waits (bounded) for the service's note, then reports its own environment.
    const cmd = `i=0; while [ ! -e ${out} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; env`;
    const r = start([...sigconf, w.file, 'init', '--', 'sh', '-c', cmd], w.env);
    assert.equal(await r.exited, 0, r.err());
    const note = fs.readFileSync(out, 'utf8');
    assert.match(note, /^SigIgn: 0+$/m);
    assert.match(note, /^SigBlk: 0+$/m);
    assert.match(note, /^MOLT_SERVICE=probe$/m, 'the service wrote its environment');
    assert.doesNotMatch(note, /MOLT_INHERITED_SIGNALS/);
    let cmdEnv = '';
    for (;;) {
      const l = await r.line(1000).catch(() => undefined);
      if (l === undefined) break;
      cmdEnv += l + '\n';
    }
    assert.match(cmdEnv, /^MOLT_SERVICES=/m, "CMD's environment was read");
    assert.doesNotMatch(cmdEnv, /MOLT_INHERITED_SIGNALS/);
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
