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

/**
 * How many exits a stale `apply` (the word left in the file, nobody holding the lock: the
 * updater died mid-update, by kill -9 or with the whole container) keeps the container up.
 * The updater, restarted by the supervisor, takes the hold again within a second or two and
 * resumes the trial; without this grace an app that crashes faster than the updater starts
 * ends every container start, and the release on trial is never judged (issue 11 item 2).
 * Bounded so that an updater that never comes back cannot disarm `essential` for good:
 * at least 1 s apart each (the restart throttle), about 30 s with the default backoff.
 */
export const STALE_APPLY_EXITS = 5;

/** Does a stale hold (`word` left behind, nobody holding the lock) keep the container up after `staleExitsBefore` such exits? Pure. */
export function staleHoldKeepsUp(word: string | undefined, staleExitsBefore: number): boolean {
  return word === 'apply' && staleExitsBefore < STALE_APPLY_EXITS;
}

/** The word in `<serviceDir>/supervise/hold`, and whether someone else holds its lock; undefined without the file. */
export function readHoldState(serviceDir: string): { word: string; held: boolean } | undefined {
  let fd: number;
  try {
    fd = fs.openSync(path.join(serviceDir, 'supervise', 'hold'), 'r');
  } catch {
    return undefined;
  }
  try {
    // Our own lock taken means nobody holds it; closing the fd below lets it go at once.
    const held = !native().tryLock(fd);
    const buf = Buffer.alloc(64);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    return { word: buf.subarray(0, n).toString('utf8').trim(), held };
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** The word in `<serviceDir>/supervise/hold` while someone else holds its lock; undefined otherwise. */
export function readHold(serviceDir: string): string | undefined {
  const h = readHoldState(serviceDir);
  return h?.held ? h.word : undefined;
}
