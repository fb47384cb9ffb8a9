// molt init: PID 1. Reads top to bottom like tini's main: parse arguments and
// environment, take the signals, become a subreaper when not PID 1, start the
// supervisor and CMD, then react to events until an orderly shutdown ends it.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { logger } from '../common/log.js';
import { Supervisor } from '../supervise/supervisor.js';
import { exitStatus, type Service, type Slot } from '../supervise/service.js';
import { childrenOfSelf, descendantsOfSelf } from '../common/proc.js';
import { native } from '../common/native.js';
import { Reaper } from './reaper.js';
import { WritableOutlet } from '../supervise/output.js';
import { holdKeepsUp, readHoldState, STALE_APPLY_EXITS, staleHoldKeepsUp } from '../supervise/hold.js';
import { ConfigError, parseInitArgs, readInitConfig, type InitArgs, type InitConfig } from './config.js';
import { signalNumber } from '../supervise/signals.js';
import { AdoptedChild } from '../supervise/adopt.js';
import { checkAdopt, loadAdoption, Reexec } from './reexec.js';

/** Read as early as possible, for -p: a parent that is gone by then has been replaced. */
const PARENT_AT_START = process.ppid;

const log = logger('init');
/** `molt init`'s own arguments, for a re-exec to pass on (issue 15). */
let initArgv: string[] = [];

const SHUTDOWN_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT'] as const;
// What tini forwards, less what Node needs for itself: SIGPROF (V8's profiler), SIGPIPE
// (sent to a writer, meaningless to relay), the synchronous ones and TTIN/TTOU.
const RELAYED_SIGNALS = [
  'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGALRM', 'SIGCONT', 'SIGTSTP', 'SIGURG', 'SIGVTALRM', 'SIGXCPU', 'SIGXFSZ', 'SIGIO', 'SIGPWR',
] as const;

interface Cmd {
  child: ChildProcess;
  exit?: number;
}

