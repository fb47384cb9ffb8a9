// Notifications of update, rollback, block, crash-loop and health events: a JSON POST to
// MOLT_NOTIFY_URL, shaped for Discord or Slack when the URL is theirs. Sent from a
// bounded queue with bounded retries: never blocks the caller, never throws.
import { logger } from '../common/log.js';
import type { HistoryEntry } from './types.js';

const log = logger('notify');

/** `of: 'molt'`: an event of molt's own update (MOLT_SELF), not the app's. */
export type NotifyEvent = HistoryEntry & { host?: string; of?: 'molt' };

/** The history events worth a message; checks and downloads are not. */
const NOTIFIED = new Set<HistoryEntry['event']>(['update', 'commit', 'rollback', 'block', 'crash-loop', 'unhealthy', 'healed', 'gave-up']);

export function notifiable(e: HistoryEntry): boolean {
  return NOTIFIED.has(e.event);
}

export type Flavor = 'discord' | 'slack' | 'json';

export function flavorOf(url: string): Flavor {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'json';
  }
  const host = u.hostname.toLowerCase();
  if (/^((ptb|canary)\.)?discord(app)?\.com$/.test(host) && u.pathname.startsWith('/api/webhooks/')) return 'discord';
  if (host === 'hooks.slack.com') return 'slack';
  return 'json';
}

/** One line a person reads in a chat channel. */
export function messageText(e: NotifyEvent): string {
  const on = e.host ? ` on ${e.host}` : '';
  // molt's own versions say so: "molt 1.4.1", never a bare number that reads as the app's.
  const self = e.of === 'molt' ? 'molt ' : '';
  const v = `${self}${e.version ?? '?'}`;
  e = e.from && self ? { ...e, from: `${self}${e.from}` } : e;
  const why = e.detail ? `: ${e.detail}` : '';
  switch (e.event) {
    case 'update':
      return `molt${on}: updating ${e.from ? `${e.from} → ` : ''}${v}${why}`;
    case 'commit':
      return `molt${on}: ${v} passed its trial and is now current${e.from ? ` (was ${e.from})` : ''}`;
    case 'rollback':
      // As the updater records it: `from` failed, `version` is what runs again.
      return `molt${on}: rolled back ${e.from ? `${e.from} → ` : 'to '}${v}${why}`;
    case 'block':
      return `molt${on}: blocked ${v}${why}`;
    case 'crash-loop':
      return `molt${on}: ${v} is crash-looping${why}`;
    case 'unhealthy':
      return `molt${on}: ${v} is unhealthy${why}`;
    case 'healed':
      return `molt${on}: ${v} failed its check and was restarted${why}`;
    case 'gave-up':
      return `molt${on}: ${v} is still unhealthy after a restart; not restarting again${why}`;
    default:
      return `molt${on}: ${e.event} ${v}${why}`;
  }
}

/** The request body for the URL's flavour. */
export function notificationBody(url: string, e: NotifyEvent): Record<string, unknown> {
  const text = messageText(e);
  switch (flavorOf(url)) {
    case 'discord':
      return { content: text.slice(0, 2000) };
    case 'slack':
      return { text };
    default:
      return { source: 'molt', text, ...e };
  }
}

export interface NotifierOptions {
  /** Attempts per message (first try included); default 5. */
  attempts?: number;
  /** First retry delay, doubled each time up to maxDelayMs; default 1000. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Per attempt; default 10000. */
  timeoutMs?: number;
  /** Messages waiting beyond this are dropped, oldest first; default 100. */
  maxQueue?: number;
}

export interface Notifier {
  notify(e: NotifyEvent): void;
  /** Resolves when the queue is empty (tests, orderly shutdown). */
  idle(): Promise<void>;
}

const sleep = (ms: number) =>
  new Promise<void>((r) => {
    // Unref'd: a pending retry never keeps the updater alive on its way out.
    setTimeout(r, ms).unref();
  });

export function createNotifier(url: string | undefined, opts: NotifierOptions = {}): Notifier {
  if (!url) return { notify() {}, idle: async () => {} };
  const attempts = Math.max(1, opts.attempts ?? 5);
  const base = opts.baseDelayMs ?? 1000;
  const maxDelay = opts.maxDelayMs ?? 60_000;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const maxQueue = opts.maxQueue ?? 100;
  let host = 'invalid-url';
  try {
    host = new URL(url).host; // the rest of a webhook URL is a secret: only the host is ever logged
  } catch {
    log.warn('MOLT_NOTIFY_URL is not a URL; notifications are off');
    return { notify() {}, idle: async () => {} };
  }
  const queue: NotifyEvent[] = [];
  let running: Promise<void> | undefined;

  async function send(e: NotifyEvent): Promise<void> {
    const body = JSON.stringify(notificationBody(url!, e));
    for (let i = 1; i <= attempts; i++) {
      let retryAfterMs: number | undefined;
      try {
        const res = await fetch(url!, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'molt' },
          body,
          signal: AbortSignal.timeout(timeoutMs),
          redirect: 'error',
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) {
          log.debug('sent', { host, event: e.event, version: e.version });
          return;
        }
        if (res.status !== 429 && res.status < 500) {
          log.warn('refused', { host, event: e.event, status: res.status });
          return;
        }
        const ra = Number(res.headers.get('retry-after'));
        if (Number.isFinite(ra) && ra >= 0) retryAfterMs = Math.min(ra * 1000, maxDelay);
        log.debug('retry', { host, event: e.event, status: res.status, attempt: i });
      } catch (err) {
        log.debug('retry', { host, event: e.event, error: (err as Error).message, attempt: i });
      }
      if (i < attempts) await sleep(retryAfterMs ?? Math.min(base * 2 ** (i - 1), maxDelay));
    }
    log.warn('gave up', { host, event: e.event, attempts });
  }

  async function drain(): Promise<void> {
    for (let e = queue.shift(); e; e = queue.shift()) {
      try {
        await send(e);
      } catch {
        // send() handles its own errors; this only guards the loop.
      }
    }
    running = undefined;
  }

  return {
    notify(e) {
      try {
        if (!notifiable(e)) return;
        queue.push(e);
        if (queue.length > maxQueue) {
          const dropped = queue.shift();
          log.warn('queue full, dropped', { event: dropped?.event, version: dropped?.version });
        }
        // Started from the event loop, not here: even fetch's lazy set-up stays off the caller's path.
        running ??= new Promise<void>((r) => setImmediate(r)).then(drain);
      } catch {
        // Never throw into the updater.
      }
    },
    async idle() {
      while (running) await running;
    },
  };
}
