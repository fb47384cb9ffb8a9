// The next-instance driver (MOLT_HANDOVER=overlap): performs the actions of
// the pure table in handover.ts (a second `run` beside the service's, stopped
// with grace, or handed to the slot on P) and publishes supervise/next.
import type { ChildProcess } from 'node:child_process';
import { logger } from '../common/log.js';
import { formatNext, initialNext, stepNext, type NextEvent, type NextState } from './handover.js';
import { handedToChild, openNotificationPipe } from './readiness.js';
import { signalQuietly, stopWithGrace } from './spawn.js';
import { signalNumber } from './signals.js';
import type { ServiceFiles } from './serviceFiles.js';
import type { SuperviseDir } from './superviseDir.js';
import type net from 'node:net';

const log = logger('supervise');

/** The second instance of `run` during an overlapping handover. */
export interface NextRun {
  child: ChildProcess;
  startedAt: number;
  since: string;
  ready: boolean;
  notify: net.Socket | undefined;
  notifyFd: number | undefined;
  onExit: (code: number | null, signal: NodeJS.Signals | null) => void;
}

export interface NextHost {
  readonly label: string;
  readonly files: ServiceFiles;
  readonly sup: SuperviseDir;
  sockets(): number;
  spawnRun(extraFd?: { fd: number; writeFd: number }): ChildProcess | undefined;
  stopTimeoutMs: number;
  /** Ask the slot's table to promote (it answers with adopt() or refused()). */
  promote(): void;
  /** A promoted instance said ready after its promotion. */
  readyAfterPromotion(child: ChildProcess): void;
  changed(): void;
}

export class NextInstance {
  private state: NextState = initialNext();
  private run: NextRun | undefined;
  private exit: { code: number; signal: number } | null = null;

  constructor(private readonly host: NextHost) {}

  drive(e: NextEvent): void {
    const before = this.state;
    const t = stepNext(before, e);
    this.state = t.state;
    for (const a of t.actions) {
      if (a === 'spawn') this.spawn();
      else if (a === 'promote') this.host.promote();
      else if (a === 'stop') this.stop();
      else log.warn('handover refused: the service is not running', { service: this.host.label });
    }
    if (t.actions.length || before.phase !== t.state.phase) {
      this.write();
      this.host.changed();
    }
  }

  /** The slot refused the promotion (finish runs): the next instance stays what it was. */
  refused(): void {
    this.state = stepNext(this.state, { type: 'refused' }).state;
  }

  /** A next instance runs (re-exec waits for it to be promoted or gone). */
  get running(): boolean {
    return this.run !== undefined;
  }

  /** Hand the running next instance over to the slot (after the table said promote). */
  take(): NextRun | undefined {
    const run = this.run;
    if (!run) return undefined;
    run.child.removeListener('exit', run.onExit);
    this.run = undefined;
    return run;
  }

  /** A second `run` beside the running one, on the same sockets and the same log pipe. */
  private spawn(): void {
    this.exit = null;
    let run: NextRun | undefined;
    const fd = this.host.files.notificationFd(this.host.sockets());
    const notify = fd === undefined ? undefined : openNotificationPipe(fd, () => {
      if (run && this.run === run) {
        run.ready = true;
        log.info('next instance ready', { service: this.host.label, pid: run.child.pid });
        this.write();
        this.host.changed();
      } else if (run) {
        this.host.readyAfterPromotion(run.child); // promoted before it said so
      }
    });
    const child = this.host.spawnRun(notify);
    handedToChild(notify);
    if (!child) {
      notify?.sock.destroy();
      this.exit = { code: 111, signal: 0 };
      setImmediate(() => this.drive({ type: 'exited' }));
      return;
    }
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      run!.notify?.destroy();
      if (this.run !== run) return;
      this.run = undefined;
      this.exit = { code: code ?? -1, signal: signal ? signalNumber(signal) : 0 };
      log.info(signal ? 'next instance killed' : 'next instance exited', { service: this.host.label, code: code ?? undefined, signal: signal ?? undefined });
      this.drive({ type: 'exited' });
    };
    run = { child, startedAt: performance.now(), since: new Date().toISOString(), ready: false, notify: notify?.sock, notifyFd: notify?.fd, onExit };
    this.run = run;
    child.once('exit', onExit);
    log.info('next instance started', { service: this.host.label, pid: child.pid });
  }

  private stop(): void {
    const child = this.run?.child;
    if (!child?.pid) return;
    const pid = child.pid;
    const cancel = stopWithGrace(pid, this.host.files.downSignal(), this.host.stopTimeoutMs, () => signalQuietly(pid, 'SIGKILL'));
    child.once('exit', cancel);
  }

  write(): void {
    if (this.state.generation === 0) return; // never used: no file
    const run = this.run;
    try {
      this.host.sup.writeFile(
        'next',
        formatNext({ phase: this.state.phase, generation: this.state.generation, pid: run?.child.pid ?? 0, ready: run?.ready ?? false, since: run?.since ?? null, exit: this.exit }),
      );
    } catch (err) {
      log.warn('cannot write supervise/next', { service: this.host.label, error: err });
    }
  }

  close(): void {
    this.run?.notify?.destroy();
  }
}
