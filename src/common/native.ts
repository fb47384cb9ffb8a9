// The few libc calls Node does not offer: waitpid on one pid (reaping orphans
// without stealing libuv's children), prctl(PR_SET_CHILD_SUBREAPER), pipe2,
// flock, execve (molt chpst), chroot, setsid, SO_PEERCRED, and what CMD's exec shim needs
// (process group, terminal, execvp). Bound through koffi: it ships prebuilt glibc and musl binaries, so the
// image needs no compiler, and costs about 5 MB of RSS.
import { createRequire } from 'node:module';
import { SyscallError } from './errors.js';

const require = createRequire(import.meta.url);

export interface Native {
  /** The pid of some child that has exited, without reaping it (waitid WNOWAIT); 0 when none. */
  peekZombie(): number;
  /** waitpid(pid, WNOHANG): 0 when still running, pid when reaped, -1 on error (errno in .errno()). */
  waitpidNoHang(pid: number): { pid: number; status: number };
  setChildSubreaper(): boolean;
  /** prctl(PR_SET_PDEATHSIG): the kernel sends `signum` when our parent dies. */
  setParentDeathSignal(signum: number): boolean;
  /** A pipe whose both ends are close-on-exec (children get them only through stdio). */
  pipe(): [number, number];
  /** flock(LOCK_EX|LOCK_NB): false when another process holds it. */
  tryLock(fd: number): boolean;
  /** mkfifo(path, mode): 0 or -1. */
  mkfifo(path: string, mode: number): number;
  /** A listening stream socket bound to `addr` (a struct sockaddr), close-on-exec; molt never accepts on it. */
  listenSocket(family: number, addr: Buffer, reuseAddr: boolean): number;
  /**
   * Replace this process with `file` (molt chpst): stdio made inheritable again and
   * the signals Node ignores (PIPE, XFSZ) and blocks reset first, as a fresh process
   * would have them. Returns only on failure, with a SyscallError.
   * `keepSignals` (a re-exec into another molt, which sets its own): dispositions and
   * mask are left alone, so a failed exec leaves molt's handlers as they were.
   */
  execve(file: string, argv: string[], env: string[], keepSignals?: boolean): SyscallError;
  /** Clear (true) or set (false) close-on-exec: the fds a re-exec hands to the new molt. */
  setInheritable(fd: number, yes: boolean): boolean;
  chroot(dir: string): void;
  setsid(): void;
  /** The peer of a connected Unix socket (SO_PEERCRED): who is on the other end. */
  peerCred(fd: number): { pid: number; uid: number; gid: number };
  errno(): number;
  /** getpgrp(): our process group. */
  processGroup(): number;
  /** setpgid(0, 0): a process group of our own. */
  ownProcessGroup(): boolean;
  /** tcsetpgrp(fd, getpgrp()): 0 or errno. */
  takeForeground(fd: number): number;
  /** tcsetpgrp(fd, pgid), with SIGTTOU held off meanwhile: 0 or errno. */
  setForeground(fd: number, pgid: number): number;
  /** tcgetpgrp(fd): the terminal's foreground group, or -1. */
  foreground(fd: number): number;
  isatty(fd: number): boolean;
  /**
   * Signal dispositions back to SIG_DFL (the ignored ones survive exec otherwise), then
   * `ignore` to SIG_IGN and the mask to `block` (none: empty). Best effort per signal:
   * libc refuses the few it reserves (32, 33).
   */
  resetSignals(signums: number[], ignore?: number[], block?: number[]): void;
  /** execvp(file, argv); returns only on failure, with the errno. */
  execvp(file: string, argv: string[]): number;
}

let cached: Native | undefined;

/** Where libc is, on glibc and on musl (Alpine). */
export function libcNames(): string[] {
  const arch = process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : process.arch;
  return ['libc.so.6', `/lib/ld-musl-${arch}.so.1`, `libc.musl-${arch}.so.1`];
}

