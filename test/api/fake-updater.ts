// A small in-memory UpdaterControl that behaves like the updater over time: a check
// finishes after a tick, an update walks the phases (with download progress) to a trial
// that commits or rolls back, a rollback swaps versions. The control plane's tests run
// against it so that they need no release source, no store and no app.
import type { ActionInfo, BlockedEntry, BlockResult, HistoryEntry, ReleaseInfo, TrialInfo, UpdatePhase, UpdaterControl, UpdaterStatus } from '../../src/api/types.js';

export interface FakeOptions {
  /** Length of one step of an action; default 20 ms. */
  tickMs?: number;
  /** Hold each check until releaseCheck() is called (deterministic coalescing tests). */
  holdChecks?: boolean;
  /** Versions that crash on trial and are rolled back and blocked. */
  bad?: string[];
  /** Trial length in ticks unless ready() commits it first; default 5. */
  trialTicks?: number;
}

const iso = (ms = Date.now()) => new Date(ms).toISOString();

export class FakeUpdater implements UpdaterControl {
  phase: UpdatePhase = 'idle';
  current: string | undefined = '1.1.0';
  previous: string | undefined = '1.0.0';
  /** What verified `current` (MOLT_TRUST_KEYS): a minisign key id. */
  verifiedBy: string | undefined = '0123456789ABCDEF';
  available: string | undefined;
  /** What the source offers (newest first); learnt by a check. */
  sourceVersions = ['1.3.0', '1.2.1', '1.2.0', '1.1.0', '1.0.0'];
  private known: string[] = ['1.2.1', '1.1.0', '1.0.0'];
  blockedList: BlockedEntry[] = [{ version: '1.2.1', reason: 'crashed 2 times during its trial (exit 1)', at: iso(Date.now() - 3 * 3600_000) }];
  history: HistoryEntry[] = [
    { at: iso(Date.now() - 26 * 3600_000), event: 'commit', version: '1.1.0', from: '1.0.0' },
    { at: iso(Date.now() - 3 * 3600_000 - 60_000), event: 'update', version: '1.2.1', from: '1.1.0' },
    // As the updater writes it: a rollback's version is the one returned to, from the one that failed.
    { at: iso(Date.now() - 3 * 3600_000 - 30_000), event: 'rollback', version: '1.1.0', from: '1.2.1', detail: 'crashed 2 times during its trial (exit 1)' },
    { at: iso(Date.now() - 3 * 3600_000), event: 'block', version: '1.2.1', detail: 'crashed 2 times during its trial (exit 1)' },
  ];
  actions: ActionInfo[] = [];
  lastCheck: UpdaterStatus['lastCheck'];
  download: UpdaterStatus['download'];
  trial: TrialInfo | undefined;

  /** Counters the tests read. */
  checkCalls = 0;
  maxConcurrentChecks = 0;
  updateCalls = 0;
  rollbackCalls = 0;
  readyCalls = 0;
  unblockCalls = 0;

  private readonly tick: number;
  private readonly holdChecks: boolean;
  private readonly bad: Set<string>;
  /** Trial length in ticks (tests may change it between updates). */
  trialTicks: number;
  private seq = 0;
  private timers = new Set<NodeJS.Timeout>();
  private heldChecks: (() => void)[] = [];
  private commitNow: (() => void) | undefined;

  constructor(opts: FakeOptions = {}) {
    this.tick = opts.tickMs ?? 20;
    this.holdChecks = opts.holdChecks ?? false;
    this.bad = new Set(opts.bad ?? []);
    this.trialTicks = opts.trialTicks ?? 5;
  }

  status(): UpdaterStatus {
    const releases: ReleaseInfo[] = this.known.map((v) => ({ version: v, prerelease: false, blocked: this.blockedList.some((b) => b.version === v) }));
    const s: UpdaterStatus = {
      phase: this.phase,
      source: 'dir:/srv/releases',
      policy: 'latest',
      releases,
      blocked: this.blockedList.map((b) => ({ ...b })),
      history: this.history.slice(-50).map((h) => ({ ...h })),
      actions: this.actions.slice(-20).map((a) => ({ ...a })),
    };
    if (this.current) s.current = this.current;
    if (this.previous) s.previous = this.previous;
    if (this.verifiedBy) s.verifiedBy = this.verifiedBy;
    if (this.available) s.available = this.available;
    if (this.lastCheck) s.lastCheck = { ...this.lastCheck };
    s.nextCheckAt = iso(Date.now() + 5 * 60_000);
    if (this.download) s.download = { ...this.download };
    if (this.trial) s.trial = { ...this.trial };
    return s;
  }

