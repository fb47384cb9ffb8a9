// What the peers' suites need, re-expressed for molt: an init given as an argv
// prefix (molt init, or Debian's tini / dumb-init to check the check), a
// print_signals child written in Node, line reading, process states, a pty.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cli, script, tmpdir, waitFor } from '../helpers/molt.js';

/** `molt init [opts] --`, with an empty service directory. */
export function moltInit(opts: string[] = []): string[] {
  return [process.execPath, cli, 'init', ...opts, '--'];
}
export const moltEnv = (): NodeJS.ProcessEnv => ({ MOLT_SERVICES: tmpdir('peers-svc') });

/** As a namespace's PID 1, the way the peers' Docker runs put them. */
export const asPid1 = (init: string[]) => ['unshare', '--pid', '--fork', '--mount-proc', ...init];

export const sig = os.constants.signals;
export const SUSPEND = [sig.SIGTSTP, sig.SIGTTOU, sig.SIGTTIN];

/**
 * dumb-init's testing/print_signals.py in Node: prints "ready (pid: N)", then every
 * signal number it gets, one a line; a second SIGINT in a row exits 0. With
 * `stoppable`, TSTP/TTOU/TTIN keep their default action (the process stops).
 */
export function printSignals(opts: { stoppable?: boolean } = {}): string {
  const skip = ['SIGKILL', 'SIGSTOP', 'SIGCHLD', ...(opts.stoppable ? ['SIGTSTP', 'SIGTTOU', 'SIGTTIN'] : [])];
  return script(
    path.join(tmpdir('print-signals'), 'print-signals.mjs'),
    `#!${process.execPath}
import os from 'node:os';
const skip = new Set(${JSON.stringify(skip)});
let last = 0;
for (const [name, num] of Object.entries(os.constants.signals)) {
  if (num < 1 || num > 31 || skip.has(name) || name === 'SIGIOT' || name === 'SIGPOLL' || name === 'SIGUNUSED') continue;
  process.on(name, () => {
    process.stdout.write(num + '\\n');
    if (num === 2 && last === 2) process.exit(0);
    last = num;
  });
}
process.stdout.write('ready (pid: ' + process.pid + ')\\n');
setInterval(() => {}, 1000);
`,
  );
}

export interface Proc {
  proc: ChildProcess;
  /** The next whole stdout line (without \n), waiting for it. */
  line: (timeoutMs?: number) => Promise<string>;
  err: () => string;
  exited: Promise<number | null>;
}

export function start(argv: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Proc {
  const proc = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + sig[signal] : null))));
  return {
    proc,
    async line(timeoutMs = 5000) {
      const l = await waitFor('a line from the child', () => {
        const i = out.indexOf('\n');
        return i >= 0 ? out.slice(0, i + 1) : undefined;
      }, timeoutMs, 5);
      out = out.slice(l.length);
      return l.slice(0, -1);
    },
    err: () => err,
    exited,
  };
}

/** /proc/PID/status State, in words as dumb-init's process_state() reads it: running, sleeping, stopped... */
export function processState(pid: number): string | undefined {
  try {
    return /^State:\s+[A-Z] \(([a-z ]+)\)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

export function pgidOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  } catch {
    return undefined;
  }
}

/** Kill whatever is left of a test's tree (an init that passed leaves nothing). */
export function killAll(pids: number[]): void {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/**
 * A real pty: util-linux `script` runs `inner` (a shell command line) on it and
 * passes what we write to its input. No setsid beyond the one `script` makes,
 * as with `docker run -it`.
 */
export function onPty(inner: string, env: NodeJS.ProcessEnv = {}) {
  const p = spawn('script', ['-qfec', inner, '/dev/null'], { env: { ...process.env, TERM: 'dumb', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  p.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
  return {
    p,
    out: () => out,
    type: (s: string) => p.stdin.write(s),
    /** The exit status, or null if it did not exit within the time. */
    status: (timeoutMs = 10_000) => Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), timeoutMs))]),
  };
}
