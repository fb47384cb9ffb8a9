// A registry's Retry-After window (429, or a 5xx that says when to come back): while it is open
// no request goes out, whoever asks; the call that waited it out closes it. Monotonic clock.
import { UpdateError } from '../types.js';

export type Sleeper = (ms: number, signal?: AbortSignal) => Promise<void>;

export class RetryAfterWindow {
  /** No request before this (performance.now() ms). */
  private notBeforeMs: number | undefined;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** The registry said Retry-After: open (or extend) the window. */
  holdOff(afterMs: number | undefined): void {
    if (afterMs === undefined || afterMs <= 0) return;
    this.notBeforeMs = Math.max(this.notBeforeMs ?? 0, this.now() + afterMs);
  }

  /** Sleep out a retry delay; a window this call waited out is over for every call. */
  async waitOut(sleeper: Sleeper, delayMs: number, signal?: AbortSignal): Promise<void> {
    const until = this.notBeforeMs;
    await sleeper(delayMs, signal);
    if (this.notBeforeMs === until) this.notBeforeMs = undefined;
  }

  /** Refuses, without a request, while the window is open: 'rate-limited' with the time left. */
  gate(where: string): void {
    const wait = this.notBeforeMs === undefined ? 0 : Math.ceil(this.notBeforeMs - this.now());
    if (wait > 0) throw new UpdateError(`${where}: the registry asked for no request for ${Math.ceil(wait / 1000)}s more (Retry-After)`, 'rate-limited', wait);
    this.notBeforeMs = undefined;
  }
}
