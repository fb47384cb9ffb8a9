// Binding the API's Unix socket safely: the directory is created when missing,
// refused when anyone could swap files in it, a stale socket left by a crash is
// replaced only after nothing answers on it, and the socket is 0600 from birth;
// with MOLT_SOCKET_GROUP it is then given to that group, 0660 (never world-writable).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Server } from 'node:http';
import { socketDirForGroup } from './peer.js';

/** Why a socket must not be made in `dir`, or undefined. Pure, over lstat-like facts. */
export function socketDirProblem(dir: string, st: { mode: number; uid: number }, euid: number): string | undefined {
  if ((st.mode & 0o002) !== 0 && (st.mode & 0o1000) === 0) {
    return `${dir} is world-writable without the sticky bit; refusing to put the API socket there`;
  }
  if (st.uid !== euid && st.uid !== 0) {
    return `${dir} belongs to uid ${st.uid}, not to this user or root; refusing to put the API socket there`;
  }
  return undefined;
}

/** Does something accept connections on `file`? ECONNREFUSED (or a vanished file) means a stale socket. */
function probe(file: string, timeoutMs = 1000): Promise<'live' | 'stale'> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(file);
    const timer = setTimeout(() => {
      sock.destroy();
      // Accepting nothing within a second still means a process holds it: do not steal it.
      resolve('live');
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.end(); // a polite hang-up: the live server sees EOF, not a reset
      sock.on('error', () => {});
      sock.setTimeout(1000, () => sock.destroy());
      resolve('live');
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') resolve('stale');
      else reject(new Error(`cannot probe ${file}: ${err.code ?? err.message}`));
    });
  });
}

function euid(): number {
  return typeof process.geteuid === 'function' ? process.geteuid() : 0;
}

/** Listen on `file` (for `group` too: a gid); resolves with the socket's inode so that close removes only our own file. */
export async function listenUnix(server: Server, file: string, group?: number): Promise<{ ino: number }> {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const st = fs.statSync(dir);
  const problem = socketDirProblem(dir, st, euid());
  if (problem) throw new Error(problem);
  if (group !== undefined) {
    const fix = socketDirForGroup(dir, st, group, euid());
    if ('problem' in fix) throw new Error(fix.problem);
    if (fix.chgrp) fs.chownSync(dir, -1, group);
    if (fix.mode !== undefined) fs.chmodSync(dir, fix.mode);
  }

  let existing: fs.Stats | undefined;
  try {
    existing = fs.lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (existing) {
    if (!existing.isSocket()) throw new Error(`${file} exists and is not a socket; refusing to replace it`);
    if (existing.uid !== euid() && existing.uid !== 0) throw new Error(`${file} belongs to uid ${existing.uid}; refusing to replace it`);
    if ((await probe(file)) === 'live') throw new Error(`already running: something answers on ${file}`);
    fs.rmSync(file, { force: true });
  }

  // The umask makes the socket 0600 at bind(2) itself (node binds synchronously inside listen()),
  // so there is no moment in which another user could connect; chmod below only confirms it.
  let onError: (err: Error) => void = () => {};
  const listening = new Promise<void>((resolve, reject) => {
    onError = (err: Error) => reject(new Error(`cannot listen on ${file}: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    server.once('error', onError);
    server.once('listening', () => resolve());
  });
  const old = process.umask(0o177);
  try {
    server.listen(file);
  } finally {
    // Restored at once: the umask is process-wide and other code runs after the next await.
    process.umask(old);
  }
  await listening;
  server.off('error', onError);
  if (group !== undefined) {
    // Group first, then the mode: until both, the socket stays 0600.
    fs.chownSync(file, -1, group);
    fs.chmodSync(file, 0o660);
  } else {
    fs.chmodSync(file, 0o600);
  }
  return { ino: fs.statSync(file).ino };
}

/** Remove the socket file when it is still the one we bound (a successor may have replaced it). */
export function unlinkIfOurs(file: string, ino: number): void {
  try {
    if (fs.lstatSync(file).ino === ino) fs.rmSync(file, { force: true });
  } catch {
    // Already gone.
  }
}
