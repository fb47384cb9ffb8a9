// The state PID 1 hands to the molt it re-executes into (issue 15): what runs,
// under which pid, in which phase, and the fds that must outlive the exec (log
// pipes, `listen` sockets, supervise/ FIFOs and lock). Pure: encode, decode and
// validate; a state that does not validate is refused whole, never half-adopted.
import type { SlotState } from './machine.js';
import { parseSignal } from './signals.js';

export const REEXEC_STATE_VERSION = 1;

export interface SuperviseFds {
  lock: number;
  control: number;
  controlWrite: number;
  ok: number;
}

export interface SlotRecord {
  state: SlotState;
  /** 0 when nothing runs. */
  pid: number;
  /** Wall-clock time of the last phase change (what `sv status` counts uptime from). */
  stampMs: number;
  /** How long run has been running (monotonic), for the restart throttle. */
  ranMs: number;
  /** The restart throttle's current delay. */
  delayMs: number;
  /** Ages (ms) of recent deaths, for `max-deaths`. */
  deathAgesMs: number[];
  ready: boolean;
  /** molt's ends of run's stdout/stderr when molt prefixes its output. */
  stdout?: number;
  stderr?: number;
  sup: SuperviseFds;
}

export interface ServiceRecord {
  name: string;
  dir: string;
  /** The run -> log/ pipe (read end, write end), held by molt across restarts of either side. */
  pipe?: [number, number];
  /** `listen` sockets, in the listen file's order. */
  listen: number[];
  main: SlotRecord;
  log?: SlotRecord;
}

export interface ReexecState {
  version: number;
  /** The pid that wrote it: only that process (exec keeps the pid) may adopt. */
  pid: number;
  writtenMs: number;
  servicesDir: string;
  /** CMD's pid when it still runs. */
  cmdPid?: number;
  /** Signals PID 1 received after deciding to re-exec, in order: the new molt acts on them. */
  signals?: NodeJS.Signals[];
  services: ServiceRecord[];
}

export class ReexecStateError extends Error {}

export function encodeState(s: ReexecState): string {
  return JSON.stringify(s) + '\n';
}

const PHASES = ['down', 'run', 'finish'];
const WANTS = ['up', 'down', 'exit'];

function fail(where: string, what: string): never {
  throw new ReexecStateError(`${where}: ${what}`);
}
function obj(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(where, 'not an object');
  return v as Record<string, unknown>;
}
function int(v: unknown, where: string, min = 0): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) fail(where, `not a whole number >= ${min}`);
  return v;
}
function num(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(where, 'not a number >= 0');
  return v;
}
function bool(v: unknown, where: string): boolean {
  if (typeof v !== 'boolean') fail(where, 'not true/false');
  return v;
}
function str(v: unknown, where: string): string {
  if (typeof v !== 'string' || v === '') fail(where, 'not a non-empty string');
  return v;
}
/** An fd molt may hand over: never stdio. */
function fd(v: unknown, where: string): number {
  return int(v, where, 3);
}

function slotState(v: unknown, where: string): SlotState {
  const o = obj(v, where);
  const phase = o.phase;
  const want = o.want;
  if (typeof phase !== 'string' || !PHASES.includes(phase)) fail(`${where}.phase`, 'not down/run/finish');
  if (typeof want !== 'string' || !WANTS.includes(want)) fail(`${where}.want`, 'not up/down/exit');
  const flags = ['paused', 'gotTerm', 'throttled', 'exited', 'held'] as const;
  const out = { phase, want } as SlotState;
  for (const f of flags) out[f] = bool(o[f], `${where}.${f}`);
  return out;
}

function slotRecord(v: unknown, where: string): SlotRecord {
  const o = obj(v, where);
  const state = slotState(o.state, `${where}.state`);
  const pid = int(o.pid, `${where}.pid`);
  if (state.phase === 'run' && pid < 2) fail(`${where}.pid`, 'a running slot needs its pid');
  if (state.phase === 'finish') fail(`${where}.state`, 'finish is running: not handed over');
  const sup = obj(o.sup, `${where}.sup`);
  const deaths = o.deathAgesMs;
  if (!Array.isArray(deaths)) fail(`${where}.deathAgesMs`, 'not a list');
  const rec: SlotRecord = {
    state,
    pid,
    stampMs: num(o.stampMs, `${where}.stampMs`),
    ranMs: num(o.ranMs, `${where}.ranMs`),
    delayMs: num(o.delayMs, `${where}.delayMs`),
    deathAgesMs: deaths.map((d, i) => num(d, `${where}.deathAgesMs[${i}]`)),
    ready: bool(o.ready, `${where}.ready`),
    sup: { lock: fd(sup.lock, `${where}.sup.lock`), control: fd(sup.control, `${where}.sup.control`), controlWrite: fd(sup.controlWrite, `${where}.sup.controlWrite`), ok: fd(sup.ok, `${where}.sup.ok`) },
  };
  if (o.stdout !== undefined) rec.stdout = fd(o.stdout, `${where}.stdout`);
  if (o.stderr !== undefined) rec.stderr = fd(o.stderr, `${where}.stderr`);
  return rec;
}

