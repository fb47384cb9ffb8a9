// Rate-limit and retry decisions from GitHub's response headers, as pure
// functions of (status, headers, attempt, clock): the source only acts on them.
// GitHub: remaining=0 -> wait for x-ratelimit-reset; Retry-After -> wait that
// long; a secondary limit without Retry-After -> at least 60 s; 5xx -> back off.

export type Headers = Record<string, string | number | undefined>;

function header(h: Headers, name: string): string | undefined {
  const v = h[name] ?? h[name.toLowerCase()];
  return v === undefined ? undefined : String(v);
}

export interface RateLimitState {
  limit?: number;
  remaining?: number;
  used?: number;
  /** When the window resets, in this machine's wall-clock ms. */
  resetAtMs?: number;
  resource?: string;
}

function int(s: string | undefined): number | undefined {
  if (s === undefined || !/^\d+$/.test(s.trim())) return undefined;
  return Number(s.trim());
}

/**
 * Read x-ratelimit-* headers into the caller's clock (`nowMs`, e.g. monotonic; `wallNowMs`
 * is this machine's wall clock, used only when there is no Date header). The reset time is an epoch in the server's clock; it is
 * converted through the response's Date header when present, so a skewed local clock
 * neither waits too long nor calls too early.
 */
export function readRateLimit(h: Headers, nowMs: number, wallNowMs: number = nowMs): RateLimitState {
  const reset = int(header(h, 'x-ratelimit-reset'));
  let resetAtMs: number | undefined;
  if (reset !== undefined) {
    const date = header(h, 'date');
    const parsed = date ? Date.parse(date) : NaN;
    const serverNow = Number.isFinite(parsed) ? parsed : wallNowMs;
    // Date has one-second granularity: add a second so we never call just before the reset.
    resetAtMs = nowMs + (reset * 1000 - serverNow) + 1000;
  }
  return {
    limit: int(header(h, 'x-ratelimit-limit')),
    remaining: int(header(h, 'x-ratelimit-remaining')),
    used: int(header(h, 'x-ratelimit-used')),
    resetAtMs,
    resource: header(h, 'x-ratelimit-resource'),
  };
}

/** Retry-After as ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(v: string | undefined, nowMs: number): number | undefined {
  if (v === undefined) return undefined;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  return Number.isFinite(t) ? Math.max(0, t - nowMs) : undefined;
}

/** Full-jitter exponential backoff: uniform in [0, min(cap, base * 2^attempt)], at least base/4. */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, rand: number): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** attempt);
  return Math.max(Math.floor(baseMs / 4), Math.floor(ceiling * rand));
}

export interface RetryPolicy {
  /** Attempts in all, first included. */
  attempts: number;
  baseMs: number;
  capMs: number;
  /** The longest Retry-After wait taken inside one call; a longer one becomes a rate-limited error. */
  maxInlineWaitMs: number;
}

export type Decision =
  | { action: 'retry'; delayMs: number }
  | { action: 'rate-limited'; waitMs: number; why: string }
  | { action: 'fail' };

/**
 * What to do after a failed response (status 0 = no response: network error or time-out).
 * `body` is the error message GitHub sent, used to tell a secondary limit from a plain 403.
 */
export function decide(status: number, h: Headers, body: string, attempt: number, policy: RetryPolicy, nowMs: number, rand: number): Decision {
  const last = attempt + 1 >= policy.attempts;
  const retryAfter = parseRetryAfter(header(h, 'retry-after'), nowMs);
  if (status === 403 || status === 429) {
    const rl = readRateLimit(h, nowMs);
    if (retryAfter !== undefined) {
      if (!last && retryAfter <= policy.maxInlineWaitMs) return { action: 'retry', delayMs: retryAfter + Math.floor(rand * 250) };
      return { action: 'rate-limited', waitMs: retryAfter, why: `Retry-After ${Math.ceil(retryAfter / 1000)}s` };
    }
    if (rl.remaining === 0 && rl.resetAtMs !== undefined) {
      // Never retried inside the call: the caller must not ask again before the reset.
      return { action: 'rate-limited', waitMs: Math.max(0, rl.resetAtMs - nowMs), why: 'rate limit exhausted until reset' };
    }
    if (status === 429 || /rate limit/i.test(body)) {
      // Secondary limit without Retry-After: GitHub asks for at least a minute.
      return { action: 'rate-limited', waitMs: Math.max(60_000, backoffDelay(attempt, 60_000, 15 * 60_000, rand)), why: 'secondary rate limit' };
    }
    return { action: 'fail' }; // a plain 403 (no access): retrying would not help
  }
  if (status >= 500 && retryAfter !== undefined && (last || retryAfter > policy.maxInlineWaitMs)) {
    // A 503 that says when to come back is a rate limit: nothing goes out before then.
    return { action: 'rate-limited', waitMs: retryAfter, why: `Retry-After ${Math.ceil(retryAfter / 1000)}s` };
  }
  if (status === 0 || status >= 500) {
    if (last) return { action: 'fail' };
    return { action: 'retry', delayMs: retryAfter !== undefined && retryAfter <= policy.maxInlineWaitMs ? retryAfter : backoffDelay(attempt, policy.baseMs, policy.capMs, rand) };
  }
  return { action: 'fail' };
}

/** Before a request: how long we must still wait (0 = go), given what the last responses said. */
export function gateWait(state: RateLimitState, notBeforeMs: number | undefined, nowMs: number): number {
  let wait = 0;
  if (notBeforeMs !== undefined) wait = Math.max(wait, notBeforeMs - nowMs);
  if (state.remaining === 0 && state.resetAtMs !== undefined) wait = Math.max(wait, state.resetAtMs - nowMs);
  return Math.max(0, wait);
}
