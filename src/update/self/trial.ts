// The trial of a new molt as PID 1 (issue 15), pure: PID 1 proves it by writing
// its identity (common/pid1.ts) after the re-exec: the new version, from the
// new install, having taken over every service the old molt handed over.
import type { Pid1Identity } from '../../common/pid1.js';

/** A new molt gets at least this long: the check in a child, the exec and Node's start, on a busy host. */
export const SELF_TRIAL_MIN_MS = 15_000;

export function selfTrialMs(trialMs: number): number {
  return Math.max(trialMs, SELF_TRIAL_MIN_MS);
}

export type SelfVerdict = { verdict: 'continue' } | { verdict: 'commit'; why: string } | { verdict: 'fail'; reason: string };

export interface SelfTrialObservation {
  /** What MOLT_SERVICES/.molt-pid1 says now (undefined: absent or unreadable). */
  id: Pid1Identity | undefined;
  version: string;
  /** The new install's entry script (realpath). */
  entry: string;
  /** Wall-clock ms when the re-exec was asked for: only a start after it counts. */
  requestedMs: number;
  nowMs: number;
  deadlineMs: number;
}

export function judgeSelfTrial(o: SelfTrialObservation): SelfVerdict {
  const id = o.id;
  const started = id !== undefined && id.startedMs >= o.requestedMs;
  if (started && id.entry === o.entry && id.version === o.version) {
    if (!id.adopted) return { verdict: 'fail', reason: 'PID 1 started afresh instead of taking over the running services' };
    if (id.adopted.accounted < id.adopted.of) return { verdict: 'fail', reason: `PID 1 took over ${id.adopted.accounted} of ${id.adopted.of} services` };
    return { verdict: 'commit', why: `PID 1 runs molt ${o.version} and took over all ${id.adopted.of} services` };
  }
  if (o.nowMs < o.deadlineMs) return { verdict: 'continue' };
  if (started) return { verdict: 'fail', reason: `PID 1 started as molt ${id.version} from ${id.entry}, not the new molt` };
  return { verdict: 'fail', reason: 'PID 1 did not re-execute into it within its trial (it refused the new molt or could not exec it)' };
}
