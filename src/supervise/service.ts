// One service directory, as runsv runs it: the `run` slot, and a `log/` slot
// fed through a pipe that molt holds open across restarts of either side.
// Each slot is driven by the pure table in machine.ts; this file performs the
// actions (spawn, signal, timers) and writes supervise/ after every step.
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess, SpawnOptions, StdioOptions } from 'node:child_process';
import { logger } from '../common/log.js';
import { nextRestart, parseDeathLimit, recordDeath, type Throttle } from './backoff.js';
import { initialState, PERMANENT_FAILURE, step, type SlotEvent, type SlotState } from './machine.js';
import { pipeCheckLines, pipeLines, type Outlet } from './output.js';
import { parseSignal, signalNumber } from './signals.js';
import { SuperviseDir } from './superviseDir.js';
import { native } from '../common/native.js';
import net from 'node:net';
import { afterCheck, formatHealth, initialHealth, onRestart, parseNotificationFd, type HealthState } from './health.js';
import { parseDuration, timerDuration } from '../common/duration.js';
import { bindAll, closeAll, listenEnv, parseListen, type BoundSocket } from './listen.js';
import { formatNext, HANDOVER_LETTERS, initialNext, stepNext, type NextEvent, type NextState } from './handover.js';
import { parseDepends } from './depends.js';

const log = logger('supervise');

export interface ServiceEnv {
  /** child_process.spawn that registers the pid with the reaper before returning. */
  spawn(cmd: string, args: string[], opts: SpawnOptions): ChildProcess;
  maxBackoffMs: number;
  finishTimeoutMs: number;
  /** Health checks (issue: auto-heal): every interval, a timeout, failures in a row, a cooldown between heals. */
  checkIntervalMs: number;
  checkTimeoutMs: number;
  checkFailures: number;
  healCooldownMs: number;
  /** Grace between a heal's stop signal and KILL. */
  stopTimeoutMs: number;
  /** Prefix service output with `[name] ` on molt's stdout (else the service inherits it). */
  logPrefix: boolean;
  /** molt's stdout, for prefixed service output (with backpressure). */
  out: Outlet;
  /** A slot's `run` exited; `wanted` is false when it was asked to stop. */
  onRunExit?(svc: Service, slot: Slot, code: number | null, signal: NodeJS.Signals | null, wanted: boolean): void;
  onChange?(): void;
}

function exists(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  return signal ? 128 + signalNumber(signal) : code ?? 0;
}

function sameState(a: SlotState, b: SlotState): boolean {
  return a.phase === b.phase && a.want === b.want && a.paused === b.paused && a.gotTerm === b.gotTerm && a.throttled === b.throttled && a.exited === b.exited;
}

/** The second instance of `run` during an overlapping handover (handover.ts). */
interface NextRun {
  child: ChildProcess;
  startedAt: number;
  since: string;
  ready: boolean;
  notify: net.Socket | undefined;
  notifyFd: number | undefined;
  onExit: (code: number | null, signal: NodeJS.Signals | null) => void;
}

interface NotificationPipe {
  fd: number;
  writeFd: number;
  sock: net.Socket;
}

export class Slot {
  state: SlotState;
  child: ChildProcess | undefined;
  private stampMs = Date.now();
  private startedAt = 0;
  private throttle: Throttle = { delayMs: 0 };
  private throttleTimer: NodeJS.Timeout | undefined;
  private finishTimer: NodeJS.Timeout | undefined;
  private runningFinish = false;
  readonly sup: SuperviseDir;
  lastExit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  health: HealthState = initialHealth();
  private checkTimer: NodeJS.Timeout | undefined;
  private checkChild: ChildProcess | undefined;
  private lastCheckIso: string | undefined;
  private notifyFd: number | undefined;
  private notifySock: net.Socket | undefined;
  private warnedCheck = false;
  private exitListener: ((code: number | null, signal: NodeJS.Signals | null) => void) | undefined;
  private customChain: Promise<void> | undefined;
  /** Monotonic times of recent deaths, for `max-deaths`. */
  private deaths: number[] = [];
  private spawnPending = false;
  private nextState: NextState = initialNext();
  private nextRun: NextRun | undefined;
  private nextExit: { code: number; signal: number } | null = null;
  /** Duration files already reported as bad, with the value reported. */
  private readonly badFiles = new Map<string, string>();

  constructor(
    readonly svc: Service,
    readonly label: string,
    readonly cwd: string,
    readonly isLog: boolean,
    private readonly stdio: () => StdioOptions,
  ) {
    this.sup = new SuperviseDir(path.join(cwd, 'supervise'));
    this.state = initialState(exists(path.join(cwd, 'down')));
  }

