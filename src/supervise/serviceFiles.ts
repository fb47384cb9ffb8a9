// One reader of a service directory's small files (down-signal, timeout-kill,
// check-interval, max-deaths, notification-fd, check, finish, control/...).
// A bad value is reported once per value and its default used.
import fs from 'node:fs';
import path from 'node:path';
import { logger } from '../common/log.js';
import { parseDuration, timerDuration } from '../common/duration.js';
import { parseDeathLimit, type DeathLimit } from './backoff.js';
import { parseNotificationFd } from './health.js';
import { parseSignal } from './signals.js';

const log = logger('supervise');

export function exists(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

export class ServiceFiles {
  /** Files already reported as bad, with the value reported: check-interval is read before every check. */
  private readonly reported = new Map<string, string>();

  constructor(
    readonly dir: string,
    private readonly label: string,
  ) {}

  has(name: string): boolean {
    return exists(path.join(this.dir, name));
  }

  read(name: string): string | undefined {
    try {
      return fs.readFileSync(path.join(this.dir, name), 'utf8');
    } catch {
      return undefined;
    }
  }

  /** The file's text, undefined when absent; any other failure (a directory in the way, no permission) throws. */
  readIfThere(name: string): string | undefined {
    try {
      return fs.readFileSync(path.join(this.dir, name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  private reportOnce(name: string, raw: string, msg: string, fields: Record<string, unknown> = {}): void {
    if (this.reported.get(name) === raw) return;
    this.reported.set(name, raw);
    log.warn(msg, { service: this.label, ...(name === 'check' ? {} : { value: raw.trim() }), ...fields });
  }

  /** A duration file (a bare number in `bareUnit`), bounded by the longest timer; undefined when absent or bad (said once). */
  durationMs(name: string, bareUnit: 'ms' | 's'): number | undefined {
    const raw = this.read(name);
    if (raw === undefined) return undefined;
    const v = timerDuration(raw, bareUnit);
    if ('ms' in v && v.ms > 0) return v.ms;
    this.reportOnce(name, raw, `bad ${name}, using the default`, { why: 'problem' in v ? v.problem : 'must be more than 0' });
    return undefined;
  }

  downSignal(): NodeJS.Signals {
    const raw = this.read('down-signal');
    if (raw === undefined) return 'SIGTERM';
    const sig = parseSignal(raw);
    if (!sig) this.reportOnce('down-signal', raw, 'bad down-signal, using TERM');
    return sig ?? 'SIGTERM';
  }

  /** `max-deaths COUNT [WINDOW]`; undefined when absent or bad (said once). */
  deathLimit(): DeathLimit | undefined {
    const raw = this.read('max-deaths');
    if (raw === undefined) return undefined;
    // A window, not a timer: not bounded by the longest timer.
    const limit = parseDeathLimit(raw, (w) => parseDuration(w, 's'));
    if (!limit) this.reportOnce('max-deaths', raw, 'bad max-deaths, ignored (want COUNT [WINDOW])');
    return limit;
  }

  /** s6's `notification-fd`, when usable beside `sockets` listen fds (3..). */
  notificationFd(sockets: number): number | undefined {
    const raw = this.read('notification-fd');
    if (raw === undefined) return undefined;
    const fd = parseNotificationFd(raw);
    if (fd === undefined) {
      this.reportOnce('notification-fd', raw, 'bad notification-fd, ignored (want a number from 3 to 255)');
      return undefined;
    }
    if (fd < 3 + sockets) {
      this.reportOnce('notification-fd', raw, 'notification-fd collides with the listen sockets (fds 3..), ignored', { fd, sockets });
      return undefined;
    }
    return fd;
  }

  /** The executable `check`, if any (a check that is not executable is said once and ignored). */
  checkPath(): string | undefined {
    const file = path.join(this.dir, 'check');
    if (!exists(file)) return undefined;
    try {
      fs.accessSync(file, fs.constants.X_OK);
      this.reported.delete('check');
      return file;
    } catch {
      this.reportOnce('check', 'not executable', 'check is not executable; treating the service as having no check');
      return undefined;
    }
  }

  /** An executable `control/<letter>` (runsv's control scripts). */
  controlScript(letter: string): string | undefined {
    const file = `./control/${letter}`;
    try {
      const st = fs.statSync(path.join(this.dir, file));
      return st.isFile() && st.mode & 0o100 ? file : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn('cannot stat control script', { service: this.label, file, error: err });
      return undefined;
    }
  }

  /** Why `file` could not be started, in words. */
  describeSpawnFailure(file: string): string {
    try {
      const st = fs.statSync(path.join(this.dir, file));
      if (!st.isFile()) return 'not a regular file';
      if (!(st.mode & 0o111)) return 'not executable';
      return 'exec failed';
    } catch {
      return 'file does not exist';
    }
  }
}
