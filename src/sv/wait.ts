// The decisions sv makes about one service from its decoded supervise/status:
// whether a control letter is already in effect (then sv does not write it),
// and whether the letters it sent have taken effect (the -v / LSB wait).
import type { SuperviseStatus } from '../supervise/status.js';

/** The want byte as runsv writes it: 'u', or 'd' for both down and exit. */
function wantLetter(s: SuperviseStatus): 'u' | 'd' {
  return s.want === 'up' ? 'u' : 'd';
}

/**
 * sv skips writing when the first letter equals the want byte: `u` when
 * already wanted up, `d` when already wanted down and TERM was sent. A
 * service taken up with `once` is wanted down but not TERMed, so `d` is sent.
 */
export function controlInEffect(letters: string, s: SuperviseStatus): boolean {
  const first = letters[0];
  if (first !== wantLetter(s)) return false;
  return first !== 'd' || s.gotTerm;
}

/**
 * Whether every letter has taken effect. `checkPasses` runs ./check (true
 * when it exits 0 or there is none); it is called only when a letter needs it,
 * once per such letter, as sv does. `startSec` is when sv started (unix
 * seconds): t and k are done only by a restart stamped at or after it.
 */
export function waitSatisfied(letters: string, s: SuperviseStatus, startSec: number, checkPasses: () => boolean): boolean {
  const stampSec = Math.floor(s.stampMs / 1000);
  const wantDown = wantLetter(s) === 'd';
  for (const c of letters) {
    switch (c) {
      case 'x':
        return false; // done only once runsv is gone
      case 'u':
        if (!s.pid || s.state !== 'run') return false;
        if (!checkPasses()) return false;
        break;
      case 'd':
        if (s.pid || s.state !== 'down') return false;
        break;
      case 'C':
        // `sv check` as in runit 2.1.2 (Debian): a running service must pass ./check.
        if (s.pid && !checkPasses()) return false;
        break;
      case 't':
      case 'k':
        if (!s.pid && wantDown) break;
        if (startSec > stampSec || !s.pid || s.gotTerm || !checkPasses()) return false;
        break;
      case 'o':
        if ((!s.pid && startSec > stampSec) || (s.pid && !wantDown)) return false;
        break;
      case 'p':
        if (s.pid && !s.paused) return false;
        break;
      case 'c':
        if (s.pid && s.paused) return false;
        break;
      // h a i q 1 2: signals leave no trace in the status; nothing to wait for.
    }
  }
  return true;
}

/**
 * Whether a service name is a path (used as given) rather than a name under
 * the service directory. Before the command is sent, names starting with '/'
 * or '.', empty, or ending in '/' are paths.
 */
export function isPathName(name: string): boolean {
  return name === '' || name[0] === '/' || name[0] === '.' || name.endsWith('/');
}

/**
 * While waiting, runit's sv forgets the trailing-'/' rule: `sv -v up foo/`
 * sends to ./foo but then waits on $SVDIR/foo/. Kept for identical output.
 */
export function isPathNameWhileWaiting(name: string): boolean {
  return name[0] === '/' || name[0] === '.';
}

/** sv's exit code: one per failed service, at most 99 (100 is usage). */
export function exitCode(failures: number): number {
  return failures > 99 ? 99 : failures;
}
