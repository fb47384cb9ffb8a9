// runit's liveness probe, shared by every reader of supervise/: a supervisor
// holds supervise/ok open for reading, so opening it for writing succeeds;
// ENXIO means nothing supervises the directory.
import fs from 'node:fs';
import path from 'node:path';

export function isSupervised(serviceDir: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(path.join(serviceDir, 'supervise', 'ok'), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
