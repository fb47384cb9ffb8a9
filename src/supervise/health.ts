// Health of one service as pure functions: what a check result means
// (healthy, heal, give up), and the `supervise/health` file molt writes beside
// runit's files so that `molt sv`, `molt health`, the updater's trial and the
// status page all read the same state.

export interface HealthPolicy {
  /** Failures in a row that make a service unhealthy and trigger a heal. */
  failures: number;
  cooldownMs: number;
  /** `no-heal` file: report, never restart. */
  noHeal: boolean;
}

export interface HealthState {
  /** undefined until the first check of this run finished. */
  healthy: boolean | undefined;
  /** s6 readiness: a newline arrived on the notification fd. */
  ready: boolean;
  /** Consecutive failed checks. */
  failures: number;
  checks: number;
  heals: number;
  /** Monotonic ms of the last heal restart. */
  lastHealMono: number | undefined;
  /** Unhealthy again within the cooldown after a heal: reported once, no more restarts. */
  gaveUp: boolean;
  /** Too many deaths (`max-deaths`): not restarted until sv up. */
  failed: boolean;
}

export function initialHealth(): HealthState {
  return { healthy: undefined, ready: false, failures: 0, checks: 0, heals: 0, lastHealMono: undefined, gaveUp: false, failed: false };
}

export type HealthAction = 'none' | 'heal' | 'give-up' | 'unhealthy';

/** A check finished. `action`: restart it, report giving up, or report it unhealthy (no-heal). */
export function afterCheck(s: HealthState, passed: boolean, nowMono: number, p: HealthPolicy): { state: HealthState; action: HealthAction } {
  const checks = s.checks + 1;
  if (passed) return { state: { ...s, checks, failures: 0, healthy: true, gaveUp: false }, action: 'none' };
  const failures = s.failures + 1;
  if (failures < p.failures) return { state: { ...s, checks, failures }, action: 'none' };
  const unhealthy = { ...s, checks, failures, healthy: false };
  if (failures > p.failures) return { state: unhealthy, action: 'none' }; // already reported
  if (p.noHeal) return { state: unhealthy, action: 'unhealthy' };
  const cooled = s.lastHealMono === undefined || nowMono - s.lastHealMono >= p.cooldownMs;
  if (cooled) return { state: { ...unhealthy, failures: 0, heals: s.heals + 1, lastHealMono: nowMono }, action: 'heal' };
  if (s.gaveUp) return { state: unhealthy, action: 'none' };
  return { state: { ...unhealthy, gaveUp: true }, action: 'give-up' };
}

/** A new run of the service: readiness and the check result belong to the old one. */
export function onRestart(s: HealthState): HealthState {
  return { ...s, ready: false, healthy: undefined, failures: 0, failed: false };
}

export interface HealthFile {
  pid: number;
  ready: boolean;
  /** null until the first check of this run. */
  healthy: boolean | null;
  failures: number;
  checks: number;
  heals: number;
  gaveUp: boolean;
  hasCheck: boolean;
  notificationFd: number | null;
  /** ISO time of the last check. */
  lastCheck: string | null;
  /** Stopped for good after `max-deaths` (absent in files from older molt). */
  failed?: boolean;
}

export function formatHealth(s: HealthState, extra: { pid: number; hasCheck: boolean; notificationFd: number | undefined; lastCheck: string | undefined }): string {
  const f: HealthFile = {
    pid: extra.pid,
    ready: s.ready,
    healthy: s.healthy ?? null,
    failures: s.failures,
    checks: s.checks,
    heals: s.heals,
    gaveUp: s.gaveUp,
    hasCheck: extra.hasCheck,
    notificationFd: extra.notificationFd ?? null,
    lastCheck: extra.lastCheck ?? null,
    failed: s.failed,
  };
  return JSON.stringify(f) + '\n';
}

export function parseHealth(text: string): HealthFile | undefined {
  try {
    const v = JSON.parse(text) as HealthFile;
    return typeof v === 'object' && v && typeof v.ready === 'boolean' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** `notification-fd` holds a descriptor number; 0-2 are stdio and not allowed. */
export function parseNotificationFd(text: string): number | undefined {
  const n = Number(text.trim());
  return Number.isInteger(n) && n >= 3 && n <= 255 ? n : undefined;
}
