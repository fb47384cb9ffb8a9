// Black-box harness: runs the built CLI, in a fresh PID namespace when asked
// (unshare --pid --fork --mount-proc), and waits on observable conditions with
// bounded polling.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const cli = path.join(repoRoot, 'dist/src/cli/main.js');

export function tmpdir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `molt-${label}-`));
}

/** Write an executable script. */
export function script(file: string, body: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, body.startsWith('#!') ? body : `#!/bin/sh\n${body}`, { mode: 0o755 });
  return file;
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5000, everyMs = 25): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Running {
  proc: ChildProcess;
  /** stdout and stderr as they arrive */
  out: () => string;
  err: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Host pid of molt itself (PID 1 inside the namespace). */
  moltPid: () => Promise<number>;
  kill: (sig?: NodeJS.Signals) => Promise<void>;
}

export function startMolt(args: string[], opts: { env?: NodeJS.ProcessEnv; pidns?: boolean; cwd?: string; node?: string[] } = {}): Running {
  const base = [process.execPath, ...(opts.node ?? []), cli, ...args];
  const argv = opts.pidns === false ? base : ['unshare', '--pid', '--fork', '--mount-proc', ...base];
  const proc = spawn(argv[0]!, argv.slice(1), {
    env: { ...process.env, MOLT_LOG_LEVEL: 'debug', ...opts.env },
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const moltPid = async () => {
    if (opts.pidns === false) return proc.pid!;
    return waitFor('molt inside the namespace', () => {
      const kids = childrenOf(proc.pid!);
      return kids[0];
    });
  };
  return {
    proc,
    out: () => out,
    err: () => err,
    exited,
    moltPid,
    async kill(sig: NodeJS.Signals = 'SIGTERM') {
      process.kill(await moltPid(), sig);
    },
  };
}

export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tids: string[] = [];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      for (const p of fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ')) if (Number(p) > 0) out.push(Number(p));
    } catch {
      // thread gone
    }
  }
  return out;
}

export function descendantsOf(pid: number): number[] {
  const seen: number[] = [];
  const queue = childrenOf(pid);
  while (queue.length) {
    const p = queue.shift()!;
    seen.push(p);
    queue.push(...childrenOf(p));
  }
  return seen;
}

export function procState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

export function alive(pid: number): boolean {
  const s = procState(pid);
  return s !== undefined && s !== 'Z';
}

/** Run a command and return stdout, stderr and status. */
export function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

export function molt(args: string[], env?: NodeJS.ProcessEnv) {
  return run(process.execPath, [cli, ...args], env);
}

/** Runit's own `sv`, from Debian's runit package. */
export const runitSv = '/usr/bin/sv';

export function svStatus(dir: string): string {
  return run(runitSv, ['status', dir]).stdout.trim();
}

export async function stopAndWait(m: Running, timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  // Whatever molt leaves behind (it should leave nothing) must not outlive the test.
  const tree = m.proc.exitCode === null ? descendantsOf(m.proc.pid!) : [];
  if (m.proc.exitCode === null && m.proc.signalCode === null) {
    try {
      await m.kill('SIGTERM');
    } catch {
      // already gone
    }
  }
  const t = setTimeout(() => m.proc.kill('SIGKILL'), timeoutMs);
  const r = await m.exited;
  clearTimeout(t);
  for (const pid of tree) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone, as it should be
    }
  }
  return r;
}

/** Run the built CLI with exactly `env`, without blocking this process's event loop (a test may serve the API it talks to). */
export function runCli(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [cli, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`molt ${args.join(' ')} did not finish within ${timeoutMs} ms\n${out}\n${err}`));
    }, timeoutMs);
    p.once('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
}
