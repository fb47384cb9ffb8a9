// Who PID 1 is (issue 15): the molt it runs and whether it took over every
// service after a re-exec. PID 1 writes MOLT_SERVICES/.molt-pid1 at each start
// (a re-exec is a start); the updater reads it to judge a new molt's trial and
// to show which molt runs. Pure: format, parse and the path.
import path from 'node:path';

export const PID1_FILE = '.molt-pid1';

export interface Pid1Identity {
  pid: number;
  /** molt's version (`molt version`). */
  version: string;
  /** The entry script this molt runs (realpath): which install of that version. */
  entry: string;
  /** Wall-clock ms of this start (a re-exec starts anew). */
  startedMs: number;
  /** Present after a re-exec: services in the state handed over, and how many of them this molt took over. */
  adopted?: { of: number; accounted: number };
}

export function pid1File(servicesDir: string): string {
  return path.join(servicesDir, PID1_FILE);
}

export function encodePid1(p: Pid1Identity): string {
  return JSON.stringify(p) + '\n';
}

/** undefined for anything that is not a whole identity: a half-written or foreign file proves nothing. */
export function parsePid1(text: string): Pid1Identity | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  const whole = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (!whole(r.pid) || typeof r.version !== 'string' || typeof r.entry !== 'string' || !whole(r.startedMs)) return undefined;
  const out: Pid1Identity = { pid: r.pid as number, version: r.version, entry: r.entry, startedMs: r.startedMs as number };
  if (r.adopted !== undefined) {
    const a = r.adopted as Record<string, unknown> | null;
    if (!a || !whole(a.of) || !whole(a.accounted)) return undefined;
    out.adopted = { of: a.of as number, accounted: a.accounted as number };
  }
  return out;
}
