// Service output through molt: each line gets the `[name] ` prefix and goes to
// molt's stdout. Backpressure end to end: when molt's stdout is full (a pipe
// nobody drains), reading from the service pauses until it drains, so the
// service blocks on its own write and PID 1's memory stays bounded.
import type { Readable, Writable } from 'node:stream';
import { LineSplitter, prefixed } from './lines.js';

/** Where prefixed lines go: write() false means "full, wait for whenDrained()". */
export interface Outlet {
  write(buf: Buffer): boolean;
  /** Call `resume` once the outlet takes writes again (at once when it already does). */
  whenDrained(resume: () => void): void;
  /** Full now: a write would only grow molt's buffer. */
  full(): boolean;
}

/** An Outlet over a Writable (molt's stdout: a pipe, a file or a tty). */
export class WritableOutlet implements Outlet {
  private waiting: (() => void)[] = [];

  constructor(private readonly stream: Writable) {
    const release = () => this.release();
    stream.on('drain', release);
    // A closed or broken stdout never drains: let the readers go; their lines are dropped.
    stream.on('close', release);
    stream.on('error', release);
  }

  write(buf: Buffer): boolean {
    if (this.gone()) return true;
    try {
      return this.stream.write(buf);
    } catch {
      return true; // stdout closed: drop the line, never the process
    }
  }

  whenDrained(resume: () => void): void {
    if (this.gone() || !this.stream.writableNeedDrain) {
      setImmediate(resume);
      return;
    }
    this.waiting.push(resume);
  }

  full(): boolean {
    return !this.gone() && this.stream.writableNeedDrain;
  }

  private gone(): boolean {
    return this.stream.destroyed || this.stream.writableEnded;
  }

  private release(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resume of waiting) resume();
  }
}

/** Copy a child's stream to `out` line by line with `prefix`, pausing the stream while `out` is full. */
export function pipeLines(stream: Readable, prefix: Buffer, out: Outlet, maxLine?: number): void {
  let full = false;
  const splitter = new LineSplitter((line) => {
    if (!out.write(prefixed(prefix, line))) full = true;
  }, maxLine);
  stream.on('data', (chunk: Buffer) => {
    splitter.push(chunk);
    if (!full) return;
    full = false;
    stream.pause();
    out.whenDrained(() => stream.resume());
  });
  stream.on('end', () => splitter.end());
  stream.on('error', () => splitter.end());
}

/**
 * A check's output, bounded: a check that floods is cut off at `budget` bytes, not buffered.
 * Never paused (a paused check would time out): while molt's stdout is full its lines are dropped.
 */
export function pipeCheckLines(stream: Readable, prefix: Buffer, out: Outlet, shared: { budget: number }): void {
  const splitter = new LineSplitter((line) => {
    if (!out.full()) out.write(prefixed(prefix, line));
  }, 4096);
  stream.on('data', (chunk: Buffer) => {
    if (shared.budget <= 0) return;
    shared.budget -= chunk.length;
    splitter.push(shared.budget >= 0 ? chunk : chunk.subarray(0, chunk.length + shared.budget));
    if (shared.budget <= 0 && !out.full()) out.write(prefixed(prefix, Buffer.from('(check output cut at 16 KiB)')));
  });
  stream.on('end', () => splitter.end());
  stream.on('error', () => splitter.end());
}
