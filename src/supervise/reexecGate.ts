// Re-exec (issue 15): may PID 1 hand its services over now? Decided over a
// plain table of what each slot is doing, so the rule is one pure function
// (unit-tested): a slot in a steady state is handed over, one between two
// steady states makes the request wait ("refused for now", ask again). A
// restart backoff is steady: its delay is in the state and re-armed by the
// new molt.
import type { SlotState } from './machine.js';

/** What the gate needs to know of one slot (run or log/). */
export interface SlotView {
  state: SlotState;
  /** 0 when nothing runs. */
  pid: number;
  /** supervise/ (lock, control, ok) is open: the fds to hand over exist. */
  superviseOpen: boolean;
  finishRunning: boolean;
  /** control/u (or another control script) runs before the spawn. */
  controlRunning: boolean;
  /** notification-fd is set and the run has not written to it yet. */
  awaitingReady: boolean;
}

export interface ServiceView {
  name: string;
  /** Its directory is gone: molt is letting it go. */
  lettingGo: boolean;
  waitsForDependencies: boolean;
  /** `sv N`: a next instance is being brought up beside the running one. */
  handoverRunning: boolean;
  main: SlotView;
  /** Present when the service has log/; `pipeOpen` says whether molt still holds its pipe. */
  log?: SlotView;
  pipeOpen: boolean;
}

/** Why this slot cannot be handed over now, or undefined. */
export function slotBlocker(v: SlotView): string | undefined {
  const s = v.state;
  if (!v.superviseOpen) return 'its supervise/ is not open';
  if (s.phase === 'finish' || v.finishRunning) return 'finish is running';
  if (v.controlRunning) return 'control/u is running';
  if (s.phase === 'run' && s.want !== 'up') return 'it is stopping';
  if (s.phase === 'run' && !v.pid) return 'it is starting';
  if (s.phase === 'run' && v.awaitingReady) return 'it has not reported ready yet';
  // Down but wanted up, and no backoff or hold keeping it down: a spawn is due.
  if (s.phase === 'down' && s.want === 'up' && !s.throttled && !s.held) return 'it is starting';
  return undefined;
}

export function serviceBlocker(v: ServiceView): string | undefined {
  if (v.lettingGo) return 'it is being let go';
  if (v.waitsForDependencies) return 'it waits for its dependencies';
  if (v.handoverRunning) return 'a handover is under way';
  const main = slotBlocker(v.main);
  if (main) return main;
  if (v.log) {
    const l = slotBlocker(v.log);
    if (l) return `log: ${l}`;
    if (!v.pipeOpen) return 'its log pipe is closed';
  }
  return undefined;
}

/** The whole decision: undefined when PID 1 may re-execute now, else the one line saying why not. */
export function reexecBlocker(services: ServiceView[], shuttingDown: boolean): string | undefined {
  if (shuttingDown) return 'shutting down';
  for (const v of services) {
    const why = serviceBlocker(v);
    if (why) return `service ${v.name}: ${why}`;
  }
  return undefined;
}
