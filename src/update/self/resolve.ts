// Which molt the updater runs, and which one PID 1 should run (issue 15): the
// one MOLT_HOME/molt/current points at when MOLT_SELF is on and that install is
// whole and not blocked; else the image's own molt, which is always there.
// chooseMolt is pure; inspectInstall and execIntoChosen are the edges.
import fs from 'node:fs';
import path from 'node:path';
import { logger } from '../../common/log.js';
import { native } from '../../common/native.js';

const log = logger('updater');

/** A molt release: molt's bundle, with koffi's runtime beside it. */
export const ENTRY = 'molt.mjs';
const KOFFI = path.join('node_modules', 'koffi', 'package.json');
/** Set in the environment of an updater that was exec'ed into the chosen molt: never a second exec. */
export const RESOLVED_ENV = 'MOLT_SELF_RESOLVED';

export interface InstallFacts {
  version: string;
  /** The entry script (realpath). */
  entry: string;
  /** molt.mjs is an executable file and koffi is beside it. */
  whole: boolean;
}

export type MoltChoice = { use: 'image'; why: string } | { use: 'installed'; version: string; entry: string };

/** `unsettled`: molt's journal holds a trial nobody finished (the container may have died of that molt): not before it is judged. */
export function chooseMolt(o: { enabled: boolean; current?: InstallFacts; blocked: ReadonlySet<string>; unsettled?: string }): MoltChoice {
  if (!o.enabled) return { use: 'image', why: 'MOLT_SELF is off' };
  const c = o.current;
  if (!c) return { use: 'image', why: 'no molt installed under MOLT_HOME/molt' };
  if (o.unsettled === c.version) return { use: 'image', why: `the trial of molt ${c.version} is unfinished` };
  if (!c.whole) return { use: 'image', why: `molt ${c.version} under MOLT_HOME/molt is incomplete (no executable ${ENTRY} or no koffi beside it)` };
  if (o.blocked.has(c.version)) return { use: 'image', why: `molt ${c.version} is blocked` };
  return { use: 'installed', version: c.version, entry: c.entry };
}

/**
 * PID 1 should re-execute into the chosen molt: it runs another one (after a container restart
 * it is the image's again). Never without an identity: a PID 1 that is not molt is left alone.
 */
export function pid1Behind(choice: MoltChoice, pid1Entry: string | undefined): boolean {
  return choice.use === 'installed' && pid1Entry !== undefined && pid1Entry !== choice.entry;
}

/** What MOLT_HOME/molt/current points at, undefined when nothing does. */
export function inspectInstall(selfHome: string): InstallFacts | undefined {
  let dir: string;
  try {
    dir = fs.realpathSync(path.join(selfHome, 'current'));
  } catch {
    return undefined;
  }
  const entry = path.join(dir, ENTRY);
  let whole = false;
  try {
    const st = fs.statSync(entry);
    whole = st.isFile() && (st.mode & 0o111) !== 0 && fs.statSync(path.join(dir, KOFFI)).isFile();
  } catch {
    whole = false;
  }
  return { version: path.basename(dir), entry, whole };
}

/**
 * From MOLT_HOME/molt/state.json: the blocked versions, and the version of a trial left unfinished
 * (a phase past staged). Nothing when it cannot be read: the install check still guards.
 */
export function readSelfJournal(selfHome: string): { blocked: Set<string>; unsettled?: string } {
  try {
    const j = JSON.parse(fs.readFileSync(path.join(selfHome, 'state.json'), 'utf8')) as { phase?: unknown; target?: { version?: unknown }; blocked?: { version?: unknown }[] };
    const blocked = new Set((j.blocked ?? []).map((b) => b.version).filter((v): v is string => typeof v === 'string'));
    const busy = typeof j.phase === 'string' && ['swapping', 'starting', 'trial', 'rolling-back'].includes(j.phase);
    return busy && typeof j.target?.version === 'string' ? { blocked, unsettled: j.target.version } : { blocked };
  } catch {
    return { blocked: new Set() };
  }
}

export function realEntry(file: string | undefined): string {
  if (!file) return '';
  try {
    return fs.realpathSync(file);
  } catch {
    return path.resolve(file);
  }
}

/**
 * At the updater's start: become the chosen molt (same pid: the supervisor keeps
 * watching it) when it is not the one running. Returns only when this molt stays.
 */
export function execIntoChosen(selfHome: string, enabled: boolean, env: NodeJS.ProcessEnv): void {
  if (!enabled || env[RESOLVED_ENV]) return;
  const choice = chooseMolt({ enabled, current: inspectInstall(selfHome), ...readSelfJournal(selfHome) });
  if (choice.use === 'image') {
    log.debug('updater runs this molt', { why: choice.why });
    return;
  }
  if (choice.entry === realEntry(process.argv[1])) return;
  log.info('updater restarts into molt', { version: choice.version, entry: choice.entry });
  const vars = Object.entries({ ...env, [RESOLVED_ENV]: choice.entry }).map(([k, v]) => `${k}=${v}`);
  const err = native().execve(process.execPath, [process.execPath, choice.entry, 'updater'], vars);
  log.error('cannot exec into the installed molt; running this one', { entry: choice.entry, error: err.message });
}
