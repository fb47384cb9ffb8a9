// /metrics in Prometheus text format (prom-client): counters the updater feeds
// through a MetricsSource, gauges derived from status() and the supervise/ dirs,
// and prom-client's process defaults.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { HistoryEntry, ServiceInfo, UpdatePhase, UpdaterStatus } from './types.js';

/** The counts behind the molt_*_total counters. */
export interface MetricCounts {
  /** Checks finished (ok or not). */
  checks: number;
  checkErrors: number;
  /** Updates committed. */
  updates: number;
  /** Updates that failed: download, verification, apply or trial. */
  updateFailures: number;
  rollbacks: number;
  bytesDownloaded: number;
  /** Releases refused and blocked for their signature (MOLT_TRUST_*). */
  signatureFailures: number;
}

export function zeroCounts(): MetricCounts {
  return { checks: 0, checkErrors: 0, updates: 0, updateFailures: 0, rollbacks: 0, bytesDownloaded: 0, signatureFailures: 0 };
}

/** What the updater feeds as things happen (its UpdaterHooks call these). */
export interface MetricsSource {
  onCheck?(ok: boolean): void;
  onDownloadBytes?(n: number): void;
  onEvent?(e: HistoryEntry): void;
  /** The counts so far; /metrics reads them at each scrape. */
  readonly counts: MetricCounts;
}

/** The updater's counters: exact, because they are fed at the moment things happen.
 *  Plain code, so the updater needs nothing of prom-client. */
export class UpdaterMetrics implements MetricsSource {
  readonly counts: MetricCounts = zeroCounts();
  onCheck(ok: boolean): void {
    this.counts.checks++;
    if (!ok) this.counts.checkErrors++;
  }
  onDownloadBytes(n: number): void {
    if (Number.isFinite(n) && n > 0) this.counts.bytesDownloaded += n;
  }
  onEvent(e: HistoryEntry): void {
    if (e.event === 'commit') this.counts.updates++;
    else if (e.event === 'rollback') this.counts.rollbacks++;
    else if (e.event === 'block' && e.cause === 'signature') this.counts.signatureFailures++;
  }
}

export function createMetrics(): UpdaterMetrics {
  return new UpdaterMetrics();
}

const PHASES: UpdatePhase[] = ['idle', 'checking', 'downloading', 'staged', 'stopping', 'swapping', 'starting', 'trial', 'committed', 'rolling-back'];

/** Without a MetricsSource, the counters are derived from what status() shows over time:
 *  exact for events kept in the history, sampled (so possibly short) for bytes downloaded. */
export class StatusCounter {
  readonly counts: MetricCounts = zeroCounts();
  private lastCheckAt: string | undefined;
  private seenHistory = new Set<string>();
  private seenActions = new Set<string>();
  private download: { version: string; bytes: number } | undefined;

  /** `refused`: actions the updater turned down at once (409); they failed nothing. */
  constructor(private readonly refused: ReadonlySet<string> = new Set()) {}

  observe(s: UpdaterStatus): void {
    const c = this.counts;
    if (s.lastCheck && s.lastCheck.at !== this.lastCheckAt) {
      this.lastCheckAt = s.lastCheck.at;
      c.checks++;
      if (!s.lastCheck.ok) c.checkErrors++;
    }
    const keys = new Set<string>();
    for (const h of s.history) {
      const key = `${h.at}|${h.event}|${h.version ?? ''}|${h.from ?? ''}`;
      keys.add(key);
      if (this.seenHistory.has(key)) continue;
      if (h.event === 'commit') c.updates++;
      else if (h.event === 'rollback') c.rollbacks++;
      else if (h.event === 'block' && h.cause === 'signature') c.signatureFailures++;
    }
    // Entries that left the bounded history never come back; forget them.
    this.seenHistory = keys;
    const ids = new Set<string>();
    for (const a of s.actions) {
      ids.add(a.id);
      if (a.kind === 'update' && a.state === 'failed' && !this.seenActions.has(a.id) && !this.refused.has(a.id)) c.updateFailures++;
      if (a.state !== 'running') this.seenActions.add(a.id);
    }
    for (const id of this.seenActions) if (!ids.has(id)) this.seenActions.delete(id);
    if (s.download) {
      const prev = this.download;
      const same = prev && prev.version === s.download.version && s.download.bytes >= prev.bytes;
      c.bytesDownloaded += same ? s.download.bytes - prev.bytes : s.download.bytes;
      this.download = { version: s.download.version, bytes: s.download.bytes };
    } else {
      this.download = undefined;
    }
  }
}

