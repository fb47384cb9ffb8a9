// CMD's exec shim: the few steps tini takes in its child between fork and exec,
// which libuv's spawn cannot: a process group of its own, the terminal's
// foreground for that group, a parent-death signal, then execvp. molt runs it
// as `molt __init-exec OPTIONS_JSON FILE ARGS...` (its own entry file, so the
// bundled image has it too); the pid stays CMD's, so libuv still reports CMD's
// exit status to molt. Last, it gives CMD back the signals molt's starter had
// ignored and blocked (tini's sigconf test), which Node reset before molt ran.
import os from 'node:os';
import { native } from '../common/native.js';
import type { InheritedSignals } from './config.js';

export interface ExecOptions {
  /** The signal CMD gets if molt dies first (0: none; as PID 1 the kernel kills everything anyway). */
  parentDeathSignal: number;
  /** molt's pid: if it is gone already, the parent-death signal came too late to be set. */
  parent: number;
  /** Signals CMD starts with ignored and blocked (MOLT_INHERITED_SIGNALS); none when absent. */
  ignored?: number[];
  blocked?: number[];
}

// Node ignores these two; an ignored disposition would survive the exec.
const NODE_IGNORED = [13 /* PIPE */, 25 /* XFSZ */];

/**
 * Whether CMD can be spawned straight (setsid through libuv) instead of through the shim:
 * only as PID 1 (no parent-death signal needed) with none of stdin, stdout, stderr a terminal
 * (setsid would take CMD away from a terminal; with none there is nothing to lose), and no
 * inherited signal to give back (libuv resets them all).
 */
export function directCmdSpawn(pid: number, stdioIsTty: boolean[], inherited?: InheritedSignals): boolean {
  const keep = !!inherited && (inherited.ignored.length > 0 || inherited.blocked.length > 0);
  return pid === 1 && !stdioIsTty.some(Boolean) && !keep;
}

/** The exit status and line for an execvp failure, as sh and tini report them. */
export function execFailure(file: string, errno: number): { code: number; line: string } {
  const { ENOENT, EACCES } = os.constants.errno;
  if (errno === ENOENT) return { code: 127, line: `molt init: cannot run ${file}: not found` };
  if (errno === EACCES) return { code: 126, line: `molt init: cannot run ${file}: permission denied (not executable?)` };
  return { code: 1, line: `molt init: cannot run ${file}: errno ${errno}` };
}

export async function main(argv: string[]): Promise<number> {
  const [json, file, ...args] = argv;
  if (json === undefined || file === undefined) return 2;
  const opts = JSON.parse(json) as ExecOptions;
  const nat = native();
  // Only a molt in the terminal's foreground hands it on: one started in the
  // background of an interactive shell must not take the terminal from that shell.
  const tty = nat.isatty(0) && nat.foreground(0) === nat.processGroup();
  nat.ownProcessGroup();
  // tini's child does the same: become the foreground job when stdin is our terminal,
  // so ^C, ^Z and reads reach CMD and not molt. No terminal is fine.
  if (tty) nat.takeForeground(0);
  if (opts.parentDeathSignal) {
    nat.setParentDeathSignal(opts.parentDeathSignal);
    if (process.ppid !== opts.parent) return 128 + opts.parentDeathSignal;
  }
  // After the terminal hand-off: a blocked or ignored TTOU must not change how it went.
  nat.resetSignals(NODE_IGNORED, opts.ignored ?? [], opts.blocked ?? []);
  for (const fd of [0, 1, 2]) nat.setInheritable(fd, true);
  const errno = nat.execvp(file, [file, ...args]);
  const f = execFailure(file, errno);
  process.stderr.write(f.line + '\n');
  return f.code;
}