export function native(): Native {
  if (cached) return cached;
  // koffi is CommonJS; require keeps it off the import graph of other commands.
  const koffi = require('koffi') as typeof import('koffi');
  let lib: ReturnType<typeof koffi.load> | undefined;
  let lastErr: unknown;
  for (const name of libcNames()) {
    try {
      lib = koffi.load(name);
      break;
    } catch (err) {
      lastErr = err;
    }
  }
  if (!lib) throw new Error(`cannot load libc: ${String(lastErr)}`);
  const waitpid = lib.func('int waitpid(int pid, _Out_ int *status, int options)');
  const waitid = lib.func('int waitid(int idtype, int id, void *infop, int options)');
  const siginfo = Buffer.alloc(128);
  const prctl = lib.func('int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)');
  const pipe2 = lib.func('int pipe2(_Out_ int *fds, int flags)');
  const flock = lib.func('int flock(int fd, int operation)');
  const mkfifo = lib.func('int mkfifo(const char *path, uint32_t mode)');
  const socket = lib.func('int socket(int domain, int type, int protocol)');
  const setsockopt = lib.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)');
  const bind = lib.func('int bind(int fd, const void *addr, uint32_t len)');
  const listen = lib.func('int listen(int fd, int backlog)');
  const close = lib.func('int close(int fd)');
  const strerror = lib.func('const char *strerror(int errnum)');
  const execve = lib.func('int execve(const char *path, const char **argv, const char **envp)');
  const chroot = lib.func('int chroot(const char *path)');
  const setsid = lib.func('int setsid(void)');
  const getsockopt = lib.func('int getsockopt(int fd, int level, int name, void *value, _Inout_ uint32_t *len)');
  const setpgid = lib.func('int setpgid(int pid, int pgid)');
  const getpgrp = lib.func('int getpgrp()');
  const tcsetpgrp = lib.func('int tcsetpgrp(int fd, int pgrp)');
  const tcgetpgrp = lib.func('int tcgetpgrp(int fd)');
  const isatty = lib.func('int isatty(int fd)');
  const signal = lib.func('intptr_t signal(int signum, intptr_t handler)');
  const sigprocmask = lib.func('int sigprocmask(int how, const void *set, void *old)');
  const execvp = lib.func('int execvp(const char *file, const char **argv)');
  const fcntl = lib.func('int fcntl(int fd, int cmd, ...)');
  const SIG_DFL = 0;
  const SIGTTOU = 22;
  const SIG_BLOCK = 0;
  const SIG_SETMASK = 2;
  const failed = (call: string, errno = koffi.errno()) => new SyscallError(call, errno, { text: strerror(errno) as string });
  const WNOHANG = 1;
  const PR_SET_CHILD_SUBREAPER = 36;
  const O_CLOEXEC = 0o2000000;
  const LOCK_EX = 2;
  const LOCK_NB = 4;
  cached = {
    waitpidNoHang(pid) {
      const st = [0];
      const r = waitpid(pid, st, WNOHANG) as number;
      return { pid: r, status: st[0] ?? 0 };
    },
    peekZombie() {
      const P_ALL = 0;
      const WEXITED = 4;
      const WNOWAIT = 0x01000000;
      siginfo.fill(0);
      if ((waitid(P_ALL, 0, siginfo, WEXITED | WNOHANG | WNOWAIT) as number) !== 0) return 0;
      return siginfo.readInt32LE(16); // si_pid (Linux siginfo_t, SIGCHLD layout)
    },
    setChildSubreaper() {
      return (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) as number) === 0;
    },
    setParentDeathSignal(signum: number) {
      const PR_SET_PDEATHSIG = 1;
      return (prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) as number) === 0;
    },
    pipe() {
      const fds = new Int32Array(2);
      if ((pipe2(fds, O_CLOEXEC) as number) !== 0) throw failed('pipe2');
      return [fds[0]!, fds[1]!];
    },
    tryLock(fd) {
      return (flock(fd, LOCK_EX | LOCK_NB) as number) === 0;
    },
    mkfifo(path, mode) {
      return mkfifo(path, mode) as number;
    },
    listenSocket(family, addr, reuseAddr) {
      const SOCK_STREAM = 1;
      const SOCK_CLOEXEC = 0o2000000;
      const SOL_SOCKET = 1;
      const SO_REUSEADDR = 2;
      const fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0) as number;
      if (fd < 0) throw failed('socket');
      const fail = (call: string): never => {
        const err = failed(call);
        close(fd);
        throw err;
      };
      if (reuseAddr) {
        const one = Buffer.alloc(4);
        one.writeInt32LE(1);
        if ((setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) as number) !== 0) fail('setsockopt');
      }
      if ((bind(fd, addr, addr.length) as number) !== 0) fail('bind');
      if ((listen(fd, 4096) as number) !== 0) fail('listen');
      return fd;
    },
    execve(file, argv, env, keepSignals = false) {
      const F_SETFD = 2;
      // Node marks fds 0-2 close-on-exec and ignores SIGPIPE/SIGXFSZ; neither must reach the program.
      for (const fd of [0, 1, 2]) fcntl(fd, F_SETFD, 'int', 0);
      if (!keepSignals) {
        for (const sig of [13, 25]) signal(sig, SIG_DFL);
        sigprocmask(SIG_SETMASK, Buffer.alloc(128), null);
      }
      execve(file, [...argv, null], [...env, null]);
      return failed('execve');
    },
    setInheritable(fd, yes) {
      const F_SETFD = 2;
      const FD_CLOEXEC = 1;
      return (fcntl(fd, F_SETFD, 'int', yes ? 0 : FD_CLOEXEC) as number) === 0;
    },
    chroot(dir) {
      if ((chroot(dir) as number) !== 0) throw failed('chroot');
    },
    setsid() {
      if ((setsid() as number) < 0) throw failed('setsid');
    },
    peerCred(fd) {
      const SOL_SOCKET = 1;
      const SO_PEERCRED = 17;
      const buf = Buffer.alloc(12);
      const len = [12];
      if ((getsockopt(fd, SOL_SOCKET, SO_PEERCRED, buf, len) as number) !== 0) throw failed('getsockopt');
      return { pid: buf.readInt32LE(0), uid: buf.readUInt32LE(4), gid: buf.readUInt32LE(8) };
    },
    errno() {
      return koffi.errno();
    },
    processGroup() {
      return getpgrp() as number;
    },
    ownProcessGroup() {
      return (setpgid(0, 0) as number) === 0;
    },
    takeForeground(fd) {
      return this.setForeground(fd, getpgrp() as number);
    },
    setForeground(fd, pgid) {
      // A background group's tcsetpgrp gets SIGTTOU unless it is blocked or ignored:
      // block it on this thread for the call (handlers stay as they are).
      const ttou = sigset([SIGTTOU]);
      const old = Buffer.alloc(128);
      sigprocmask(SIG_BLOCK, ttou, old);
      const r = tcsetpgrp(fd, pgid) as number;
      const errno = r === 0 ? 0 : koffi.errno();
      sigprocmask(SIG_SETMASK, old, null);
      return errno;
    },
    foreground(fd) {
      return tcgetpgrp(fd) as number;
    },
    isatty(fd) {
      return (isatty(fd) as number) === 1;
    },
    resetSignals(signums, ignore = [], block = []) {
      const SIG_IGN = 1;
      for (const n of signums) signal(n, SIG_DFL);
      for (const n of ignore) signal(n, SIG_IGN);
      sigprocmask(SIG_SETMASK, sigset(block), null);
    },
    execvp(file, argv) {
      execvp(file, [...argv, null]);
      return koffi.errno();
    },
  };
  return cached;
}