/** Restarts seen in supervise/status: a new pid where another was seen before. Sampled, so a
 *  service that restarts several times between two samples counts once. */
export class RestartCounter {
  private readonly lastPid = new Map<string, number>();
  readonly restarts = new Map<string, number>();

  observe(services: ServiceInfo[]): void {
    for (const s of services) {
      const pid = s.pid ?? 0;
      const before = this.lastPid.get(s.name);
      if (!this.restarts.has(s.name)) this.restarts.set(s.name, 0);
      if (pid && before !== undefined && pid !== before) this.restarts.set(s.name, this.restarts.get(s.name)! + 1);
      this.lastPid.set(s.name, pid);
    }
  }
}

function isoSeconds(iso: string | undefined): number | undefined {
  if (!iso) return undefined;
  const t = Date.parse(iso);
  return Number.isFinite(t) ? t / 1000 : undefined;
}

export class ApiMetrics {
  readonly registry = new Registry();
  private readonly derived: StatusCounter;
  private readonly restartCounter = new RestartCounter();
  private readonly counters: Record<keyof MetricCounts, Counter>;
  private readonly g: Record<string, Gauge>;
  private readonly restartsMetric: Counter;

  constructor(
    private readonly source?: MetricsSource,
    refused: ReadonlySet<string> = new Set(),
  ) {
    this.derived = new StatusCounter(refused);
    const registers = [this.registry];
    // A coarse event-loop monitor: the default (10 ms) would wake an idle updater 100 times a second.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 1000 });
    const counter = (name: string, help: string) => new Counter({ name, help, registers });
    this.counters = {
      checks: counter('molt_checks_total', 'Release checks finished.'),
      checkErrors: counter('molt_check_errors_total', 'Release checks that failed.'),
      updates: counter('molt_updates_total', 'Updates committed.'),
      updateFailures: counter('molt_update_failures_total', 'Updates that failed (download, verification, apply or trial).'),
      rollbacks: counter('molt_rollbacks_total', 'Rollbacks to the previous version.'),
      bytesDownloaded: counter('molt_downloaded_bytes_total', 'Bytes of release artifacts downloaded.'),
      signatureFailures: counter('molt_signature_failures_total', 'Releases refused and blocked for want of a valid signature from a trusted key or identity.'),
    };
    const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers });
    this.g = {
      version: gauge('molt_version_info', 'The version in use (value 1).', ['version']),
      previous: gauge('molt_previous_version_info', 'The version a rollback would return to (value 1).', ['version']),
      available: gauge('molt_update_available', '1 when the policy would take a newer release now.'),
      phase: gauge('molt_update_phase', 'The updater phase (1 for the current one).', ['phase']),
      blocked: gauge('molt_blocked_versions', 'Versions blocked after a failed trial or by hand.'),
      lastCheck: gauge('molt_last_check_timestamp_seconds', 'Unix time of the last release check.'),
      lastCheckOk: gauge('molt_last_check_success', '1 when the last release check succeeded.'),
      nextCheck: gauge('molt_next_check_timestamp_seconds', 'Unix time of the next scheduled check.'),
      sourceSuccess: gauge('molt_source_last_success_timestamp_seconds', 'Unix time of the last poll the release source answered (200 or 304).'),
      sourceAge: gauge('molt_source_last_success_age_seconds', 'Seconds since the release source last answered a poll (since the start when it never did).'),
      sourceChange: gauge('molt_source_last_change_timestamp_seconds', 'Unix time of the last answer that differed from the one before.'),
      newestPublished: gauge('molt_newest_release_published_timestamp_seconds', 'Publish time of the newest release the source lists, when it gives one.'),
      sourceStale: gauge('molt_source_stale', '1 when the release source has not answered for longer than MOLT_STALE_AFTER.'),
      trial: gauge('molt_trial_active', '1 while a new version is on trial.'),
      trialDeadline: gauge('molt_trial_deadline_timestamp_seconds', 'Unix time by which the version on trial must prove itself.'),
      trialCrashes: gauge('molt_trial_crashes', 'Crashes of the version on trial so far.'),
      trustRootAge: gauge('molt_trust_root_age_seconds', 'Seconds since TUF last vouched for the Sigstore trusted root in use (keyless trust without MOLT_TRUST_ROOT).'),
      selfRunning: gauge('molt_self_version_info', 'The molt PID 1 runs (value 1; MOLT_SELF updates it).', ['version']),
      selfUpdater: gauge('molt_self_updater_version_info', 'The molt the updater runs (value 1).', ['version']),
      selfCurrent: gauge('molt_self_current_version_info', 'The molt installed as MOLT_HOME/molt/current (value 1; absent: the image\'s molt).', ['version']),
      selfBlocked: gauge('molt_self_blocked_versions', 'molt releases blocked after a failed trial as PID 1.'),
      serviceUp: gauge('molt_service_up', '1 when the service is running.', ['service']),
      serviceSeconds: gauge('molt_service_state_seconds', 'Seconds in the current state (uptime when up).', ['service']),
      serviceHealthy: gauge('molt_service_healthy', '1 when the service passes its check script (only services with one, once checked).', ['service']),
      serviceHeals: gauge('molt_service_heals', 'Restarts by auto-heal in the current run of molt init.', ['service']),
    };
    this.restartsMetric = new Counter({ name: 'molt_service_restarts_total', help: 'Starts of a new process seen after the first (sampled).', labelNames: ['service'], registers });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Called at every scrape and periodically, so that derived counters see transitions. */
  observe(status: UpdaterStatus | undefined, services: ServiceInfo[] | undefined): void {
    if (status) this.derived.observe(status);
    if (services) this.restartCounter.observe(services);
  }

  async render(status: UpdaterStatus, services: ServiceInfo[] | undefined): Promise<string> {
    this.observe(status, services);
    // Fed counts when the updater feeds them; failed updates (and everything, without a
    // source) from what status() showed over time.
    const counts: MetricCounts = { ...this.derived.counts, ...(this.source?.counts ?? {}), updateFailures: this.derived.counts.updateFailures };
    for (const [key, c] of Object.entries(this.counters) as [keyof MetricCounts, Counter][]) {
      c.reset();
      c.inc(Math.max(0, Number(counts[key]) || 0));
    }
    const g = this.g as Record<string, Gauge>;
    for (const gauge of Object.values(g)) gauge.reset();
    this.restartsMetric.reset();
    if (status.current) g.version!.set({ version: status.current }, 1);
    if (status.previous) g.previous!.set({ version: status.previous }, 1);
    g.available!.set(status.available ? 1 : 0);
    for (const p of PHASES) g.phase!.set({ phase: p }, p === status.phase ? 1 : 0);
    g.blocked!.set(status.blocked.length);
    const last = isoSeconds(status.lastCheck?.at);
    if (last !== undefined) {
      g.lastCheck!.set(last);
      g.lastCheckOk!.set(status.lastCheck?.ok ? 1 : 0);
    }
    const f = status.freshness;
    if (f) {
      g.sourceAge!.set(f.lastSuccessAgeSeconds);
      g.sourceStale!.set(f.stale ? 1 : 0);
      const success = isoSeconds(f.lastSuccessAt);
      if (success !== undefined) g.sourceSuccess!.set(success);
      const change = isoSeconds(f.lastChangeAt);
      if (change !== undefined) g.sourceChange!.set(change);
      const published = isoSeconds(f.newestPublishedAt);
      if (published !== undefined) g.newestPublished!.set(published);
    }
    const next = isoSeconds(status.nextCheckAt);
    if (next !== undefined) g.nextCheck!.set(next);
    g.trial!.set(status.trial ? 1 : 0);
    if (status.trial) {
      const deadline = isoSeconds(status.trial.deadlineAt);
      if (deadline !== undefined) g.trialDeadline!.set(deadline);
      g.trialCrashes!.set(status.trial.crashes);
    }
    const self = status.self;
    if (self) {
      if (self.running) g.selfRunning!.set({ version: self.running }, 1);
      g.selfUpdater!.set({ version: self.updater }, 1);
      if (self.current) g.selfCurrent!.set({ version: self.current }, 1);
      g.selfBlocked!.set(self.blocked.length);
    }
    if (status.trustRoot?.ageSeconds !== undefined) g.trustRootAge!.set(status.trustRoot.ageSeconds);
    for (const s of services ?? []) {
      g.serviceUp!.set({ service: s.name }, s.state === 'up' ? 1 : 0);
      if (s.seconds !== undefined) g.serviceSeconds!.set({ service: s.name }, s.seconds);
      if (s.health && s.health.healthy !== null) g.serviceHealthy!.set({ service: s.name }, s.health.healthy ? 1 : 0);
      if (s.health) g.serviceHeals!.set({ service: s.name }, s.health.heals);
      this.restartsMetric.inc({ service: s.name }, this.restartCounter.restarts.get(s.name) ?? 0);
    }
    return this.registry.metrics();
  }
}
