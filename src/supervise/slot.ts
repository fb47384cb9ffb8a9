// One process slot (a service's `run`, or its logger), as s6-supervise drives
// one: every state change goes through the pure table in machine.ts; timers,
// control scripts, health and the handover only produce events for it. This
// file performs the table's actions and writes supervise/ after every step.
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess, StdioOptions } from 'node:child_process';
import type net from 'node:net';
import { logger } from '../common/log.js';
import { nextRestart, recordDeath, type Throttle } from './backoff.js';
import { initialState, PERMANENT_FAILURE, sameState, step, type SlotAction, type SlotEvent, type SlotState } from './machine.js';
import { HANDOVER_LETTERS } from './handover.js';
import { signalNumber } from './signals.js';
import { SuperviseDir } from './superviseDir.js';
import { ServiceFiles } from './serviceFiles.js';
import { deadline, retire, signalQuietly, spawnIn, stopWithGrace } from './spawn.js';
import { accountOf, spawnAsAccount } from './account.js';
import { ControlScripts } from './control.js';
import { HealthChecker } from './checker.js';
import { armTimeoutUp, handedToChild, openNotificationPipe } from './readiness.js';
import { NextInstance } from './nextInstance.js';
import type { Service } from './service.js';
import type { BoundSocket } from './listen.js';

const log = logger('supervise');

export class Slot {
  state: SlotState;
  child: ChildProcess | undefined;
  readonly sup: SuperviseDir;
  readonly files: ServiceFiles;
  lastExit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly checker: HealthChecker;
  private readonly control: ControlScripts;
  readonly next: NextInstance;
  stampMs = Date.now();
  startedAt = 0;
  throttle: Throttle = { delayMs: 0 };
  throttleTimer: NodeJS.Timeout | undefined;
  private finishTimer: NodeJS.Timeout | undefined;
  /** Cancels the KILL deadline of the stop under way. */
  private cancelKill: (() => void) | undefined;
  runningFinish = false;
  private notifySock: net.Socket | undefined;
  notifyFd: number | undefined;
  private exitListener: ((code: number | null, signal: NodeJS.Signals | null) => void) | undefined;
  /** Monotonic times of recent deaths, for `max-deaths`. */
  deaths: number[] = [];
  /** control/u runs before run starts: status stays as it was meanwhile, as runsv's. */
  spawnPending = false;

