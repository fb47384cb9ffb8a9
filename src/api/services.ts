// The supervised services as the status page and /metrics show them, read from
// each service's runit-compatible supervise/ directory (the files are the interface).
import fs from 'node:fs';
import path from 'node:path';
import { parseHealth } from '../supervise/health.js';
import { decodeStatus } from '../supervise/status.js';
import { isSupervised as supervised } from '../supervise/probe.js';
import { parseNext } from '../supervise/handover.js';
import type { ServiceInfo } from './types.js';


function readExit(dir: string): ServiceInfo['lastExit'] {
  try {
    const m = /^(-?\d+) (\d+)\s*$/.exec(fs.readFileSync(path.join(dir, 'supervise', 'exit'), 'utf8'));
    if (m) return { code: Number(m[1]), signal: Number(m[2]) };
  } catch {
    // No exit recorded yet.
  }
  return undefined;
}

/** One of molt's own supervise/ files, parsed; undefined when absent or unreadable. */
function readSupervise<T>(dir: string, name: string, parse: (text: string) => T | undefined): T | undefined {
  try {
    return parse(fs.readFileSync(path.join(dir, 'supervise', name), 'utf8'));
  } catch {
    return undefined;
  }
}

/** supervise/health when it speaks of this run (same pid) and there is something to say. */
function readHealth(dir: string, pid: number): ServiceInfo['health'] {
  const f = readSupervise(dir, 'health', parseHealth);
  if (!f || !pid || f.pid !== pid || (!f.hasCheck && f.notificationFd === null)) return undefined;
  const h: NonNullable<ServiceInfo['health']> = { ready: f.ready, healthy: f.healthy, failures: f.failures, heals: f.heals, gaveUp: f.gaveUp };
  if (f.lastCheck) h.lastCheck = f.lastCheck;
  return h;
}

/** The next instance of an overlapping handover, while one runs. */
function readNext(dir: string): ServiceInfo['next'] {
  const n = readSupervise(dir, 'next', parseNext);
  if (!n || !n.pid || (n.phase !== 'run' && n.phase !== 'stopping')) return undefined;
  const out: NonNullable<ServiceInfo['next']> = { pid: n.pid, ready: n.ready, stopping: n.phase === 'stopping' };
  if (n.since) out.since = n.since;
  return out;
}

/** One service directory; `name` as shown (a log service is `<name>/log`). */
export function readService(dir: string, name: string, nowMs = Date.now()): ServiceInfo {
  const normallyUp = !fs.existsSync(path.join(dir, 'down'));
  let raw: Buffer;
  try {
    raw = fs.readFileSync(path.join(dir, 'supervise', 'status'));
  } catch {
    return { name, state: 'unknown', normallyUp, supervised: false };
  }
  let st;
  try {
    st = decodeStatus(raw);
  } catch {
    return { name, state: 'unknown', normallyUp, supervised: supervised(dir) };
  }
  const info: ServiceInfo = {
    name,
    state: st.state === 'run' ? 'up' : st.state,
    since: new Date(st.stampMs).toISOString(),
    seconds: Math.max(0, Math.floor((nowMs - st.stampMs) / 1000)),
    want: st.want === 'up' ? 'up' : 'down',
    paused: st.paused,
    normallyUp,
    supervised: supervised(dir),
  };
  if (st.pid) info.pid = st.pid;
  const lastExit = readExit(dir);
  if (lastExit) info.lastExit = lastExit;
  const health = readHealth(dir, st.pid);
  if (health) info.health = health;
  if (st.state === 'down' && readSupervise(dir, 'health', parseHealth)?.failed) info.failed = true;
  const next = readNext(dir);
  if (next) info.next = next;
  return info;
}

/** Every service under `servicesDir` (dot-directories skipped, as runsvdir does), with its log
 *  service when it has one, sorted by name. A missing directory is an empty list. */
export function readServices(servicesDir: string, nowMs = Date.now()): ServiceInfo[] {
  let names: string[];
  try {
    names = fs.readdirSync(servicesDir).filter((n) => !n.startsWith('.')).sort();
  } catch {
    return [];
  }
  const out: ServiceInfo[] = [];
  for (const name of names) {
    const dir = path.join(servicesDir, name);
    try {
      if (!fs.statSync(dir).isDirectory()) continue;
    } catch {
      continue;
    }
    out.push(readService(dir, name, nowMs));
    const logDir = path.join(dir, 'log');
    try {
      if (fs.statSync(logDir).isDirectory()) out.push(readService(logDir, `${name}/log`, nowMs));
    } catch {
      // No log service.
    }
  }
  return out;
}
