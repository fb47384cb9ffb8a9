// The updater's side of the hold protocol: while an update is applied (or a
// release is staged), the app's supervise/hold is locked (flock LOCK_EX) and
// holds one word, so that PID 1 leaves an exit of an essential app to the
// updater instead of ending the container. The lock dies with the updater, so
// a kill -9 releases it by itself. Which word when is phases.holdFor.
import fs from 'node:fs';
import { native } from '../common/native.js';
import { logger } from '../common/log.js';
import type { HoldWord } from './phases.js';

const log = logger('updater');
const LOCK_TRIES = 20;
const LOCK_RETRY_MS = 5;

export interface Hold {
  set(word: HoldWord | undefined): void;
}

export class AppHold implements Hold {
  private fd: number | undefined;
  private word: HoldWord | undefined;
  private lastError: string | undefined;
  private staleChecked = false;

  constructor(readonly file: string) {}

  /** Hold with `word`, or release the hold (undefined). A failure is logged and retried at the next call. */
  set(word: HoldWord | undefined): void {
    if (word === undefined && !this.staleChecked) this.clearStale();
    this.staleChecked = true;
    if (word === this.word) return;
    if (word === undefined) {
      this.release();
      return;
    }
    try {
      const fd = this.fd ?? this.lock();
      // In place, on the locked inode: a rename would move the lock away from the file PID 1 opens.
      fs.ftruncateSync(fd, 0);
      fs.writeSync(fd, word, 0);
      this.word = word;
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      // Said once per cause: a missing supervise/ would otherwise be reported at every phase.
      if (error !== this.lastError) log.warn('cannot hold the app for the update', { file: this.file, word, error });
      this.lastError = error;
    }
  }

  private lock(): number {
    const fd = fs.openSync(this.file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    // PID 1 takes the lock for an instant when it looks: try again a few times.
    for (let i = 0; i < LOCK_TRIES; i++) {
      if (native().tryLock(fd)) {
        this.fd = fd;
        return fd;
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, LOCK_RETRY_MS);
    }
    fs.closeSync(fd);
    throw new Error('another process holds its lock');
  }

  /**
   * A word left by an updater that died (kill -9) keeps PID 1 lenient for a few exits of an
   * essential app (supervise/hold.ts, STALE_APPLY_EXITS); at a start with nothing under way, empty it.
   */
  private clearStale(): void {
    let fd: number;
    try {
      fd = fs.openSync(this.file, fs.constants.O_RDWR);
    } catch {
      return; // no file: nothing left behind
    }
    try {
      if (native().tryLock(fd)) fs.ftruncateSync(fd, 0);
    } catch {
      // best effort: PID 1's grace is bounded anyway
    } finally {
      fs.closeSync(fd);
    }
  }

  private release(): void {
    this.word = undefined;
    if (this.fd === undefined) return;
    // Closing the fd drops the flock; the word is emptied too, for a reader that does not lock.
    try {
      fs.ftruncateSync(this.fd, 0);
    } finally {
      fs.closeSync(this.fd);
    }
    this.fd = undefined;
  }
}