  open(): void {
    // A next instance from an earlier life of the container is long gone.
    fs.rmSync(path.join(this.cwd, 'supervise', 'next'), { force: true });
    this.sup.open((bytes) => {
      for (const b of bytes) this.dispatch({ type: 'control', letter: String.fromCharCode(b) });
    });
    this.writeStatus();
  }

  get pid(): number {
    return this.child?.pid ?? 0;
  }

  /** Up, and ready when it reports readiness (notification-fd): what dependants wait for. */
  get readyForDependants(): boolean {
    return this.state.phase === 'run' && this.pid !== 0 && !this.spawnPending && (this.notifyFd === undefined || this.health.ready);
  }

  dispatch(event: SlotEvent): void {
    if (event.type === 'control' && !this.isLog) {
      if (HANDOVER_LETTERS.has(event.letter)) {
        this.driveNext({ type: 'control', letter: event.letter as 'N' | 'P' | 'K', mainRunning: this.state.phase === 'run' && this.pid !== 0 });
        return;
      }
      if (event.letter === 'd' || event.letter === 'x') this.driveNext({ type: 'main-stopping' });
    }
    const before = this.state;
    const t = step(before, event);
    this.state = t.state;
    if (t.state.phase === 'down' && before.phase !== 'down') this.stampMs = Date.now();
    for (const a of t.actions) {
      switch (a.type) {
        case 'spawn-run':
          if (this.customized()) {
            // runsv runs control/u before every start of run, and waits for it.
            this.spawnPending = true;
            this.afterCustom(async () => {
              await this.custom('u');
              this.spawnPending = false;
              if (this.state.phase !== 'run' || this.child) return; // stopped meanwhile
              this.spawnRun();
              this.writeStatus();
              this.svc.env.onChange?.();
            });
          } else this.spawnRun();
          break;
        case 'spawn-finish':
          this.spawnFinish(a.code, a.signal);
          break;
        case 'stop': {
          this.armTimeoutKill();
          const sig = this.svc.downSignal();
          if (this.customized()) {
            // runsv: control/t may replace the stop signal; CONT always; then control/d or control/x.
            const want = this.state.want;
            this.state = { ...this.state, gotTerm: false }; // set when the signal is really sent
            this.afterCustom(async () => {
              if (!(await this.custom('t'))) this.termSent(sig);
              this.kill('SIGCONT');
              if (want === 'down' || want === 'exit') await this.custom(want === 'down' ? 'd' : 'x');
            });
            break;
          }
          this.kill(sig);
          if (sig !== 'SIGCONT') this.kill('SIGCONT');
          break;
        }
        case 'signal': {
          const letter = event.type === 'control' ? event.letter : undefined;
          if (letter && this.customized()) {
            // control/<letter> exiting 0 replaces the signal.
            if (letter === 't') this.state = { ...this.state, gotTerm: false };
            this.afterCustom(async () => {
              if (await this.custom(letter)) return;
              if (letter === 't') this.termSent(a.signal);
              else this.kill(a.signal);
            });
          } else this.kill(a.signal);
          break;
        }
        case 'arm-throttle':
          this.armThrottle();
          break;
        case 'cancel-throttle':
          if (this.throttleTimer) clearTimeout(this.throttleTimer);
          this.throttleTimer = undefined;
          break;
        case 'exited':
          this.svc.slotExited(this);
          break;
      }
    }
    // A flood of ignored bytes must not turn into a flood of file writes.
    if (t.actions.length === 0 && sameState(before, t.state)) return;
    this.writeStatus();
    this.svc.env.onChange?.();
  }

  kill(sig: NodeJS.Signals): void {
    const pid = this.pid;
    if (!pid || this.runningFinish) return;
    try {
      process.kill(pid, sig);
    } catch {
      // Already gone: its exit event is on the way.
    }
  }

  /** `timeout-up`: a run that has not said ready (notification-fd) this long after its start is restarted. */
  private armTimeoutUp(child: ChildProcess): void {
    const ms = this.durationFile('timeout-up', 'ms');
    if (!ms) return;
    const timer = setTimeout(() => {
      if (this.child !== child || this.health.ready || this.state.want !== 'up') return;
      this.heal(`not ready within timeout-up (${ms} ms), restarting`);
    }, ms);
    child.once('exit', () => clearTimeout(timer));
  }

