// The health checker of one service: runs `check` every interval (one at a
// time, with a deadline), keeps the health state and writes supervise/health.
// What a result means is pure (health.ts); a heal is an event for the slot's
// table, not a stop of its own.
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { logger } from '../common/log.js';
import { afterCheck, formatHealth, initialHealth, onRestart, type HealthState } from './health.js';
import type { ServiceFiles } from './serviceFiles.js';
import type { SuperviseDir } from './superviseDir.js';

const log = logger('supervise');

export interface CheckerHost {
  readonly label: string;
  readonly service: string;
  readonly files: ServiceFiles;
  readonly sup: SuperviseDir;
  spawn(cmd: string, args: string[], opts: SpawnOptions): ChildProcess;
  settings: { checkIntervalMs: number; checkTimeoutMs: number; checkFailures: number; healCooldownMs: number };
  /** The running run's pid (0 when none). */
  pid(): number;
  notifyFd(): number | undefined;
  attachCheckOutput(child: ChildProcess): void;
  heal(why: string): void;
  changed(): void;
}

export class HealthChecker {
  health: HealthState = initialHealth();
  private timer: NodeJS.Timeout | undefined;
  private child: ChildProcess | undefined;
  private lastCheckIso: string | undefined;

  constructor(private readonly host: CheckerHost) {}

  /** A new run started: readiness and failures start over. */
  restarted(ready = false): void {
    this.health = { ...onRestart(this.health), ready };
  }

  markReady(): boolean {
    if (this.health.ready) return false;
    this.health = { ...this.health, ready: true };
    return true;
  }

  update(over: Partial<HealthState>): void {
    this.health = { ...this.health, ...over };
  }

  schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    const interval = this.host.files.durationMs('check-interval', 's') ?? this.host.settings.checkIntervalMs;
    this.timer = setTimeout(() => this.run(), interval);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One check at a time, with a deadline; its output goes to the log with the service's prefix. */
  private run(): void {
    this.timer = undefined;
    const pid = this.host.pid();
    if (!pid) return;
    if (!this.host.files.checkPath()) {
      this.schedule();
      return;
    }
    if (this.child) return; // never two at once
    let child: ChildProcess;
    try {
      child = this.host.spawn('./check', [], { cwd: this.host.files.dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, MOLT_SERVICE: this.host.service } });
    } catch {
      this.schedule();
      return;
    }
    if (child.pid === undefined) {
      child.on('error', () => {});
      this.finish(pid, false, 'check could not start');
      return;
    }
    this.child = child;
    this.host.attachCheckOutput(child);
    let timedOut = false;
    const timeoutMs = this.host.settings.checkTimeoutMs;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      this.child = undefined;
      this.finish(pid, code === 0 && !timedOut, timedOut ? `timed out after ${timeoutMs} ms` : `exit ${code ?? 'by signal'}`);
    });
  }

  private finish(pid: number, passed: boolean, detail: string): void {
    this.lastCheckIso = new Date().toISOString();
    if (pid !== this.host.pid()) return; // the service restarted meanwhile: this result is about the old run
    const s = this.host.settings;
    const { state, action } = afterCheck(this.health, passed, performance.now(), {
      failures: s.checkFailures,
      cooldownMs: s.healCooldownMs,
      noHeal: this.host.files.has('no-heal'),
    });
    const wasHealthy = this.health.healthy;
    this.health = state;
    const label = this.host.label;
    if (!passed) log.warn('check failed', { service: label, failures: state.failures, detail });
    else if (wasHealthy === false) log.info('check passes again', { service: label });
    if (action === 'heal') this.host.heal('unhealthy, restarting');
    else if (action === 'give-up') log.error('still unhealthy after a heal within the cooldown; not restarting again', { service: label, cooldown_ms: s.healCooldownMs });
    else if (action === 'unhealthy') log.warn('unhealthy (no-heal: not restarting)', { service: label });
    this.write();
    this.host.changed();
    this.schedule();
  }

  write(): void {
    try {
      this.host.sup.writeFile(
        'health',
        formatHealth(this.health, { pid: this.host.pid(), hasCheck: this.host.files.checkPath() !== undefined, notificationFd: this.host.notifyFd(), lastCheck: this.lastCheckIso }),
      );
    } catch {
      // informational only
    }
  }
}
