// Re-exec (issue 15), the supervisor's side: capture what a service runs for
// the molt PID 1 execs into, and, in that new molt, take it over. An adopted
// run is not a ChildProcess of this Node: it is followed by pid, its exit comes
// from the reaper (waitid), its output from the fds the old molt held.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { logger } from '../common/log.js';
import { parseListen } from './listen.js';
import { signalName } from './signals.js';
import type { ServiceRecord, SlotRecord } from './reexecState.js';
import { serviceBlocker, type ServiceView, type SlotView } from './reexecGate.js';
import type { Service, Slot } from './service.js';

const log = logger('supervise');

/** Stands in for the ChildProcess of a run the previous molt spawned: pid, output, 'exit'. */
export class AdoptedChild extends EventEmitter {
  readonly stdout: net.Socket | null;
  readonly stderr: net.Socket | null;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;

  constructor(
    readonly pid: number,
    stdout?: number,
    stderr?: number,
  ) {
    super();
    this.stdout = stdout === undefined ? null : new net.Socket({ fd: stdout, readable: true, writable: false });
    this.stderr = stderr === undefined ? null : new net.Socket({ fd: stderr, readable: true, writable: false });
  }

  /** The reaper collected it. */
  exited(code: number | null, signal: number | null): void {
    this.exitCode = code;
    this.signalCode = signal === null ? null : signalName(signal) ?? 'SIGKILL';
    this.emit('exit', this.exitCode, this.signalCode);
  }
}

/** The fd behind a ChildProcess's stdout/stderr pipe (libuv's handle), to hand over. */
function streamFd(stream: unknown): number | undefined {
  const fd = (stream as { _handle?: { fd?: number } } | null)?._handle?.fd;
  return typeof fd === 'number' && fd > 2 ? fd : undefined;
}

/** The gate's view of a slot (reexecGate.ts decides over it). */
export function slotView(slot: Slot): SlotView {
  return {
    state: slot.state,
    pid: slot.pid,
    superviseOpen: !!slot.sup.fds(),
    finishRunning: slot.runningFinish,
    controlRunning: slot.spawnPending,
    awaitingReady: slot.notifyFd !== undefined && !slot.health.ready,
  };
}

export function serviceView(svc: Service): ServiceView {
  const v: ServiceView = {
    name: svc.name,
    lettingGo: svc.done,
    waitsForDependencies: svc.bootPending,
    handoverRunning: svc.main.next.running,
    main: slotView(svc.main),
    pipeOpen: !!svc.pipe,
  };
  if (svc.log) v.log = slotView(svc.log);
  return v;
}

/** The record of a slot the gate let through. */
function slotRecord(slot: Slot, nowMs: number): SlotRecord {
  const s = slot.state;
  const rec: SlotRecord = {
    state: { ...s },
    pid: slot.pid,
    stampMs: slot.stampMs,
    ranMs: s.phase === 'run' ? Math.max(0, nowMs - slot.startedAt) : 0,
    delayMs: slot.throttle.delayMs,
    deathAgesMs: slot.deaths.map((t) => Math.max(0, nowMs - t)),
    ready: slot.health.ready,
    sup: slot.sup.fds()!,
  };
  const out = streamFd(slot.child?.stdout);
  const err = streamFd(slot.child?.stderr);
  if (out !== undefined) rec.stdout = out;
  if (err !== undefined) rec.stderr = err;
  return rec;
}

/** Why this service cannot be handed over now (reexecGate.ts), or its record. */
export function captureService(svc: Service, nowMs = performance.now()): ServiceRecord | string {
  const why = serviceBlocker(serviceView(svc));
  if (why) return why;
  const rec: ServiceRecord = { name: svc.name, dir: svc.dir, listen: svc.bound.map((b) => b.fd), main: slotRecord(svc.main, nowMs) };
  if (svc.log && svc.pipe) {
    rec.log = slotRecord(svc.log, nowMs);
    rec.pipe = [...svc.pipe];
  }
  return rec;
}

function adoptSlot(svc: Service, slot: Slot, rec: SlotRecord): void {
  const now = performance.now();
  slot.state = { ...rec.state };
  slot.stampMs = rec.stampMs;
  slot.startedAt = now - rec.ranMs;
  slot.throttle = { delayMs: rec.delayMs };
  slot.deaths = rec.deathAgesMs.map((age) => now - age);
  slot.sup.adopt(rec.sup, (bytes) => {
    for (const b of bytes) slot.dispatch({ type: 'control', letter: String.fromCharCode(b) });
  });
  if (rec.pid) {
    const child = new AdoptedChild(rec.pid, rec.stdout, rec.stderr);
    const asChild = child as unknown as ChildProcess;
    svc.env.adoptPid?.(rec.pid, (code, signal) => child.exited(code, signal));
    svc.attachOutput(asChild);
    slot.follow(asChild);
    slot.checker.restarted(rec.ready);
    // Readiness was reported to the old molt (a run still waiting for it is not handed over).
    if (!slot.isLog) slot.notifyFd = slot.files.notificationFd(svc.bound.length);
    if (!slot.isLog) slot.checker.schedule();
  }
  if (rec.state.throttled) {
    // The wait left is not known exactly: the whole delay again errs on the side of calm.
    slot.throttleTimer = setTimeout(() => {
      slot.throttleTimer = undefined;
      slot.dispatch({ type: 'throttle-elapsed' });
    }, rec.delayMs);
  }
  slot.writeStatus();
  slot.writeHealth();
}

/** The new molt takes over a service the old one ran: no process is started or stopped. */
export function adoptService(svc: Service, rec: ServiceRecord): void {
  if (rec.listen.length) {
    let specs: ReturnType<typeof parseListen> = [];
    try {
      specs = parseListen(svc.files.readIfThere('listen') ?? '');
    } catch {
      // changed since: the sockets keep their old names below
    }
    svc.bound = rec.listen.map((fd, i) => ({ fd, spec: specs[i] ?? { kind: 'tcp', name: `fd${fd}`, host: '', port: 0 } as never }));
  }
  if (svc.log && rec.log) adoptSlot(svc, svc.log, rec.log);
  adoptSlot(svc, svc.main, rec.main);
  log.info('adopted', { service: svc.name, pid: rec.main.pid || undefined, log_pid: rec.log?.pid || undefined });
}