  /** s6's `timeout-kill`: KILL a run that has not stopped this long (ms, or a duration) after its stop signal. */
  private armTimeoutKill(): void {
    // Without the file, as runit: sv down waits for the service; molt init's grace time bounds a shutdown.
    const ms = this.durationFile('timeout-kill', 'ms');
    if (!ms) return;
    const pid = this.pid;
    if (!pid) return;
    const timer = setTimeout(() => {
      if (this.pid !== pid) return;
      log.warn('did not stop within timeout-kill, killing', { service: this.label, timeout_ms: ms });
      this.kill('SIGKILL');
    }, ms);
    this.child?.once('exit', () => clearTimeout(timer));
  }

  /** runsv's `control/<c>` scripts apply (never to a logger), or earlier ones are still running. */
  private customized(): boolean {
    if (this.isLog) return false;
    return this.customChain !== undefined || exists(path.join(this.cwd, 'control'));
  }

  /** The stop signal went out after a control script let it: runsv's "got TERM" from then on. */
  private termSent(sig: NodeJS.Signals): void {
    this.kill(sig);
    if (this.state.phase !== 'run' || !this.child) return;
    this.state = { ...this.state, gotTerm: true };
    this.writeStatus();
    this.svc.env.onChange?.();
  }

  /** Work that follows a control script, in the order the control bytes came. */
  private afterCustom(work: () => Promise<void>): void {
    const next = (this.customChain ?? Promise.resolve())
      .then(work)
      .catch((err: unknown) => log.warn('control script failed', { service: this.label, error: err }));
    this.customChain = next;
    void next.finally(() => {
      if (this.customChain === next) this.customChain = undefined;
    });
  }

  /** Run control/<letter> when it is executable; true when it exited 0 (its default action is then skipped). */
  private custom(letter: string): Promise<boolean> {
    const file = `./control/${letter}`;
    try {
      const st = fs.statSync(path.join(this.cwd, file));
      if (!st.isFile() || !(st.mode & 0o100)) return Promise.resolve(false);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn('cannot stat control script', { service: this.label, file, error: err });
      return Promise.resolve(false);
    }
    const child = this.spawnChild(file, []);
    if (!child) return Promise.resolve(false);
    return new Promise((resolve) => {
      // runsv waits for ever; a control script that hangs gets finish's deadline here.
      const timer = setTimeout(() => {
        log.warn('control script timed out, killing it', { service: this.label, file, timeout_ms: this.svc.env.finishTimeoutMs });
        signalQuietly(child.pid!, 'SIGKILL');
      }, this.svc.env.finishTimeoutMs);
      child.once('exit', (code) => {
        clearTimeout(timer);
        log.debug('control script exited', { service: this.label, file, code: code ?? undefined });
        resolve(code === 0);
      });
    });
  }

  private writeStatus(): void {
    // While control/u runs, run has not started: leave the status as it was, as runsv does.
    if (this.spawnPending) return;
    try {
      this.sup.write({
        stampMs: this.stampMs,
        pid: this.pid,
        paused: this.state.paused,
        want: this.state.want,
        gotTerm: this.state.gotTerm,
        state: this.state.phase,
      });
    } catch (err) {
      log.warn('cannot write status', { service: this.label, error: err });
    }
  }

  private armThrottle(): void {
    const ranMs = performance.now() - this.startedAt;
    const { throttle, waitMs } = nextRestart(this.throttle, ranMs, this.svc.env.maxBackoffMs);
    this.throttle = throttle;
    if (waitMs > 0) log.debug('restart throttled', { service: this.label, wait_ms: Math.round(waitMs) });
    this.throttleTimer = setTimeout(() => {
      this.throttleTimer = undefined;
      this.dispatch({ type: 'throttle-elapsed' });
    }, waitMs);
  }

  private spawnRun(): void {
    this.startedAt = performance.now();
    this.stampMs = Date.now();
    this.health = onRestart(this.health);
    const extra = this.isLog ? undefined : this.openNotificationPipe(() => this.markReady(child));
    this.notifySock = extra?.sock;
    this.notifyFd = extra?.fd;
    const child = this.spawnChild('./run', [], extra, this.isLog ? [] : this.svc.bound);
    if (extra) fs.closeSync(extra.writeFd); // the child holds it now; EOF when it closes it
    if (!child) {
      this.closeNotification();
      // As runsv: a run that cannot be started counts as an exit with code 111.
      setImmediate(() => this.onRunExit(111, null));
      return;
    }
    this.child = child;
    this.exitListener = (code, signal) => this.onRunExit(code, signal);
    child.once('exit', this.exitListener);
    this.writeHealth();
    if (!this.isLog) this.scheduleCheck();
    if (extra) this.armTimeoutUp(child);
  }

