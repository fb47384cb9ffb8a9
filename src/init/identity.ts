// PID 1 says who it is (common/pid1.ts) once its services are taken over: the
// updater's trial of a new molt waits for this file. Never fatal: a read-only
// services directory only means no self-update can be judged.
import fs from 'node:fs';
import { writeFileAtomicSync } from '../common/atomic.js';
import { logger } from '../common/log.js';
import { encodePid1, pid1File, type Pid1Identity } from '../common/pid1.js';
import { moltVersion } from '../common/version.js';

const log = logger('init');

/** After the take-over (`handed`: the services of the state adopted, if any; `running`: the supervisor's). */
export function writeIdentity(servicesDir: string, handed: readonly { name: string }[] | undefined, running: ReadonlyMap<string, unknown>): void {
  const adopted = handed ? { of: handed.length, accounted: handed.filter((r) => running.has(r.name)).length } : undefined;
  let entry = process.argv[1] ?? '';
  try {
    entry = fs.realpathSync(entry);
  } catch {
    // as given
  }
  const id: Pid1Identity = { pid: process.pid, version: moltVersion(), entry, startedMs: Date.now(), ...(adopted ? { adopted } : {}) };
  try {
    writeFileAtomicSync(pid1File(servicesDir), encodePid1(id), { mode: 0o644 });
  } catch (err) {
    log.warn('cannot write PID 1 identity', { file: pid1File(servicesDir), error: err instanceof Error ? err.message : String(err) });
  }
}

/** At molt's exit: the file goes with the molt that wrote it (a service directory is the user's). */
export function removeIdentity(servicesDir: string): void {
  try {
    fs.rmSync(pid1File(servicesDir), { force: true });
  } catch {
    // read-only: nothing was written either
  }
}