export async function main(argv: string[]): Promise<number> {
  let config: InitConfig;
  let args: InitArgs;
  if (argv[0] === '--check-adopt') return checkAdopt(argv[1]);
  initArgv = argv;
  try {
    args = parseInitArgs(argv);
    config = readInitConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`molt init: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  return new Init(config, args.cmd, args.successCodes, args.parentDeathSignal).run();
}

class Init {
  /** Adopted orphans already sent TERM during the shutdown. */
  private readonly termed = new Set<number>();
  private readonly reaper = new Reaper((pid, code, signal) =>
    log.debug('reaped orphan', { pid, code: code ?? undefined, signal: signal ?? undefined }),
  );
  private readonly supervisor: Supervisor;
  private cmd: Cmd | undefined;
  private shuttingDown = false;
  private exitCode = 0;
  private deadline: NodeJS.Timeout | undefined;
  private finish: ((code: number) => void) | undefined;
  /** Per essential service: exits kept up by a stale `apply` hold since the updater last held it. */
  private readonly staleHoldExits = new Map<string, number>();

  constructor(
    private readonly config: InitConfig,
    private readonly argv: string[],
    private readonly successCodes: number[] = [],
    private readonly parentDeathSignal?: NodeJS.Signals,
  ) {
    this.supervisor = new Supervisor(config.servicesDir, {
      spawn: (cmd, args, opts) => this.spawnTracked(cmd, args, opts),
      maxBackoffMs: config.maxBackoffMs,
      finishTimeoutMs: config.finishTimeoutMs,
      logPrefix: config.logPrefix,
      checkIntervalMs: config.checkIntervalMs,
      checkTimeoutMs: config.checkTimeoutMs,
      checkFailures: config.checkFailures,
      healCooldownMs: config.healCooldownMs,
      stopTimeoutMs: config.stopTimeoutMs,
      out: new WritableOutlet(process.stdout),
      onRunExit: (svc, slot, code, signal, wanted) => this.onRunExit(svc, slot, code, signal, wanted),
      onChange: () => this.maybeDone(),
      adoptPid: (pid, onExit) => this.reaper.adopt(pid, onExit),
    });
  }

  run(): Promise<number> {
    // PID 1 must never die of a bug: report it and keep supervising.
    process.on('uncaughtException', (err) => log.error('internal error', { error: err.stack ?? err }));
    process.on('unhandledRejection', (err) => log.error('internal error', { error: err }));
    process.stdout.on('error', () => {});
    process.stderr.on('error', () => {});

    if (process.pid !== 1) {
      if (!native().setChildSubreaper()) log.warn('not PID 1 and cannot become a child subreaper: orphans will not be reaped');
    }
    process.on('SIGCHLD', () => this.reaper.schedule());
    for (const sig of SHUTDOWN_SIGNALS) process.on(sig, () => this.onShutdownSignal(sig));
    for (const sig of RELAYED_SIGNALS) process.on(sig, () => this.relay(sig));
    // Nothing should stop PID 1 from a terminal's background write.
    process.on('SIGTTOU', () => {});
    process.on('SIGTTIN', () => {});
    process.on('SIGPIPE', () => {});

    if (this.parentDeathSignal && process.pid !== 1) {
      if (!native().setParentDeathSignal(signalNumber(this.parentDeathSignal))) log.warn('cannot set the parent-death signal (-p)');
      // The parent may have died before the kernel knew to tell us.
      else if (process.ppid !== PARENT_AT_START) setImmediate(() => process.kill(process.pid, this.parentDeathSignal!));
    }
    const done = new Promise<number>((resolve) => (this.finish = resolve));
    log.info('starting', { pid: process.pid, services: this.config.servicesDir, cmd: this.argv.length ? this.argv.join(' ') : undefined });
    // Re-exec (issue 15): take over what the molt before this one ran, before anything is reaped.
    const adoption = loadAdoption(process.env);
    if (adoption) this.supervisor.adoptFrom(adoption.services);
    this.supervisor.start();
    if (adoption?.cmdPid) this.adoptCmd(adoption.cmdPid);
    else if (this.argv.length) this.startCmd();
    new Reexec({
      servicesDir: this.config.servicesDir,
      supervisor: this.supervisor,
      initArgs: initArgv,
      cmdPid: () => (this.cmd && this.cmd.exit === undefined ? this.cmd.child.pid : undefined),
      busy: () => (this.shuttingDown ? 'shutting down' : undefined),
      spawn: (cmd, args, opts) => this.spawnTracked(cmd, args, opts),
    }).listen();
    this.reaper.onReap = () => this.maybeDone();
    // Orphans reparented before our SIGCHLD handler existed.
    this.reaper.scan();
    return done.then((code) => {
      // Exit now: timers and FIFOs would otherwise keep the loop alive.
      process.exit(code);
    });
  }

  private spawnTracked(cmd: string, args: string[], opts: SpawnOptions): ChildProcess {
    const child = spawn(cmd, args, opts);
    const pid = child.pid;
    if (pid !== undefined) {
      this.reaper.track(pid);
      child.once('exit', () => {
        this.reaper.untrack(pid);
        // The exit may leave orphans of its own, or be the last one we wait for.
        this.reaper.schedule();
        setImmediate(() => this.maybeDone());
      });
    }
    return child;
  }

  private startCmd(): void {
    const [file, ...args] = this.argv as [string, ...string[]];
    const child = this.spawnTracked(file, args, { stdio: 'inherit' });
    this.cmd = { child };
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (child.pid !== undefined) return;
      const code = err.code === 'ENOENT' ? 127 : err.code === 'EACCES' ? 126 : 1;
      const why = err.code === 'ENOENT' ? 'not found' : err.code === 'EACCES' ? 'permission denied (not executable?)' : err.message;
      process.stderr.write(`molt init: cannot run ${file}: ${why}\n`);
      this.cmd!.exit = code;
      this.shutdown('cmd failed to start', code);
    });
    child.on('exit', (code, signal) => {
      const status = exitStatus(code, signal);
      this.cmd!.exit = status;
      log.info('main program exited', { code: code ?? undefined, signal: signal ?? undefined });
      this.shutdown('main program exited', status);
    });
  }

  /** CMD as the molt before this one left it (re-exec): its exit comes from the reaper. */
  private adoptCmd(pid: number): void {
    const child = new AdoptedChild(pid);
    this.cmd = { child: child as unknown as ChildProcess };
    this.reaper.adopt(pid, (code, signal) => child.exited(code, signal));
    child.on('exit', (code: number | null, signal: NodeJS.Signals | null) => {
      this.cmd!.exit = exitStatus(code, signal);
      log.info('main program exited', { code: code ?? undefined, signal: signal ?? undefined });
      this.shutdown('main program exited', this.cmd!.exit);
    });
  }

  private onRunExit(svc: Service, slot: Slot, code: number | null, signal: NodeJS.Signals | null, wanted: boolean): void {
    if (this.shuttingDown || slot !== svc.main || !wanted || !svc.essential) return;
    const status = exitStatus(code, signal);
    const h = readHoldState(svc.dir);
    const hold = h?.held ? h.word : undefined;
    if (holdKeepsUp(hold, code, signal)) {
      this.staleHoldExits.delete(svc.name);
      log.info('essential service exited during an update (hold); restarting it, the container stays up', { service: svc.name, status, hold });
      return;
    }
    const stale = this.staleHoldExits.get(svc.name) ?? 0;
    if (!h?.held && staleHoldKeepsUp(h?.word, stale)) {
      this.staleHoldExits.set(svc.name, stale + 1);
      log.info('essential service exited during an interrupted update (stale hold); restarting it for the updater to resume, the container stays up', { service: svc.name, status, hold: h?.word, left: STALE_APPLY_EXITS - stale - 1 });
      return;
    }
    log.info('essential service exited, stopping the container', { service: svc.name, status });
    this.shutdown(`essential service ${svc.name} exited`, status);
  }

  private onShutdownSignal(sig: (typeof SHUTDOWN_SIGNALS)[number]): void {
    if (this.shuttingDown) {
      // A second ^C means "now".
      if (sig === 'SIGINT') this.killEverything();
      return;
    }
    log.info('signal received, stopping', { signal: sig });
    this.shutdown(`${sig}`, 0, sig);
  }

  private relay(sig: NodeJS.Signals): void {
    log.debug('relaying signal', { signal: sig });
    if (this.cmd) {
      if (this.cmd.child.pid && this.cmd.exit === undefined) signalPid(this.cmd.child.pid, sig);
    } else {
      this.supervisor.signalAll(sig);
    }
  }

  private shutdown(reason: string, code: number, cmdSignal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.exitCode = code;
    log.info('shutting down', { reason, grace_ms: this.config.stopTimeoutMs });
    this.supervisor.stopAll();
    if (this.cmd?.child.pid && this.cmd.exit === undefined) signalPid(this.cmd.child.pid, cmdSignal);
    // Adopted orphans get TERM now and KILL when the grace time is up.
    this.termAdopted();
    this.deadline = setTimeout(() => this.killEverything(), this.config.stopTimeoutMs);
    this.maybeDone();
  }

  /** TERM (once each) every child we did not spawn: orphans adopted from services and CMD. */
  private termAdopted(): void {
    for (const pid of childrenOfSelf()) {
      if (this.reaper.isTracked(pid) || this.termed.has(pid)) continue;
      this.termed.add(pid);
      signalPid(pid, 'SIGTERM');
    }
  }

  /** The grace time is over: SIGKILL every process left below us, then exit. */
  private killEverything(): void {
    const left = descendantsOfSelf();
    if (left.length) log.warn('grace time over, killing what is left', { processes: left.length });
    for (let round = 0; round < 5; round++) {
      const pids = descendantsOfSelf();
      if (!pids.length) break;
      for (const pid of pids) signalPid(pid, 'SIGKILL');
    }
    this.reaper.scan();
    // Give libuv a moment to collect the exit status of CMD (its code decides ours).
    setTimeout(() => this.exit(), 100).unref();
    setTimeout(() => this.exit(), 300);
  }

  private maybeDone(): void {
    if (!this.shuttingDown) return;
    // Orphans adopted since the shutdown began (a wrapper's children once the wrapper died
    // of its TERM) get their TERM now, not only KILL when the grace time is over.
    this.termAdopted();
    if (!this.supervisor.allDone()) return;
    if (this.cmd && this.cmd.exit === undefined && this.cmd.child.pid !== undefined) return;
    if (this.reaper.trackedCount() > 0) return;
    // Orphans still running keep us in the grace period.
    if (childrenOfSelf().some((pid) => !this.reaper.isTracked(pid))) {
      this.reaper.schedule();
      return;
    }
    this.exit();
  }

  private exit(): void {
    if (!this.finish) return;
    if (this.deadline) clearTimeout(this.deadline);
    let code = this.cmd ? this.cmd.exit ?? 137 : this.exitCode;
    if (code !== 0 && this.successCodes.includes(code)) {
      log.info('exit status counted as success (-e)', { status: code });
      code = 0;
    }
    log.info('exit', { code });
    const finish = this.finish;
    this.finish = undefined;
    finish(code);
  }
}

function signalPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

