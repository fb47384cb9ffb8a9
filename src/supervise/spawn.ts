// Starting a service's programs (run, finish, check, control scripts, the next
// instance) and stopping a process: "signal, CONT, then KILL after the grace
// time" is written here once.
import type { ChildProcess, SpawnOptions, StdioOptions } from 'node:child_process';
import type { Account } from '../common/accounts.js';
import { logger } from '../common/log.js';
import { launchAs, moltCommand } from './account.js';
import { listenEnv, type BoundSocket } from './listen.js';
import type { ServiceFiles } from './serviceFiles.js';

const log = logger('supervise');

export function signalQuietly(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone: its exit event is on the way
  }
}

/**
 * The stop signal, CONT (so a stopped process can act on it), and `onDue` after
 * `graceMs` (undefined: no deadline, as runit's sv down). Returns the cancel of the deadline.
 */
export function stopWithGrace(pid: number, sig: NodeJS.Signals, graceMs: number | undefined, onDue: () => void): () => void {
  signalQuietly(pid, sig);
  if (sig !== 'SIGCONT') signalQuietly(pid, 'SIGCONT');
  return deadline(graceMs, onDue);
}

/** `onDue` after `ms` (never when undefined); returns its cancel. */
export function deadline(ms: number | undefined, onDue: () => void): () => void {
  if (ms === undefined) return () => {};
  const timer = setTimeout(onDue, ms);
  return () => clearTimeout(timer);
}

/** Stop a process that is no longer the service's run: its stop signal, then KILL after the grace time. */
export function retire(child: ChildProcess, sig: NodeJS.Signals, graceMs: number, onLate: () => void): void {
  const pid = child.pid;
  if (!pid) return;
  const cancel = stopWithGrace(pid, sig, graceMs, () => {
    onLate();
    signalQuietly(pid, 'SIGKILL');
  });
  child.once('exit', cancel);
}

export interface SpawnContext {
  /** child_process.spawn that registers the pid with the reaper. */
  spawn(cmd: string, args: string[], opts: SpawnOptions): ChildProcess;
  files: ServiceFiles;
  service: string;
  label: string;
  stdio: () => StdioOptions;
  attachOutput(child: ChildProcess): void;
  /** The `user` file's account: the program runs as it. */
  account?: Account;
  /** The command that runs molt (for `molt chpst`); default this node and entry script. */
  molt?: string[];
}

/** Start `file` in the service directory, in its own session; undefined (said) when it cannot start. */
export function spawnIn(ctx: SpawnContext, file: string, args: string[], extraFd?: { fd: number; writeFd: number }, sockets: BoundSocket[] = []): ChildProcess | undefined {
  const stdio = [...(ctx.stdio() as unknown[])];
  // Socket activation: the sockets are fds 3.. (systemd's layout).
  sockets.forEach((b, i) => (stdio[3 + i] = b.fd));
  if (extraFd) {
    while (stdio.length < extraFd.fd) stdio.push('ignore');
    stdio[extraFd.fd] = extraFd.writeFd;
  }
  let cmd = file;
  let argv = args;
  let env: NodeJS.ProcessEnv = { ...process.env, MOLT_SERVICE: ctx.service };
  if (sockets.length) {
    env = { ...env, ...listenEnv(sockets) };
    // LISTEN_PID must be the pid that execs the app: the shell's $$ survives its exec.
    cmd = '/bin/sh';
    argv = ['-c', 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"', file, ...args];
  }
  // Its own session, as s6 does: a terminal's ^C reaches molt, which stops services in order.
  let launch = { cmd, args: argv, opts: { cwd: ctx.files.dir, stdio: stdio as StdioOptions, detached: true, env } as SpawnOptions };
  if (ctx.account) launch = launchAs(launch, ctx.account, ctx.molt ?? moltCommand());
  let child: ChildProcess;
  try {
    child = ctx.spawn(launch.cmd, launch.args, launch.opts);
  } catch (err) {
    log.error('cannot start', { service: ctx.label, file, error: err });
    return undefined;
  }
  child.on('error', (err) => {
    if (child.pid === undefined) return; // reported below
    log.warn('child error', { service: ctx.label, error: err });
  });
  if (child.pid === undefined) {
    log.error('cannot start', { service: ctx.label, file, error: ctx.files.describeSpawnFailure(file) });
    return undefined;
  }
  ctx.attachOutput(child);
  return child;
}
