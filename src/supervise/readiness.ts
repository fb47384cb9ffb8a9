// s6 readiness: `notification-fd` names the fd on which the service writes a
// newline once ready. molt holds the read end of a pipe; the child gets the
// write end at that fd.
import fs from 'node:fs';
import net from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { native } from '../common/native.js';

export interface NotificationPipe {
  fd: number;
  writeFd: number;
  sock: net.Socket;
}

/** A pipe for the child's fd `fd`; `onReady` once a newline arrives. Close `writeFd` once the child holds it. */
export function openNotificationPipe(fd: number, onReady: () => void): NotificationPipe {
  const [r, w] = native().pipe();
  const sock = new net.Socket({ fd: r, readable: true, writable: false });
  sock.on('data', (chunk: Buffer) => {
    if (!chunk.includes(0x0a)) return;
    sock.destroy();
    onReady();
  });
  sock.on('error', () => sock.destroy());
  return { fd, writeFd: w, sock };
}

/** The child holds the write end now: EOF when it closes it. */
export function handedToChild(pipe: NotificationPipe | undefined): void {
  if (pipe) fs.closeSync(pipe.writeFd);
}

/** `timeout-up`: `expire()` when `child` is still `waiting()` `ms` after its start (0: never). */
export function armTimeoutUp(child: ChildProcess, ms: number | undefined, waiting: () => boolean, expire: () => void): void {
  if (!ms) return;
  const timer = setTimeout(() => waiting() && expire(), ms);
  child.once('exit', () => clearTimeout(timer));
}
