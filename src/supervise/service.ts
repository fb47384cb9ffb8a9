// One service directory, as runsv runs it: the `run` slot, and a `log/` slot
// fed through a pipe that molt holds open across restarts of either side.
// Each slot is driven by its table (slot.ts, machine.ts); this file holds what
// the two share: the pipe, the `listen` sockets, dependencies and output.
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { logger } from '../common/log.js';
import { native } from '../common/native.js';
import { signalNumber } from './signals.js';
import { pipeCheckLines, pipeLines, type Outlet } from './output.js';
import { bindAll, closeAll, parseListen, type BoundSocket } from './listen.js';
import { parseDepends } from './depends.js';
import { ServiceFiles } from './serviceFiles.js';
import { Slot } from './slot.js';

export { Slot };

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
  /** Re-exec (issue 15): the reaper reports the exit of a child this molt did not spawn. */
  adoptPid?(pid: number, onExit: (code: number | null, signal: number | null) => void): void;
  /** The command that runs molt, for `molt chpst` (a `user` with supplementary groups); default this process's. */
  molt?: string[];
}

export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  return signal ? 128 + signalNumber(signal) : code ?? 0;
}

export class Service {
  readonly main: Slot;
  readonly log: Slot | undefined;
  pipe: [number, number] | undefined;
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
  readonly files: ServiceFiles;

  constructor(
    readonly name: string,
    readonly dir: string,
    readonly env: ServiceEnv,
    /** The log pipe handed over by a re-exec (adopt.ts). */
    inherited?: [number, number],
  ) {
    this.prefix = Buffer.from(`[${name}] `);
    this.files = new ServiceFiles(dir, name);
    try {
      this.dependsOn = parseDepends(this.files.readIfThere('depends') ?? '');
    } catch (err) {
      this.badDepends = err instanceof Error ? err.message : String(err);
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
      this.pipe = inherited ?? native().pipe();
      const [r, w] = this.pipe;
      this.main = new Slot(this, name, dir, false, () => ['ignore', w, out]);
      this.log = new Slot(this, `${name}/log`, logDir, true, () => [r, 'inherit', 'inherit']);
    } else {
      this.main = new Slot(this, name, dir, false, () => ['ignore', out, out]);
    }
  }

  get essential(): boolean {
    return this.files.has('essential');
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
      specs = parseListen(this.files.readIfThere('listen') ?? '');
    } catch (err) {
      log.error('bad listen file; service not started', { service: this.name, error: err });
      return;
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