  /** The service's run reported ready on its notification fd. */
  private markReady(child: ChildProcess | undefined): void {
    if (!child || child !== this.child || this.health.ready) return;
    this.health = { ...this.health, ready: true };
    log.info('service ready', { service: this.label });
    this.writeHealth();
    this.svc.env.onChange?.();
  }

  /** s6 readiness: `notification-fd` names the fd on which the service writes a newline once ready. */
  private openNotificationPipe(onReady: () => void): NotificationPipe | undefined {
    let raw: string;
    try {
      raw = fs.readFileSync(path.join(this.cwd, 'notification-fd'), 'utf8');
    } catch {
      return undefined;
    }
    const fd = parseNotificationFd(raw);
    if (fd === undefined) {
      log.warn('bad notification-fd, ignored (want a number from 3 to 255)', { service: this.label, value: raw.trim() });
      return undefined;
    }
    if (fd < 3 + this.svc.bound.length) {
      log.warn('notification-fd collides with the listen sockets (fds 3..), ignored', { service: this.label, fd, sockets: this.svc.bound.length });
      return undefined;
    }
    const [r, w] = native().pipe();
    const sock = new net.Socket({ fd: r, readable: true, writable: false });
    sock.on('data', (chunk: Buffer) => {
      if (!chunk.includes(0x0a)) return;
      sock.destroy();
      onReady();
    });
    sock.on('error', () => sock.destroy());
    return { fd, writeFd: w, sock };
  }

  private closeNotification(): void {
    this.notifySock?.destroy();
    this.notifySock = undefined;
  }

  private checkPath(): string | undefined {
    const file = path.join(this.cwd, 'check');
    if (!exists(file)) return undefined;
    try {
      fs.accessSync(file, fs.constants.X_OK);
      this.warnedCheck = false;
      return file;
    } catch {
      if (!this.warnedCheck) log.warn('check is not executable; treating the service as having no check', { service: this.label });
      this.warnedCheck = true;
      return undefined;
    }
  }

  /** A duration file of the service directory (a bare number in `bareUnit`); undefined when absent or bad (said). */
  private durationFile(name: string, bareUnit: 'ms' | 's'): number | undefined {
    let raw: string;
    try {
      raw = fs.readFileSync(path.join(this.cwd, name), 'utf8');
    } catch {
      return undefined;
    }
    const v = timerDuration(raw, bareUnit);
    if ('ms' in v && v.ms > 0) return v.ms;
    // Said once per value: check-interval is read before every check.
    if (this.badFiles.get(name) !== raw) {
      this.badFiles.set(name, raw);
      log.warn(`bad ${name}, using the default`, { service: this.label, value: raw.trim(), why: 'problem' in v ? v.problem : 'must be more than 0' });
    }
    return undefined;
  }

  private checkInterval(): number {
    return this.durationFile('check-interval', 's') ?? this.svc.env.checkIntervalMs;
  }

  private scheduleCheck(): void {
    if (this.checkTimer) clearTimeout(this.checkTimer);
    this.checkTimer = setTimeout(() => this.runCheck(), this.checkInterval());
  }

