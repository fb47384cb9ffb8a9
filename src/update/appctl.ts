// The updater drives the app service exactly as runit's `sv` does: one byte
// into supervise/control, and supervise/status read back. Nothing else is
// shared between the updater and PID 1.
import fs from 'node:fs';
import path from 'node:path';
import { decodeStatus, type SuperviseStatus } from '../supervise/status.js';
import { parseHealth, type HealthFile } from '../supervise/health.js';
import { isSupervised } from '../supervise/probe.js';
import { parseNext, type NextFile } from '../supervise/handover.js';
import { UpdateError } from './types.js';

export interface AppStatus extends SuperviseStatus {
  /** The last exit of run recorded by molt init (supervise/exit), when there was one. */
  lastExit?: { code: number; signal: number };
}

export class AppControl {
  readonly dir: string;

  constructor(servicesDir: string, readonly name: string) {
    this.dir = path.join(servicesDir, name);
  }

  private sup(file: string): string {
    return path.join(this.dir, 'supervise', file);
  }

  /** True when a supervisor holds the service (sv's liveness probe on supervise/ok). */
  supervised(): boolean {
    return isSupervised(this.dir);
  }

  status(): AppStatus | undefined {
    let st: AppStatus;
    try {
      st = decodeStatus(fs.readFileSync(this.sup('status')));
    } catch {
      return undefined;
    }
    try {
      const [code, signal] = fs.readFileSync(this.sup('exit'), 'utf8').trim().split(' ').map(Number);
      if (Number.isFinite(code) && Number.isFinite(signal)) st.lastExit = { code: code!, signal: signal! };
    } catch {
      // never exited yet
    }
    return st;
  }

  /** The supervisor's health state of the app (readiness, check results), when it writes one. */
  health(): HealthFile | undefined {
    try {
      return parseHealth(fs.readFileSync(this.sup('health'), 'utf8'));
    } catch {
      return undefined;
    }
  }

  send(letters: string): void {
    let fd: number;
    try {
      fd = fs.openSync(this.sup('control'), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENXIO' ? 'no supervisor is running it' : code === 'ENOENT' ? 'it is not a supervised service' : code;
      throw new UpdateError(`cannot control service ${this.name} at ${this.dir}: ${why}`, 'bad-input');
    }
    try {
      fs.writeSync(fd, letters);
    } finally {
      fs.closeSync(fd);
    }
  }

  private async waitUntil(pred: (s: AppStatus) => boolean, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const end = performance.now() + timeoutMs;
    for (;;) {
      const s = this.status();
      if (s && pred(s)) return true;
      if (performance.now() >= end || signal?.aborted) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** `sv force-stop`: down, wait up to timeoutMs, then kill. Resolves once it is down. */
  async stop(timeoutMs: number): Promise<void> {
    this.send('d');
    if (await this.waitUntil((s) => s.state === 'down', timeoutMs)) return;
    this.send('k');
    if (await this.waitUntil((s) => s.state === 'down', 3000)) return;
    throw new UpdateError(`service ${this.name} did not stop within ${timeoutMs} ms, even after KILL`, 'bad-input');
  }

  /** `sv up`: want up; resolves once it runs (or after timeoutMs, leaving the trial to judge). */
  async start(timeoutMs = 5000): Promise<boolean> {
    this.send('u');
    return this.waitUntil((s) => s.state === 'run' && s.pid !== 0, timeoutMs);
  }

  /** The overlapping handover's second instance, as the supervisor publishes it (supervise/next). */
  next(): NextFile | undefined {
    try {
      return parseNext(fs.readFileSync(this.sup('next'), 'utf8'));
    } catch {
      return undefined;
    }
  }

  /** The service has `listen` sockets that molt holds: two instances can serve on them at once. */
  hasListen(): boolean {
    try {
      return fs.readFileSync(path.join(this.dir, 'listen'), 'utf8').replace(/#.*/g, '').trim() !== '';
    } catch {
      return false;
    }
  }

  /** Start a next instance beside the running one; resolves with it once it runs, else undefined. */
  async startNext(timeoutMs = 5000): Promise<NextFile | undefined> {
    const before = this.next()?.generation ?? 0;
    this.send('N');
    const end = performance.now() + timeoutMs;
    for (;;) {
      const n = this.next();
      if (n && n.generation > before) return n.phase === 'run' || n.phase === 'down' ? n : undefined;
      if (performance.now() >= end) return undefined;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Make the next instance (pid) the service's run; true once the status says so. */
  async promoteNext(pid: number, timeoutMs = 5000): Promise<boolean> {
    this.send('P');
    return this.waitUntil((s) => s.state === 'run' && s.pid === pid, timeoutMs);
  }

  /** Stop the next instance, if one runs; resolves once it is gone (KILL after timeoutMs is the supervisor's). */
  async stopNext(timeoutMs: number): Promise<void> {
    const n = this.next();
    if (!n || (n.phase !== 'run' && n.phase !== 'stopping')) return;
    this.send('K');
    const end = performance.now() + timeoutMs + 3000;
    while (performance.now() < end) {
      const m = this.next();
      if (!m || (m.phase !== 'run' && m.phase !== 'stopping')) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new UpdateError(`the next instance of ${this.name} did not stop`, 'bad-input');
  }

  hasCheck(): boolean {
    try {
      fs.accessSync(path.join(this.dir, 'check'), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }
}
