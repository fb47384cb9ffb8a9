// Reap orphans without stealing the exit status of children that Node spawned.
// libuv waits only for its own pids; a waitpid(-1) here would make their `exit`
// event vanish. So: on SIGCHLD (coalesced to one scan per tick) list our
// children and waitpid(pid, WNOHANG) only those we did not spawn.
import { childrenOfSelf } from '../common/proc.js';
import { decodeWaitStatus, native } from '../common/native.js';

export class Reaper {
  private readonly spawned = new Set<number>();
  /** Children a previous molt spawned (re-exec): reaped here, their exit reported to the supervisor. */
  private readonly adopted = new Map<number, (code: number | null, signal: number | null) => void>();
  private scheduled = false;
  reapedCount = 0;
  /** Called after each scan that reaped something (the shutdown waits on it). */
  onReap: (() => void) | undefined;

  constructor(private readonly onOrphanExit?: (pid: number, code: number | null, signal: number | null) => void) {}

  /** Must be called synchronously right after spawn() returns, before any await. */
  track(pid: number): void {
    this.spawned.add(pid);
  }
  untrack(pid: number): void {
    this.spawned.delete(pid);
  }
  adopt(pid: number, onExit: (code: number | null, signal: number | null) => void): void {
    this.adopted.set(pid, onExit);
  }
  isTracked(pid: number): boolean {
    return this.spawned.has(pid) || this.adopted.has(pid);
  }
  trackedCount(): number {
    return this.spawned.size + this.adopted.size;
  }

  /** Coalesce a burst of SIGCHLDs into one scan. */
  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.scan();
    });
  }

  scan(): number {
    const nat = native();
    // Fast path: ask the kernel which child is a zombie (without reaping it) and reap it
    // when it is ours to reap; the cost is per zombie, not per living child.
    let reaped = 0;
    let tracked = false;
    for (let guard = 0; guard < 100_000; guard++) {
      const pid = nat.peekZombie();
      if (pid <= 0) break;
      if (this.spawned.has(pid)) {
        tracked = true; // libuv's own: leave it; look past it with a full scan
        break;
      }
      const r = nat.waitpidNoHang(pid);
      if (r.pid !== pid) break;
      reaped++;
      this.report(pid, r.status);
    }
    if (tracked) reaped += this.fullScan();
    this.reapedCount += reaped;
    if (reaped) this.onReap?.();
    return reaped;
  }

  /** Every child, one by one: needed when a libuv child is the zombie the kernel shows first. */
  private fullScan(): number {
    let reaped = 0;
    let pids: number[];
    try {
      pids = childrenOfSelf();
    } catch {
      return 0;
    }
    const nat = native();
    for (const pid of pids) {
      if (this.spawned.has(pid)) continue;
      const r = nat.waitpidNoHang(pid);
      if (r.pid === pid) {
        reaped++;
        this.report(pid, r.status);
      }
    }
    return reaped;
  }

  private report(pid: number, status: number): void {
    const { code, signal } = decodeWaitStatus(status);
    const adopted = this.adopted.get(pid);
    this.adopted.delete(pid);
    if (adopted) adopted(code, signal);
    else this.onOrphanExit?.(pid, code, signal);
  }
}