  private newAction(kind: ActionInfo['kind'], version?: string): ActionInfo {
    const a: ActionInfo = { id: `${kind}-${++this.seq}`, kind, state: 'running', startedAt: iso() };
    if (version) a.version = version;
    this.actions.push(a);
    return a;
  }

  private finish(a: ActionInfo, state: 'done' | 'failed', message: string): void {
    a.state = state;
    a.message = message;
    a.finishedAt = iso();
  }

  private after(ticks: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ticks * this.tick);
    this.timers.add(t);
  }

  private running(kind: ActionInfo['kind'][]): ActionInfo | undefined {
    return this.actions.find((a) => a.state === 'running' && kind.includes(a.kind));
  }

  private newest(): string | undefined {
    const cur = this.current ?? '0';
    return this.known.find((v) => !this.blockedList.some((b) => b.version === v) && cmp(v, cur) > 0);
  }

  check(): ActionInfo {
    this.checkCalls++;
    const a = this.newAction('check');
    const concurrent = this.actions.filter((x) => x.kind === 'check' && x.state === 'running').length;
    this.maxConcurrentChecks = Math.max(this.maxConcurrentChecks, concurrent);
    if (this.phase === 'idle' || this.phase === 'committed') this.phase = 'checking';
    const done = () => {
      this.known = [...this.sourceVersions];
      this.available = this.newest();
      this.lastCheck = { at: iso(), ok: true };
      this.history.push({ at: iso(), event: 'check', detail: this.available ? `${this.available} available` : 'up to date' });
      if (this.phase === 'checking') this.phase = 'idle';
      this.finish(a, 'done', this.available ? `${this.available} is available` : 'up to date');
    };
    if (this.holdChecks) this.heldChecks.push(done);
    else this.after(1, done);
    return { ...a };
  }

  /** Let the oldest held check finish; returns false when none is held. */
  releaseCheck(): boolean {
    const fn = this.heldChecks.shift();
    if (!fn) return false;
    fn();
    return true;
  }

  update(version?: string): ActionInfo {
    this.updateCalls++;
    const busy = this.running(['update', 'rollback']);
    const target = version ?? this.available;
    const a = this.newAction('update', target);
    if (busy) {
      this.finish(a, 'failed', `an ${busy.kind} is already running (${busy.id})`);
      return { ...a };
    }
    if (!target) {
      this.finish(a, 'failed', `already up to date${this.current ? ` at ${this.current}` : ''}`);
      return { ...a };
    }
    if (target === this.current) {
      this.finish(a, 'failed', `${target} is already current`);
      return { ...a };
    }
    const from = this.current;
    this.phase = 'downloading';
    this.history.push({ at: iso(), event: 'update', version: target, ...(from ? { from } : {}) });
    if (!this.sourceVersions.includes(target)) {
      this.after(1, () => {
        this.phase = 'idle';
        this.finish(a, 'failed', `version ${target} not found at dir:/srv/releases`);
      });
      return { ...a };
    }
    const total = 4 * 1024 * 1024;
    const steps = 8;
    let step = 0;
    const downloadStep = () => {
      step++;
      this.download = { version: target, bytes: Math.min(total, Math.round((total * step) / steps)), total };
      if (step < steps) return this.after(1, downloadStep);
      this.after(1, () => {
        this.download = undefined;
        this.phase = 'staged';
        this.after(1, () => {
          this.phase = 'stopping';
          this.after(1, () => {
            this.phase = 'swapping';
            this.previous = from;
            this.current = target;
            this.available = this.newest();
            this.after(1, () => {
              this.phase = 'starting';
              this.after(1, () => this.startTrial(a, target, from));
            });
          });
        });
      });
    };
    this.after(1, downloadStep);
    return { ...a };
  }

  private startTrial(a: ActionInfo, target: string, from: string | undefined): void {
    this.phase = 'trial';
    const now = Date.now();
    this.trial = {
      version: target,
      ...(from ? { from } : {}),
      startedAt: iso(now),
      deadlineAt: iso(now + this.trialTicks * this.tick),
      crashes: 0,
      crashLimit: 2,
      ready: false,
      readyMode: 'auto',
    };
    const commit = () => {
      this.commitNow = undefined;
      if (this.phase !== 'trial') return;
      this.trial = undefined;
      this.phase = 'committed';
      this.history.push({ at: iso(), event: 'commit', version: target, ...(from ? { from } : {}) });
      if (this.available === target) this.available = this.newest();
      this.finish(a, 'done', `updated to ${target}${from ? ` (from ${from})` : ''}`);
      this.after(1, () => {
        if (this.phase === 'committed') this.phase = 'idle';
      });
    };
    if (this.bad.has(target)) {
      this.after(1, () => {
        this.trial!.crashes = 1;
        this.after(1, () => {
          this.trial!.crashes = 2;
          this.phase = 'rolling-back';
          this.after(2, () => {
            const reason = 'crashed 2 times during its trial (exit 1)';
            this.trial = undefined;
            this.current = from;
            this.previous = undefined;
            this.blockedList.push({ version: target, reason, at: iso() });
            this.history.push({ at: iso(), event: 'rollback', ...(from ? { version: from } : {}), from: target, detail: reason });
            this.history.push({ at: iso(), event: 'block', version: target, detail: reason });
            this.available = this.newest();
            this.phase = 'idle';
            this.finish(a, 'failed', `${target} ${reason}; rolled back to ${from}`);
          });
        });
      });
      return;
    }
    this.commitNow = commit;
    this.after(this.trialTicks, commit);
  }

  rollback(): ActionInfo {
    this.rollbackCalls++;
    const busy = this.running(['update', 'rollback']);
    const a = this.newAction('rollback', this.previous);
    if (busy) {
      this.finish(a, 'failed', `an ${busy.kind} is already running (${busy.id})`);
      return { ...a };
    }
    if (!this.previous) {
      this.finish(a, 'failed', 'no previous version to roll back to');
      return { ...a };
    }
    const to = this.previous;
    const from = this.current;
    this.phase = 'stopping';
    this.after(1, () => {
      this.phase = 'swapping';
      this.current = to;
      this.previous = from;
      this.after(1, () => {
        this.phase = 'starting';
        this.after(1, () => {
          this.phase = 'idle';
          this.history.push({ at: iso(), event: 'rollback', version: to, ...(from ? { from } : {}), detail: 'by request' });
          this.finish(a, 'done', `rolled back to ${to}`);
        });
      });
    });
    return { ...a };
  }

  ready(): boolean {
    this.readyCalls++;
    if (this.phase !== 'trial' || !this.trial || !this.commitNow) return false;
    this.trial.ready = true;
    const commit = this.commitNow;
    setImmediate(commit);
    return true;
  }

  blocked(): BlockedEntry[] {
    return this.blockedList.map((b) => ({ ...b }));
  }

  async unblock(version: string): Promise<boolean> {
    this.unblockCalls++;
    const i = this.blockedList.findIndex((b) => b.version === version);
    if (i < 0) return false;
    this.blockedList.splice(i, 1);
    this.history.push({ at: iso(), event: 'unblock', version });
    this.available = this.newest();
    return true;
  }

  async block(version: string, reason?: string): Promise<BlockResult> {
    if (version === this.current) return { result: 'refused', error: `${version} is the running version` };
    if (this.blockedList.some((b) => b.version === version)) return { result: 'already' };
    this.blockedList.push({ version, reason: `blocked by hand${reason ? `: ${reason}` : ''}`, at: iso() });
    this.history.push({ at: iso(), event: 'block', version });
    return { result: 'blocked' };
  }

  /** Everything a refused request must leave alone. */
  snapshot(): string {
    return JSON.stringify({
      phase: this.phase,
      current: this.current,
      previous: this.previous,
      blocked: this.blockedList,
      actions: this.actions.length,
      calls: [this.checkCalls, this.updateCalls, this.rollbackCalls, this.readyCalls, this.unblockCalls],
    });
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

/** Numeric dotted comparison, enough for the fake's versions. */
function cmp(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d;
  }
  return 0;
}