function serviceRecord(v: unknown, where: string): ServiceRecord {
  const o = obj(v, where);
  const name = str(o.name, `${where}.name`);
  if (name.includes('/') || name.startsWith('.')) fail(`${where}.name`, 'not a service name');
  const listen = o.listen;
  if (!Array.isArray(listen)) fail(`${where}.listen`, 'not a list');
  const rec: ServiceRecord = { name, dir: str(o.dir, `${where}.dir`), listen: listen.map((f, i) => fd(f, `${where}.listen[${i}]`)), main: slotRecord(o.main, `${where}.main`) };
  if (o.pipe !== undefined) {
    const p = o.pipe;
    if (!Array.isArray(p) || p.length !== 2) fail(`${where}.pipe`, 'not a pair of fds');
    rec.pipe = [fd(p[0], `${where}.pipe[0]`), fd(p[1], `${where}.pipe[1]`)];
  }
  if (o.log !== undefined) rec.log = slotRecord(o.log, `${where}.log`);
  if (!!rec.log !== !!rec.pipe) fail(where, 'a logger and its pipe go together');
  return rec;
}

/** Parse and validate a state file's text; throws ReexecStateError with one line. */
export function decodeState(text: string): ReexecState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ReexecStateError('not JSON');
  }
  const o = obj(raw, 'state');
  if (o.version !== REEXEC_STATE_VERSION) fail('state.version', `not ${REEXEC_STATE_VERSION}`);
  const services = o.services;
  if (!Array.isArray(services)) fail('state.services', 'not a list');
  const s: ReexecState = {
    version: REEXEC_STATE_VERSION,
    pid: int(o.pid, 'state.pid', 1),
    writtenMs: num(o.writtenMs, 'state.writtenMs'),
    servicesDir: str(o.servicesDir, 'state.servicesDir'),
    services: services.map((v, i) => serviceRecord(v, `state.services[${i}]`)),
  };
  if (o.cmdPid !== undefined) s.cmdPid = int(o.cmdPid, 'state.cmdPid', 2);
  if (o.signals !== undefined) {
    if (!Array.isArray(o.signals) || o.signals.length > 1000) fail('state.signals', 'not a list (of at most 1000)');
    s.signals = o.signals.map((v, i) => {
      if (typeof v !== 'string' || !v.startsWith('SIG') || parseSignal(v) !== v) fail(`state.signals[${i}]`, 'not a signal name');
      return v as NodeJS.Signals;
    });
  }
  const names = new Set<string>();
  const fds = new Set<number>();
  const pids = new Set<number>();
  const claim = (set: Set<number>, n: number, what: string) => {
    if (set.has(n)) fail('state', `${what} ${n} appears twice`);
    set.add(n);
  };
  if (s.cmdPid) claim(pids, s.cmdPid, 'pid');
  for (const svc of s.services) {
    if (names.has(svc.name)) fail('state', `service ${svc.name} appears twice`);
    names.add(svc.name);
    for (const f of [...(svc.pipe ?? []), ...svc.listen]) claim(fds, f, 'fd');
    for (const slot of svc.log ? [svc.main, svc.log] : [svc.main]) {
      if (slot.pid) claim(pids, slot.pid, 'pid');
      for (const f of [slot.sup.lock, slot.sup.control, slot.sup.controlWrite, slot.sup.ok, slot.stdout, slot.stderr]) if (f !== undefined) claim(fds, f, 'fd');
    }
  }
  return s;
}

/** Every fd a state hands over (to clear close-on-exec on, or to close when the exec is given up). */
export function handedFds(s: ReexecState): number[] {
  const out: number[] = [];
  for (const svc of s.services) {
    out.push(...(svc.pipe ?? []), ...svc.listen);
    for (const slot of svc.log ? [svc.main, svc.log] : [svc.main]) {
      out.push(slot.sup.lock, slot.sup.control, slot.sup.controlWrite, slot.sup.ok);
      if (slot.stdout !== undefined) out.push(slot.stdout);
      if (slot.stderr !== undefined) out.push(slot.stderr);
    }
  }
  return out;
}
