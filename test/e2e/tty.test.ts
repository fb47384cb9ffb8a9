// `docker run -it IMAGE` with molt as PID 1: an interactive shell as CMD, on a
// real pty (util-linux's `script` allocates it and passes our keystrokes to
// it). Job control must work: Ctrl-Z stops the foreground job, `fg` resumes
// it, Ctrl-C reaches the job and not molt, and the shell's exit is molt's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cli, tmpdir, waitFor } from '../helpers/molt.js';

test('an interactive shell as CMD on a pty has job control: Ctrl-Z, fg, Ctrl-C, exit status', async () => {
  const inner = `unshare --pid --fork --mount-proc ${process.execPath} ${cli} init -- bash --norc --noprofile -i`;
  const p = spawn('script', ['-qfec', inner, '/dev/null'], {
    env: { ...process.env, MOLT_SERVICES: tmpdir('tty-services'), MOLT_LOG_LEVEL: 'info', TERM: 'dumb' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  p.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
  const type = (s: string) => p.stdin.write(s);
  const since = (mark: number) => out.slice(mark);
  try {
    await waitFor('prompt', () => /bash-\S+[#$] /.test(out), 15_000);
    type('echo "flags:$-"\n');
    const flags = await waitFor('flags', () => /flags:([A-Za-z]+)/.exec(out)?.[1], 5000);
    assert.ok(flags.includes('m'), `job control is on ($- is ${flags})`);

    let mark = out.length;
    type('sleep 100\n');
    await new Promise((r) => setTimeout(r, 500));
    type('\x1a'); // Ctrl-Z
    await waitFor('stopped', () => /Stopped\s+sleep 100/.test(since(mark)), 5000);
    mark = out.length;
    type('jobs -l\n');
    await waitFor('jobs', () => /Stopped\s+sleep 100/.test(since(mark)), 5000);

    mark = out.length;
    type('fg\n');
    await waitFor('resumed', () => since(mark).includes('sleep 100'), 5000);
    await new Promise((r) => setTimeout(r, 300));
    type('\x03'); // Ctrl-C: to the foreground job, not to molt
    mark = out.length;
    await new Promise((r) => setTimeout(r, 300));
    type('echo "rc:$?"\n');
    await waitFor('rc', () => /rc:\d+/.test(since(mark)), 5000);
    assert.match(since(mark), /rc:130/, 'sleep died of the SIGINT');
    assert.doesNotMatch(out, /molt: init: signal received, stopping/, 'molt itself did not take the Ctrl-C as a shutdown');

    type('exit 7\n');
    const code = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), 10_000))]);
    assert.equal(code, 7, `molt exited with the shell's status\n${out}`);
  } finally {
    p.kill('SIGKILL');
  }
});

test('molt as a job of an interactive shell (not PID 1): Ctrl-Z stops CMD and molt, the shell gets its prompt, fg gives CMD the terminal back', async () => {
  const p = spawn('script', ['-qfec', 'bash --norc --noprofile -i', '/dev/null'], {
    env: { ...process.env, MOLT_SERVICES: tmpdir('tty-job-services'), TERM: 'dumb' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  p.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const type = (s: string) => p.stdin.write(s);
  const since = (mark: number) => out.slice(mark);
  try {
    await waitFor('prompt', () => /bash-\S+[#$] /.test(out), 15_000);
    let mark = out.length;
    // "cmd 2" is not in the echoed command line: only CMD running prints it.
    type(`${process.execPath} ${cli} init -- sh -c 'echo cmd $((1+1)); read line; echo "read: $line"'\n`);
    await waitFor('CMD up', () => since(mark).includes('cmd 2'), 10_000);
    mark = out.length;
    type('\x1a'); // Ctrl-Z: to CMD's group, which holds the terminal
    await waitFor('the shell saw its job stop', () => /Stopped/.test(since(mark)), 5000);
    mark = out.length;
    type('fg\n');
    await waitFor('resumed', () => since(mark).includes('init'), 5000);
    await new Promise((r) => setTimeout(r, 500));
    type('hello\n'); // CMD reads the terminal again: it is the foreground
    await waitFor('CMD read the line', () => since(mark).includes('read: hello'), 5000);
    mark = out.length;
    type('echo "rc:$?"\n');
    await waitFor('rc', () => /rc:\d+/.test(since(mark)), 5000);
    assert.match(since(mark), /rc:0/);
  } finally {
    p.kill('SIGKILL');
  }
});
