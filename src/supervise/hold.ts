// The hold protocol (shared with the updater): while the updater holds an
// flock on <service>/supervise/hold with the word `apply` (an update or a
// rollback is under way) or `staged` (a release waits; exit 42 asks for it),
// an essential service's exit is the updater's to judge, not the end of the
// container. The decision is pure; the one read of the file is at the edge.
import fs from 'node:fs';
import path from 'node:path';
import { native } from '../common/native.js';

/** The exit code with which a service asks to be restarted into the staged release. */
export const RESTART_INTO_STAGED = 42;

/** Does a hold (`word`, undefined when nobody holds the file) keep the container up after this exit? Pure. */
export function holdKeepsUp(word: string | undefined, code: number | null, signal: NodeJS.Signals | null): boolean {
  if (word === 'apply') return true;
  if (word === 'staged') return signal === null && code === RESTART_INTO_STAGED;
  return false;
}

/** The word in `<serviceDir>/supervise/hold` while someone else holds its lock; undefined otherwise. */
export function readHold(serviceDir: string): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(path.join(serviceDir, 'supervise', 'hold'), 'r');
  } catch {
    return undefined;
  }
  try {
    // Our own lock taken means nobody holds it; closing the fd below lets it go at once.
    if (native().tryLock(fd)) return undefined;
    const buf = Buffer.alloc(64);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    return buf.subarray(0, n).toString('utf8').trim();
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}