/** A sigset_t (Linux: 128 bytes, bit N-1 for signal N, in order of bytes) holding `signums`. Pure. */
export function sigset(signums: number[]): Buffer {
  const set = Buffer.alloc(128);
  for (const n of signums) if (n >= 1 && n <= 1024) set.writeUInt8(set.readUInt8((n - 1) >> 3) | (1 << ((n - 1) & 7)), (n - 1) >> 3);
  return set;
}

/** Decode a wait status: exit code, or the terminating signal number. */
export function decodeWaitStatus(status: number): { code: number | null; signal: number | null } {
  const sig = status & 0x7f;
  if (sig === 0) return { code: (status >> 8) & 0xff, signal: null };
  return { code: null, signal: sig };
}

/** After a CONT: when molt's group holds the terminal again, hand it to CMD's group (`pgid`). */
export function terminalTo(pgid: number): void {
  try {
    const nat = native();
    if (!nat.isatty(0) || nat.foreground(0) !== nat.processGroup()) return;
    nat.setForeground(0, pgid);
  } catch {
    // no terminal
  }
}

/** CMD (`pgid`) is gone: its group no longer holds the terminal, molt's does again (tini's child leaves it). */
export function terminalBackFrom(pgid: number | undefined): void {
  try {
    const nat = native();
    if (!nat.isatty(0) || nat.foreground(0) !== pgid) return;
    nat.takeForeground(0);
  } catch {
    // no terminal
  }
}