  /** One check at a time, with a deadline; its output goes to the log with the service's prefix. */
  private runCheck(): void {
    this.checkTimer = undefined;
    const pid = this.pid;
    if (!pid || this.state.phase !== 'run') return;
    if (!this.checkPath()) {
      this.scheduleCheck();
      return;
    }
    if (this.checkChild) return; // never two at once
    let child: ChildProcess;
    try {
      child = this.svc.env.spawn('./check', [], { cwd: this.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, MOLT_SERVICE: this.svc.name } });
    } catch {
      this.scheduleCheck();
      return;
    }
    if (child.pid === undefined) {
      child.on('error', () => {});
      this.finishCheck(pid, false, 'check could not start');
      return;
    }
    this.checkChild = child;
    this.svc.attachCheckOutput(child);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }, this.svc.env.checkTimeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      this.checkChild = undefined;
      this.finishCheck(pid, code === 0 && !timedOut, timedOut ? `timed out after ${this.svc.env.checkTimeoutMs} ms` : `exit ${code ?? 'by signal'}`);
    });
  }

  private finishCheck(pid: number, passed: boolean, detail: string): void {
    this.lastCheckIso = new Date().toISOString();
    if (pid !== this.pid) return; // the service restarted meanwhile: this result is about the old run
    const env = this.svc.env;
    const { state, action } = afterCheck(this.health, passed, performance.now(), {
      failures: env.checkFailures,
      cooldownMs: env.healCooldownMs,
      noHeal: exists(path.join(this.cwd, 'no-heal')),
    });
    const wasHealthy = this.health.healthy;
    this.health = state;
    if (!passed) log.warn('check failed', { service: this.label, failures: state.failures, detail });
    else if (wasHealthy === false) log.info('check passes again', { service: this.label });
    if (action === 'heal') this.heal();
    else if (action === 'give-up') log.error('still unhealthy after a heal within the cooldown; not restarting again', { service: this.label, cooldown_ms: env.healCooldownMs });
    else if (action === 'unhealthy') log.warn('unhealthy (no-heal: not restarting)', { service: this.label });
    this.writeHealth();
    this.svc.env.onChange?.();
    this.scheduleCheck();
  }

  /** Restart an unhealthy service: its stop signal, the grace time, then KILL. */
  private heal(why = 'unhealthy, restarting'): void {
    const pid = this.pid;
    log.warn(why, { service: this.label, heals: this.health.heals });
    const sig = this.svc.downSignal();
    this.kill(sig);
    if (sig !== 'SIGCONT') this.kill('SIGCONT');
    setTimeout(() => {
      if (this.pid === pid && pid) {
        log.warn('did not stop in time, killing', { service: this.label });
        this.kill('SIGKILL');
      }
    }, this.svc.env.stopTimeoutMs).unref();
  }

  private writeHealth(): void {
    if (this.isLog) return;
    try {
      this.sup.writeFile(
        'health',
        formatHealth(this.health, { pid: this.pid, hasCheck: this.checkPath() !== undefined, notificationFd: this.notifyFd, lastCheck: this.lastCheckIso }),
      );
    } catch {
      // informational only
    }
  }

  private onRunExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.child = undefined;
    if (this.checkTimer) clearTimeout(this.checkTimer);
    this.checkTimer = undefined;
    this.closeNotification();
    this.health = { ...this.health, ready: false };
    this.writeHealth();
    this.lastExit = { code, signal };
    const wanted = this.state.want === 'up';
    log.info(signal ? 'service killed' : 'service exited', {
      service: this.label,
      code: code ?? undefined,
      signal: signal ?? undefined,
    });
    try {
      this.sup.writeExit(code, signal ? signalNumber(signal) : null);
    } catch {
      // informational only
    }
    const hasFinish = !this.isLog && exists(path.join(this.cwd, 'finish'));
    if (wanted && this.failedForGood()) this.state = { ...this.state, want: 'down' };
    this.svc.env.onRunExit?.(this.svc, this, code, signal, wanted);
    this.dispatch({ type: 'run-exited', code, signal: signal ? signalNumber(signal) : null, hasFinish });
  }

  /** `max-deaths COUNT [WINDOW]`: that many deaths within the window and it is not restarted until sv up. */
  private failedForGood(): boolean {
    let raw: string;
    try {
      raw = fs.readFileSync(path.join(this.cwd, 'max-deaths'), 'utf8');
    } catch {
      return false;
    }
    const limit = parseDeathLimit(raw, (w) => parseDuration(w, 's'));
    if (!limit) {
      log.warn('bad max-deaths, ignored (want COUNT [WINDOW])', { service: this.label, value: raw.trim() });
      return false;
    }
    const r = recordDeath(this.deaths, performance.now(), limit);
    this.deaths = r.deaths;
    if (!r.failed) return false;
    this.deaths = [];
    log.error('failed: not restarting until sv up', { service: this.label, deaths: limit.count, window_ms: limit.windowMs });
    this.health = { ...this.health, failed: true };
    this.writeHealth();
    return true;
  }

  private spawnFinish(code: number | null, signal: number | null): void {
    // runit's arguments: exit code (or -1 when killed) and the signal number (or 0).
    const args = [code === null ? '-1' : String(code), String(signal ?? 0)];
    const child = this.spawnChild('./finish', args);
    if (!child) {
      setImmediate(() => this.dispatch({ type: 'finish-exited' }));
      return;
    }
    this.child = child;
    this.runningFinish = true;
    this.finishTimer = setTimeout(() => {
      log.warn('finish timed out, killing it', { service: this.label, timeout_ms: this.svc.env.finishTimeoutMs });
      try {
        process.kill(child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }, this.svc.env.finishTimeoutMs);
    child.once('exit', (code) => {
      clearTimeout(this.finishTimer);
      this.runningFinish = false;
      this.child = undefined;
      if (code === PERMANENT_FAILURE) log.warn('finish exited 125: not restarting until sv up', { service: this.label });
      this.dispatch({ type: 'finish-exited', code });
    });
  }

  private spawnChild(file: string, args: string[], extraFd?: { fd: number; writeFd: number }, sockets: BoundSocket[] = []): ChildProcess | undefined {
    let child: ChildProcess;
    const stdio = [...(this.stdio() as unknown[])];
    // Socket activation: the sockets are fds 3.. (systemd's layout).
    sockets.forEach((b, i) => (stdio[3 + i] = b.fd));
    if (extraFd) {
      while (stdio.length < extraFd.fd) stdio.push('ignore');
      stdio[extraFd.fd] = extraFd.writeFd;
    }
    let cmd = file;
    let argv = args;
    let env: NodeJS.ProcessEnv = { ...process.env, MOLT_SERVICE: this.svc.name };
    if (sockets.length) {
      env = { ...env, ...listenEnv(sockets) };
      // LISTEN_PID must be the pid that execs the app: the shell's $$ survives its exec.
      cmd = '/bin/sh';
      argv = ['-c', 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"', file, ...args];
    }
    try {
      child = this.svc.env.spawn(cmd, argv, {
        cwd: this.cwd,
        stdio: stdio as StdioOptions,
        // Its own session, as s6 does: a terminal's ^C reaches molt, which stops services in order.
        detached: true,
        env,
      });
    } catch (err) {
      log.error('cannot start', { service: this.label, file, error: err });
      return undefined;
    }
    child.on('error', (err) => {
      if (child.pid === undefined) return; // reported below
      log.warn('child error', { service: this.label, error: err });
    });
    if (child.pid === undefined) {
      log.error('cannot start', { service: this.label, file, error: this.describeSpawnFailure(file) });
      return undefined;
    }
    this.svc.attachOutput(child);
    return child;
  }

  private describeSpawnFailure(file: string): string {
    const full = path.join(this.cwd, file);
    try {
      const st = fs.statSync(full);
      if (!st.isFile()) return 'not a regular file';
      if (!(st.mode & 0o111)) return 'not executable';
      return 'exec failed';
    } catch {
      return 'file does not exist';
    }
  }

  // ---- overlapping handover (handover.ts) -------------------------------

  private driveNext(e: NextEvent): void {
    const before = this.nextState;
    const t = stepNext(before, e);
    this.nextState = t.state;
    for (const a of t.actions) {
      if (a === 'spawn') this.spawnNext();
      else if (a === 'promote') this.promoteNext();
      else if (a === 'stop') this.stopNext();
      else log.warn('handover refused: the service is not running', { service: this.label });
    }
    if (t.actions.length || before.phase !== t.state.phase) {
      this.writeNext();
      this.svc.env.onChange?.();
    }
  }

  /** A second `run` beside the running one, on the same sockets and the same log pipe. */
  private spawnNext(): void {
    this.nextExit = null;
    let run: NextRun | undefined;
    const notify = this.openNotificationPipe(() => {
      if (run && this.nextRun === run) {
        run.ready = true;
        log.info('next instance ready', { service: this.label, pid: run.child.pid });
        this.writeNext();
        this.svc.env.onChange?.();
      } else if (run) {
        this.markReady(run.child); // promoted before it said so
      }
    });
    const child = this.spawnChild('./run', [], notify, this.svc.bound);
    if (notify) fs.closeSync(notify.writeFd);
    if (!child) {
      notify?.sock.destroy();
      this.nextExit = { code: 111, signal: 0 };
      setImmediate(() => this.driveNext({ type: 'exited' }));
      return;
    }
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      run!.notify?.destroy();
      if (this.nextRun !== run) return;
      this.nextRun = undefined;
      this.nextExit = { code: code ?? -1, signal: signal ? signalNumber(signal) : 0 };
      log.info(signal ? 'next instance killed' : 'next instance exited', { service: this.label, code: code ?? undefined, signal: signal ?? undefined });
      this.driveNext({ type: 'exited' });
    };
    run = { child, startedAt: performance.now(), since: new Date().toISOString(), ready: false, notify: notify?.sock, notifyFd: notify?.fd, onExit };
    this.nextRun = run;
    child.once('exit', onExit);
    log.info('next instance started', { service: this.label, pid: child.pid });
  }

  /** The next instance becomes the service's run; the one it replaces gets its stop signal. */
  private promoteNext(): void {
    const run = this.nextRun;
    if (!run) return;
    if (this.state.phase === 'finish') {
      // finish owns the slot now; promoting would race it. The updater falls back to a restart.
      log.warn('handover refused: finish is running', { service: this.label });
      this.nextState = { ...this.nextState, phase: 'run' };
      return;
    }
    const old = this.child;
    if (old && this.exitListener) old.removeListener('exit', this.exitListener);
    if (old) this.retire(old);
    this.closeNotification();
    if (this.throttleTimer) clearTimeout(this.throttleTimer);
    this.throttleTimer = undefined;
    run.child.removeListener('exit', run.onExit);
    this.nextRun = undefined;
    this.child = run.child;
    this.exitListener = (code, signal) => this.onRunExit(code, signal);
    run.child.once('exit', this.exitListener);
    this.notifySock = run.notify;
    this.notifyFd = run.notifyFd;
    this.startedAt = run.startedAt;
    this.stampMs = Date.now();
    this.health = { ...onRestart(this.health), ready: run.ready };
    this.state = { ...this.state, phase: 'run', throttled: false, gotTerm: false, paused: false };
    log.info('handed over', { service: this.label, pid: run.child.pid, replaced: old?.pid });
    this.writeStatus();
    this.writeHealth();
    this.scheduleCheck();
  }

  /** Stop a process that is no longer the service's run: its stop signal, then KILL after the grace time. */
  private retire(child: ChildProcess): void {
    const pid = child.pid;
    if (!pid) return;
    const sig = this.svc.downSignal();
    const kill = setTimeout(() => {
      log.warn('replaced instance did not stop in time, killing', { service: this.label, pid });
      signalQuietly(pid, 'SIGKILL');
    }, this.svc.env.stopTimeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(kill);
      log.info('replaced instance exited', { service: this.label, pid, code: code ?? undefined, signal: signal ?? undefined });
    });
    signalQuietly(pid, sig);
    if (sig !== 'SIGCONT') signalQuietly(pid, 'SIGCONT');
  }

  private stopNext(): void {
    const run = this.nextRun;
    if (!run?.child.pid) return;
    const pid = run.child.pid;
    const sig = this.svc.downSignal();
    const kill = setTimeout(() => signalQuietly(pid, 'SIGKILL'), this.svc.env.stopTimeoutMs);
    run.child.once('exit', () => clearTimeout(kill));
    signalQuietly(pid, sig);
    if (sig !== 'SIGCONT') signalQuietly(pid, 'SIGCONT');
  }

  private writeNext(): void {
    if (this.nextState.generation === 0) return; // never used: no file
    const run = this.nextRun;
    try {
      this.sup.writeFile(
        'next',
        formatNext({
          phase: this.nextState.phase,
          generation: this.nextState.generation,
          pid: run?.child.pid ?? 0,
          ready: run?.ready ?? false,
          since: run?.since ?? null,
          exit: this.nextExit,
        }),
      );
    } catch (err) {
      log.warn('cannot write supervise/next', { service: this.label, error: err });
    }
  }

  close(): void {
    if (this.throttleTimer) clearTimeout(this.throttleTimer);
    if (this.finishTimer) clearTimeout(this.finishTimer);
    if (this.checkTimer) clearTimeout(this.checkTimer);
    this.closeNotification();
    this.nextRun?.notify?.destroy();
    this.sup.close();
  }
}