  constructor(
    readonly svc: Service,
    readonly label: string,
    readonly cwd: string,
    readonly isLog: boolean,
    private readonly stdio: () => StdioOptions,
  ) {
    this.sup = new SuperviseDir(path.join(cwd, 'supervise'));
    this.files = new ServiceFiles(cwd, label);
    this.state = initialState(this.files.has('down'));
    const env = svc.env;
    this.checker = new HealthChecker({
      label,
      service: svc.name,
      files: this.files,
      sup: this.sup,
      // The check runs as the service's user too.
      spawn: spawnAsAccount(env.spawn, () => accountOf(this.files), env.molt),
      settings: env,
      pid: () => (this.state.phase === 'run' ? this.pid : 0),
      notifyFd: () => this.notifyFd,
      attachCheckOutput: (child) => svc.attachCheckOutput(child),
      heal: (why) => this.heal(why),
      changed: () => env.onChange?.(),
    });
    this.control = new ControlScripts(this.files, label, (file) => this.spawnProgram(file, [], undefined, [], false), env.finishTimeoutMs);
    this.next = new NextInstance({
      label,
      files: this.files,
      sup: this.sup,
      sockets: () => svc.bound.length,
      spawnRun: (extraFd) => this.spawnProgram('./run', [], extraFd, svc.bound),
      stopTimeoutMs: env.stopTimeoutMs,
      promote: () => this.dispatch({ type: 'promote' }),
      readyAfterPromotion: (child) => this.markReady(child),
      changed: () => env.onChange?.(),
    });
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

  get health() {
    return this.checker.health;
  }

  /** Up, and ready when it reports readiness (notification-fd): what dependants wait for. */
  get readyForDependants(): boolean {
    return this.state.phase === 'run' && this.pid !== 0 && !this.spawnPending && (this.notifyFd === undefined || this.health.ready);
  }

  dispatch(event: SlotEvent): void {
    if (event.type === 'control' && !this.isLog) {
      if (HANDOVER_LETTERS.has(event.letter)) {
        this.next.drive({ type: 'control', letter: event.letter as 'N' | 'P' | 'K', mainRunning: this.state.phase === 'run' && this.pid !== 0 });
        return;
      }
      if (event.letter === 'd' || event.letter === 'x') this.next.drive({ type: 'main-stopping' });
      // "got TERM" waits for a control script to let the signal through.
      if (this.control.applies()) event = { ...event, scripted: true };
    }
    const before = this.state;
    const t = step(before, event);
    this.state = t.state;
    if (t.state.phase === 'down' && before.phase !== 'down') this.stampMs = Date.now();
    // Held down on purpose (max-deaths, finish 125): supervise/health shows it as failed.
    if (t.state.held !== before.held) this.checker.update({ failed: t.state.held });
    for (const a of t.actions) this.perform(a, event);
    if (t.state.held !== before.held) this.writeHealth();
    // A flood of ignored bytes must not turn into a flood of file writes.
    if (t.actions.length === 0 && sameState(before, t.state)) return;
    this.writeStatus();
    this.svc.env.onChange?.();
  }

  private perform(a: SlotAction, event: SlotEvent): void {
    switch (a.type) {
      case 'spawn-run':
        if (this.isLog || !this.control.applies()) return this.spawnRun(); // never for a logger, as runsv
        // runsv runs control/u before every start of run, and waits for it.
        this.spawnPending = true;
        return this.control.then(async () => {
          await this.control.run('u');
          this.spawnPending = false;
          if (this.state.phase !== 'run' || this.child) return; // stopped meanwhile
          this.spawnRun();
          this.writeStatus();
          this.svc.env.onChange?.();
        });
      case 'spawn-finish':
        return this.spawnFinish(a.code, a.signal);
      case 'stop':
        return this.stop(a.kill, event.type === 'control' && event.scripted === true);
      case 'signal': {
        const letter = event.type === 'control' && event.scripted ? event.letter : undefined;
        if (!letter) return this.kill(a.signal);
        // control/<letter> exiting 0 replaces the signal.
        return this.control.signal(letter, () => this.kill(a.signal), () => this.dispatch({ type: 'term-sent' }));
      }
      case 'arm-throttle':
        return this.armThrottle();
      case 'cancel-throttle':
        if (this.throttleTimer) clearTimeout(this.throttleTimer);
        this.throttleTimer = undefined;
        return;
      case 'exited':
        return this.svc.slotExited(this);
      case 'kill-finish':
        log.warn('finish timed out, killing it', { service: this.label, timeout_ms: this.svc.env.finishTimeoutMs });
        if (this.runningFinish && this.child?.pid) signalQuietly(this.child.pid, 'SIGKILL');
        return;
      case 'promote':
        return this.adoptNext();
      case 'refuse-promote':
        log.warn('handover refused: finish is running', { service: this.label });
        this.next.refused();
        return;
    }
  }

  kill(sig: NodeJS.Signals): void {
    const pid = this.pid;
    if (!pid || this.runningFinish) return;
    signalQuietly(pid, sig);
  }

  /** The stop signal, CONT, and the KILL deadline (timeout-kill for sv down/exit, molt's grace time for a heal). */
  private stop(kind: 'timeout-kill' | 'grace', scripted: boolean): void {
    const pid = this.pid;
    if (!pid || this.runningFinish) return;
    const graceMs = kind === 'grace' ? this.svc.env.stopTimeoutMs : this.files.durationMs('timeout-kill', 'ms');
    const due = () => {
      if (this.pid !== pid) return;
      if (kind === 'grace') log.warn('did not stop in time, killing', { service: this.label });
      else log.warn('did not stop within timeout-kill, killing', { service: this.label, timeout_ms: graceMs });
      this.dispatch({ type: 'kill-due' });
    };
    this.cancelKill?.();
    const sig = this.svc.files.downSignal();
    if (!scripted) {
      this.cancelKill = stopWithGrace(pid, sig, graceMs, due);
      return;
    }
    this.cancelKill = deadline(graceMs, due);
    const term = () => {
      this.kill(sig);
      this.dispatch({ type: 'term-sent' });
    };
    this.control.stop(this.state.want, term, () => this.kill('SIGCONT'));
  }

  /** Restart a running service (unhealthy, or not ready within timeout-up): a table event. */
  private heal(why: string): void {
    log.warn(why, { service: this.label, heals: this.health.heals });
    this.dispatch({ type: 'heal' });
  }

  writeStatus(): void {
    // While control/u runs, run has not started: leave the status as it was, as runsv does.
    if (this.spawnPending) return;
    try {
      this.sup.write({ stampMs: this.stampMs, pid: this.pid, paused: this.state.paused, want: this.state.want, gotTerm: this.state.gotTerm, state: this.state.phase });
    } catch (err) {
      log.warn('cannot write status', { service: this.label, error: err });
    }
  }

  writeHealth(): void {
    if (!this.isLog) this.checker.write();
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

  /** Control scripts run as molt (as runsv runs them); everything else as the `user` file says. */
  private spawnProgram(file: string, args: string[], extraFd?: { fd: number; writeFd: number }, sockets: BoundSocket[] = [], asUser = true): ChildProcess | undefined {
    const svc = this.svc;
    const acct = asUser ? accountOf(this.files) : undefined;
    if (acct && 'problem' in acct) {
      log.error('cannot start', { service: this.label, file, error: acct.problem });
      return undefined;
    }
    const ctx = { spawn: svc.env.spawn, files: this.files, service: svc.name, label: this.label, stdio: this.stdio, attachOutput: (c: ChildProcess) => svc.attachOutput(c), account: acct?.account, molt: svc.env.molt };
    return spawnIn(ctx, file, args, extraFd, sockets);
  }

  private spawnRun(): void {
    this.startedAt = performance.now();
    this.stampMs = Date.now();
    this.checker.restarted();
    const acct = accountOf(this.files);
    if (acct && 'problem' in acct) {
      // One line, and the service stays down (failed) until sv up; the others run on.
      log.error('service not started', { service: this.label, error: acct.problem });
      setImmediate(() => this.onRunExit(111, null, true));
      return;
    }
    let child: ChildProcess | undefined;
    const fd = this.isLog ? undefined : this.files.notificationFd(this.svc.bound.length);
    const pipe = fd === undefined ? undefined : openNotificationPipe(fd, () => this.markReady(child));
    this.notifySock = pipe?.sock;
    this.notifyFd = pipe?.fd;
    child = this.spawnProgram('./run', [], pipe, this.isLog ? [] : this.svc.bound);
    handedToChild(pipe);
    if (!child) {
      this.closeNotification();
      // As runsv: a run that cannot be started counts as an exit with code 111.
      setImmediate(() => this.onRunExit(111, null));
      return;
    }
    this.follow(child);
    this.writeHealth();
    if (this.isLog) return;
    this.checker.schedule();
    if (pipe) this.armTimeoutUp(child);
  }

  follow(child: ChildProcess): void {
    this.child = child;
    this.exitListener = (code, signal) => this.onRunExit(code, signal);
    child.once('exit', this.exitListener);
  }

  /** `timeout-up`: a run that has not said ready (notification-fd) this long after its start is restarted. */
  private armTimeoutUp(child: ChildProcess): void {
    const ms = this.files.durationMs('timeout-up', 'ms');
    armTimeoutUp(child, ms, () => this.child === child && !this.health.ready, () => this.heal(`not ready within timeout-up (${ms} ms), restarting`));
  }

  /** The service's run reported ready on its notification fd. */
  private markReady(child: ChildProcess | undefined): void {
    if (!child || child !== this.child || !this.checker.markReady()) return;
    log.info('service ready', { service: this.label });
    this.writeHealth();
    this.svc.env.onChange?.();
  }

  private closeNotification(): void {
    this.notifySock?.destroy();
    this.notifySock = undefined;
  }

  /** `unusable`: run never started for want of its user: no finish, held down, nothing more said. */
  private onRunExit(code: number | null, signal: NodeJS.Signals | null, unusable = false): void {
    this.child = undefined;
    this.cancelKill?.();
    this.cancelKill = undefined;
    this.checker.stop();
    this.closeNotification();
    this.checker.update({ ready: false });
    this.writeHealth();
    this.lastExit = { code, signal };
    const wanted = this.state.want === 'up';
    if (!unusable) log.info(signal ? 'service killed' : 'service exited', { service: this.label, code: code ?? undefined, signal: signal ?? undefined });
    try {
      this.sup.writeExit(code, signal ? signalNumber(signal) : null);
    } catch {
      // informational only
    }
    const hasFinish = !this.isLog && !unusable && this.files.has('finish');
    const failed = wanted && (unusable || this.failedForGood());
    this.svc.env.onRunExit?.(this.svc, this, code, signal, wanted);
    this.dispatch({ type: 'run-exited', code, signal: signal ? signalNumber(signal) : null, hasFinish, failed });
  }

  /** `max-deaths COUNT [WINDOW]`: that many deaths within the window and it is not restarted until sv up. */
  private failedForGood(): boolean {
    const limit = this.files.deathLimit();
    if (!limit) return false;
    const r = recordDeath(this.deaths, performance.now(), limit);
    this.deaths = r.failed ? [] : r.deaths;
    if (r.failed) log.error('failed: not restarting until sv up', { service: this.label, deaths: limit.count, window_ms: limit.windowMs });
    return r.failed;
  }

  private spawnFinish(code: number | null, signal: number | null): void {
    // runit's arguments: exit code (or -1 when killed) and the signal number (or 0).
    const child = this.spawnProgram('./finish', [code === null ? '-1' : String(code), String(signal ?? 0)]);
    if (!child) {
      setImmediate(() => this.dispatch({ type: 'finish-exited' }));
      return;
    }
    this.child = child;
    this.runningFinish = true;
    this.finishTimer = setTimeout(() => this.dispatch({ type: 'finish-overdue' }), this.svc.env.finishTimeoutMs);
    child.once('exit', (exitCode) => {
      clearTimeout(this.finishTimer);
      this.runningFinish = false;
      this.child = undefined;
      if (exitCode === PERMANENT_FAILURE) log.warn('finish exited 125: not restarting until sv up', { service: this.label });
      this.dispatch({ type: 'finish-exited', code: exitCode });
    });
  }

  /** The table said promote: the next instance becomes run; the one it replaces is stopped with grace. */
  private adoptNext(): void {
    const run = this.next.take();
    if (!run) return;
    const old = this.child;
    if (old && this.exitListener) old.removeListener('exit', this.exitListener);
    this.cancelKill?.();
    this.cancelKill = undefined;
    if (old) {
      const pid = old.pid;
      old.once('exit', (code, signal) => log.info('replaced instance exited', { service: this.label, pid, code: code ?? undefined, signal: signal ?? undefined }));
      retire(old, this.svc.files.downSignal(), this.svc.env.stopTimeoutMs, () => log.warn('replaced instance did not stop in time, killing', { service: this.label, pid }));
    }
    this.closeNotification();
    if (this.throttleTimer) clearTimeout(this.throttleTimer);
    this.throttleTimer = undefined;
    this.follow(run.child);
    this.notifySock = run.notify;
    this.notifyFd = run.notifyFd;
    this.startedAt = run.startedAt;
    this.stampMs = Date.now();
    this.checker.restarted(run.ready);
    log.info('handed over', { service: this.label, pid: run.child.pid, replaced: old?.pid });
    this.writeHealth();
    this.checker.schedule();
  }

  close(): void {
    if (this.throttleTimer) clearTimeout(this.throttleTimer);
    if (this.finishTimer) clearTimeout(this.finishTimer);
    this.cancelKill?.();
    this.checker.stop();
    this.closeNotification();
    this.next.close();
    this.sup.close();
  }
}
