// The rate-limit gate of one GitHub source: what the last responses said (x-ratelimit-*, a
// Retry-After, a secondary limit), and the refusal, without a request, while a window is shut.
// Monotonic clock.
import { performance } from 'node:perf_hooks';
import { UpdateError } from '../types.js';
import { gateWait, readRateLimit, type Headers, type RateLimitState } from './ratelimit.js';

export function nowMs(): number {
  return performance.now();
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function headersOf(h: globalThis.Headers): Record<string, string> {
  const out: Record<string, string> = {};
  h.forEach((v, k) => (out[k] = v));
  return out;
}

export function messageOf(data: unknown): string {
  if (typeof data === 'object' && data !== null && 'message' in data) return String((data as { message: unknown }).message);
  return typeof data === 'string' ? data.slice(0, 200) : '';
}

export class RateGate {
  private rate: RateLimitState = {};
  private notBefore?: number;

  constructor(private readonly repo: string) {}

  /** Rate-limit state from the last API response. */
  state(): Readonly<RateLimitState> {
    return { ...this.rate };
  }

  /** GitHub asked for no request for waitMs. */
  shut(waitMs: number): void {
    this.notBefore = nowMs() + waitMs;
  }

gate(): void {
  const wait = gateWait(this.rate, this.notBefore, nowMs());
  if (wait > 0) {
    throw new UpdateError(`GitHub rate limit for ${this.repo}: no request for ${Math.ceil(wait / 1000)}s (until the limit resets)`, 'rate-limited', Math.ceil(wait));
  }
}

/**
 * Sleep out a retry delay. When GitHub said Retry-After, the wait is a window for every
 * request of this source (gate() refuses them), which this call ends when it has waited it out.
 */
async waitOut(h: Headers, delayMs: number, signal?: AbortSignal): Promise<void> {
  const said = h['retry-after'] ?? h['Retry-After'];
  if (said === undefined) return sleep(delayMs, signal);
  const until = Math.max(this.notBefore ?? 0, nowMs() + delayMs);
  this.notBefore = until;
  await sleep(delayMs, signal);
  if (this.notBefore === until) this.notBefore = undefined;
}

note(h: Headers | undefined): void {
  if (!h) return;
  const rl = readRateLimit(h, nowMs(), Date.now());
  if (rl.remaining !== undefined) this.rate = rl;
}
}

/** What Octokit's request hook passes and gets back (the source's hook reads these fields). */
export interface OctoOptions {
  headers: Record<string, string>;
  request?: Record<string, unknown>;
  [k: string]: unknown;
}
export interface OctoResponse {
  status: number;
  url: string;
  headers: Record<string, string | number | undefined>;
  data: unknown;
}