function signalQuietly(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

export class Service {
  readonly main: Slot;
  readonly log: Slot | undefined;
  private pipe: [number, number] | undefined;
  /** The `listen` sockets, bound once and kept for the life of the service. */
  bound: BoundSocket[] = [];
  /** All slots let go (after `x`, removal or shutdown). */
  done = false;
  /** Services named in the `depends` file. */
  readonly dependsOn: string[] = [];
  /** Set by the supervisor: what this service still waits for before its first start. */
  gate: (() => string[]) | undefined;
  /** The first start waits for dependencies. */
  bootPending = false;
  private badDepends: string | undefined;
  private lastWait = '';
  onDone: (() => void) | undefined;
  private readonly prefix: Buffer;

  constructor(
    readonly name: string,
    readonly dir: string,
    readonly env: ServiceEnv,
  ) {
    this.prefix = Buffer.from(`[${name}] `);
    try {
      this.dependsOn = parseDepends(fs.readFileSync(path.join(dir, 'depends'), 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.badDepends = err instanceof Error ? err.message : String(err);
    }
    const logDir = path.join(dir, 'log');
    let hasLog = false;
    try {
      hasLog = fs.statSync(logDir).isDirectory();
    } catch {
      // no logger
    }
    const out = env.logPrefix ? 'pipe' : 'inherit';
    if (hasLog) {
      this.pipe = native().pipe();
      const [r, w] = this.pipe;
      this.main = new Slot(this, name, dir, false, () => ['ignore', w, out]);
      this.log = new Slot(this, `${name}/log`, logDir, true, () => [r, 'inherit', 'inherit']);
    } else {
      this.main = new Slot(this, name, dir, false, () => ['ignore', out, out]);
    }
  }

  get essential(): boolean {
    return exists(path.join(this.dir, 'essential'));
  }

  downSignal(): NodeJS.Signals {
    let raw: string;
    try {
      raw = fs.readFileSync(path.join(this.dir, 'down-signal'), 'utf8');
    } catch {
      return 'SIGTERM';
    }
    const sig = parseSignal(raw);
    if (!sig) log.warn('bad down-signal, using TERM', { service: this.name, value: raw.trim() });
    return sig ?? 'SIGTERM';
  }

  /** Open supervise/ for both slots and start what is wanted up (the logger first, as runsv does). */
  open(): void {
    try {
      this.log?.open();
      this.main.open();
    } catch (err) {
      this.log?.close();
      this.main.close();
      this.closePipe();
      throw err;
    }
    this.log?.dispatch({ type: 'boot' });
    let specs: ReturnType<typeof parseListen> = [];
    try {
      specs = parseListen(fs.readFileSync(path.join(this.dir, 'listen'), 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        log.error('bad listen file; service not started', { service: this.name, error: err });
        return;
      }
    }
    if (this.badDepends) {
      log.error('bad depends file; service not started', { service: this.name, error: this.badDepends });
      return;
    }
    if (!specs.length) {
      this.bootMain();
      return;
    }
    bindAll(specs).then(
      (bound) => {
        if (this.done) return closeAll(bound);
        this.bound = bound;
        log.info('listening', { service: this.name, sockets: bound.map((b) => b.spec.name).join(',') });
        this.bootMain();
      },
      (err: Error) => log.error('service not started', { service: this.name, error: err.message }),
    );
  }

  /** The first start of run, once every dependency is up and ready. */
  private bootMain(): void {
    if (this.done) return;
    const waiting = this.gate?.() ?? [];
    if (waiting.length) {
      this.bootPending = true;
      const key = waiting.join(',');
      if (key !== this.lastWait) log.info('waiting for dependencies', { service: this.name, on: key });
      this.lastWait = key;
      return;
    }
    if (this.bootPending) log.info('dependencies ready, starting', { service: this.name });
    this.bootPending = false;
    this.main.dispatch({ type: 'boot' });
  }

  /** The supervisor saw a change: a dependency may be ready now. */
  retryBoot(): void {
    if (!this.bootPending) return;
    if (this.main.state.phase !== 'down') this.bootPending = false; // started by hand (sv up)
    else this.bootMain();
  }

  attachOutput(child: ChildProcess): void {
    if (!this.env.logPrefix) return;
    for (const stream of [child.stdout, child.stderr]) if (stream) pipeLines(stream, this.prefix, this.env.out);
  }

  /** A check's output, bounded: a check that floods is cut off, not buffered. */
  attachCheckOutput(child: ChildProcess): void {
    const prefix = Buffer.from(`[${this.name} check] `);
    const shared = { budget: 16 * 1024 };
    for (const stream of [child.stdout, child.stderr]) if (stream) pipeCheckLines(stream, prefix, this.env.out, shared);
  }

  /** Stop everything in order: `run` gets its stop signal; the logger drains to EOF after it. */
  stop(): void {
    this.bootPending = false;
    this.main.dispatch({ type: 'control', letter: 'x' });
  }

  slotExited(slot: Slot): void {
    if (slot === this.main) {
      if (this.log) {
        // The producer is down: close our ends so the logger reads to EOF, then let it go.
        this.closePipe();
        this.log.dispatch({ type: 'drain' });
        return;
      }
    }
    if (slot === this.main || slot === this.log) this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.main.close();
    this.log?.close();
    this.closePipe();
    closeAll(this.bound);
    this.bound = [];
    this.onDone?.();
  }

  private closePipe(): void {
    if (!this.pipe) return;
    for (const fd of this.pipe) {
      try {
        fs.closeSync(fd);
      } catch {
        // closed
      }
    }
    this.pipe = undefined;
  }

  slots(): Slot[] {
    return this.log ? [this.main, this.log] : [this.main];
  }
}

export { exitStatus };
