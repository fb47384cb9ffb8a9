// Webhook triggers: coalescing a flood into at most one running check plus one
// queued, and refusing replays of a GitHub delivery id.
import type { ActionInfo, UpdaterControl } from './types.js';

export type TriggerResult =
  /** A check was started now. */
  | { result: 'started'; action: ActionInfo }
  /** A check is running; one more will start when it ends. */
  | { result: 'queued' }
  /** A check is running and one is already queued: this trigger adds nothing. */
  | { result: 'coalesced' };

export class CheckCoalescer {
  private ownId: string | undefined;
  private queued = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly ctl: UpdaterControl,
    private readonly pollMs = 250,
  ) {}

  /** A check is running: ours, or one started by the schedule, the CLI or the page. */
  private busy(): boolean {
    const actions = this.ctl.status().actions;
    if (actions.some((a) => a.kind === 'check' && a.state === 'running')) return true;
    // Our own check counts until the updater lists it as finished (or drops it).
    if (this.ownId) {
      const own = actions.find((a) => a.id === this.ownId);
      if (own && own.state === 'running') return true;
      this.ownId = undefined;
    }
    return false;
  }

  trigger(): TriggerResult {
    if (this.busy()) {
      if (this.queued) return { result: 'coalesced' };
      this.queued = true;
      this.schedule();
      return { result: 'queued' };
    }
    return { result: 'started', action: this.start() };
  }

  private start(): ActionInfo {
    const action = this.ctl.check();
    this.ownId = action.state === 'running' ? action.id : undefined;
    return action;
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.closed || !this.queued) return;
      if (this.busy()) return this.schedule();
      this.queued = false;
      try {
        this.start();
      } catch {
        // The updater refused; the next trigger or the interval will check again.
      }
    }, this.pollMs);
    this.timer.unref();
  }

  get pending(): boolean {
    return this.queued;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** The delivery ids seen recently (bounded, oldest forgotten first). */
export class DeliveryLog {
  private readonly seen = new Set<string>();
  constructor(private readonly max = 1000) {}

  /** true when `id` is new (and remembers it); false for a replay. */
  record(id: string): boolean {
    if (this.seen.has(id)) return false;
    this.seen.add(id);
    if (this.seen.size > this.max) {
      const oldest = this.seen.values().next().value as string;
      this.seen.delete(oldest);
    }
    return true;
  }
}

/** GitHub's X-GitHub-Delivery is a GUID; accept any short token-like id. */
export function deliveryIdValid(id: string): boolean {
  return /^[A-Za-z0-9._:-]{1,100}$/.test(id);
}
