// Runs a service's ./check the way runit's sv does: in the service directory,
// argv[0] "./check", stdout closed (a check that writes to stdout sees EBADF,
// as under sv), stdin and stderr inherited. Exit 0 passes; so does death by a
// signal and a check that cannot be executed (sv's child warns and exits 0).
//
// Node cannot start a child with fd 1 closed (libuv opens /dev/null instead),
// so posix_spawn is called through koffi, with a close action for fd 1. When
// koffi cannot load, `sh -c 'exec ./check >&-'` closes it instead, and without
// a shell stdout goes to /dev/null.
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { codeOf, errnoName, errorText } from './errors.js';
import { libcNames } from '../common/native.js';

const require = createRequire(import.meta.url);

interface Spawner {
  /** posix_spawn's result: 0 and the pid, or an errno. */
  spawn(path: string, argv: string[], env: string[]): { err: number; pid: number };
  /** waitpid(pid, &status, 0): pid, or -1 with errno. */
  wait(pid: number): { r: number; status: number; errno: number };
}

let spawner: Spawner | null | undefined;


function loadSpawner(): Spawner | null {
  if (spawner !== undefined) return spawner;
  spawner = null;
  try {
    const koffi = require('koffi') as typeof import('koffi');
    let lib: ReturnType<typeof koffi.load> | undefined;
    for (const name of libcNames()) {
      try {
        lib = koffi.load(name);
        break;
      } catch {
        // try the next libc name
      }
    }
    if (!lib) return null;
    const faInit = lib.func('int posix_spawn_file_actions_init(void *fa)');
    const faDup2 = lib.func('int posix_spawn_file_actions_adddup2(void *fa, int fd, int newfd)');
    const faClose = lib.func('int posix_spawn_file_actions_addclose(void *fa, int fd)');
    const faDestroy = lib.func('int posix_spawn_file_actions_destroy(void *fa)');
    const posixSpawn = lib.func(
      'int posix_spawn(_Out_ int *pid, const char *path, void *fa, void *attr, const char **argv, const char **envp)',
    );
    const waitpid = lib.func('int waitpid(int pid, _Out_ int *status, int options)');
    spawner = {
      spawn(path, argv, env) {
        // Larger than posix_spawn_file_actions_t on glibc and musl (80 bytes).
        const fa = Buffer.alloc(256);
        faInit(fa);
        try {
          // Node marks fds 0-2 close-on-exec; dup2 onto itself clears that.
          faDup2(fa, 0, 0);
          faDup2(fa, 2, 2);
          faClose(fa, 1);
          const pid = [0];
          const err = posixSpawn(pid, path, fa, null, [...argv, null], [...env, null]) as number;
          return { err, pid: pid[0] ?? 0 };
        } finally {
          faDestroy(fa);
        }
      },
      wait(pid) {
        const st = [0];
        const r = waitpid(pid, st, 0) as number;
        return { r, status: st[0] ?? 0, errno: r === -1 ? koffi.errno() : 0 };
      },
    };
  } catch {
    spawner = null;
  }
  return spawner;
}

/** Exec failures, as opposed to failures to create the process at all. */
const forkErrors = new Set(['EAGAIN', 'ENOMEM', 'ENOSYS']);

/**
 * Runs ./check in the current directory. `name` is the service as given on
 * the command line, for warnings; `warn` writes one line to stderr.
 */
/** molt's supervise/health (absent under runsv: then there is nothing to wait for, as with runit). */
function readyByNotification(): boolean {
  try {
    const h = JSON.parse(fs.readFileSync('supervise/health', 'utf8')) as { notificationFd?: number | null; ready?: boolean };
    return h.notificationFd == null || h.ready === true;
  } catch {
    return true;
  }
}

export function checkScriptPasses(name: string, warn: (line: string) => void): boolean {
  try {
    fs.statSync('check');
  } catch (err) {
    // No check script: a service that declares s6 readiness (notification-fd) is available once ready.
    if (codeOf(err) === 'ENOENT') return readyByNotification();
    warn(`warning: unable to stat ${name}/check: ${errorText(codeOf(err) ?? 'EIO')}\n`);
    return false;
  }
  const env = Object.entries(process.env).map(([k, v]) => `${k}=${v ?? ''}`);
  const sp = loadSpawner();
  if (sp) {
    const { err, pid } = sp.spawn('check', ['./check'], env);
    if (err !== 0) {
      const code = errnoName(err) ?? err;
      if (forkErrors.has(String(code))) {
        warn(`warning: unable to fork for ${name}/check: ${errorText(code)}\n`);
        return false;
      }
      warn(`warning: unable to run ${name}/check: ${errorText(code)}\n`);
      return true;
    }
    for (;;) {
      const w = sp.wait(pid);
      if (w.r !== -1) return w.status >> 8 === 0;
      const code = errnoName(w.errno) ?? w.errno;
      if (code === 'EINTR') continue;
      warn(`warning: unable to wait for child ${name}/check: ${errorText(code)}\n`);
      return false;
    }
  }
  return fallbackCheck(name, warn);
}

function fallbackCheck(name: string, warn: (line: string) => void): boolean {
  // The shell would report a check it cannot execute as a failure; sv passes it.
  try {
    if (!fs.statSync('check').isFile()) throw Object.assign(new Error('not a file'), { code: 'EACCES' });
    fs.accessSync('check', fs.constants.X_OK);
  } catch (err) {
    warn(`warning: unable to run ${name}/check: ${errorText(codeOf(err) ?? 'EACCES')}\n`);
    return true;
  }
  let r = spawnSync('/bin/sh', ['-c', 'exec ./check >&-'], { stdio: 'inherit' });
  if (codeOf(r.error) === 'ENOENT') r = spawnSync('./check', [], { stdio: ['inherit', 'ignore', 'inherit'] });
  if (r.error) {
    warn(`warning: unable to run ${name}/check: ${errorText(codeOf(r.error) ?? 'EIO')}\n`);
    return true;
  }
  // Killed by a signal: sv's exit-code macro reads 0 there, so it passes.
  return r.status === null || r.status === 0;
}
