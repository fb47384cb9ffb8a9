// molt init: PID 1. Reads top to bottom like tini's main: parse arguments and
// environment, take the signals, become a subreaper when not PID 1, start the
// supervisor and CMD, then react to events until an orderly shutdown ends it.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import path from 'node:path';
import { logger, parseLogLevel, setLogLevel } from '../common/log.js';
import { Supervisor } from '../supervise/supervisor.js';
import { exitStatus, type Service, type Slot } from '../supervise/service.js';
import { childrenOfSelf, descendantsOfSelf, procState } from '../common/proc.js';
import { signalQuietly } from '../supervise/spawn.js';
import { native, terminalBackFrom, terminalTo } from '../common/native.js';
import { Reaper } from './reaper.js';
import { WritableOutlet } from '../supervise/output.js';
import { holdKeepsUp, readHoldState, STALE_APPLY_EXITS, staleHoldKeepsUp } from '../supervise/hold.js';
import { ConfigError, parseInitArgs, readInitConfig, type InitArgs, type InitConfig } from './config.js';
import { signalNumber } from '../supervise/signals.js';
import { isatty } from 'node:tty';
import type { ExecOptions } from './exec.js';
import type { Reexec } from './reexec.js';
import { JOB_SIGNALS, RELAYED_SIGNALS, SHUTDOWN_SIGNALS, takeEarlySignals } from './earlySignals.js';
// Imported when used: each ES module loaded at start delays the first spawn (bench).
type Adopting = { reexec: typeof import('./reexec.js'); adopt: typeof import('../supervise/adopt.js') };

/** Read as early as possible, for -p: a parent that is gone by then has been replaced. */
const PARENT_AT_START = process.ppid;

const log = logger('init');
/** `molt init`'s own arguments, for a re-exec to pass on (issue 15). */
let initArgv: string[] = [];

interface Cmd {
  child: ChildProcess;
  exit?: number;
}

export async function main(argv: string[]): Promise<number> {
  let config: InitConfig;
  let args: InitArgs;
  if (argv[0] === '--check-adopt') return (await import('./reexec.js')).checkAdopt(argv[1]);
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
  delete process.env.MOLT_INHERITED_SIGNALS; // for CMD only, through the shim: not for services
  // Re-exec's modules at once only when adopting (else after the first spawns); exec.ts with a CMD.
  const adopting: Adopting | undefined = process.env.MOLT_ADOPT ? { reexec: await import('./reexec.js'), adopt: await import('../supervise/adopt.js') } : undefined;
  const exec = args.cmd.length ? await import('./exec.js') : undefined;
  // tini's verbosity 1: on a terminal (docker run -t) only warnings and errors, so
  // molt's info lines do not mix into an interactive CMD's screen.
  if (!process.env.MOLT_LOG_LEVEL?.trim() && parseLogLevel(process.env) === 'info' && process.stderr.isTTY) setLogLevel('warn');
  // Like dumb-init: molt itself holds no directory (a mount under it can go away);
  // CMD still starts where molt was started, and relative paths are resolved first.
  const startDir = process.cwd();
  config.servicesDir = path.resolve(config.servicesDir);
  try {
    process.chdir('/');
  } catch {
    // stays where it is
  }
  return new Init(config, args.cmd, args.successCodes, args.parentDeathSignal, startDir, exec, adopting).run();
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
  /** Signals held while a re-exec is decided and under way (issue 15); undefined otherwise. */
  private held: NodeJS.Signals[] | undefined;
  private exitCode = 0;
  private deadline: NodeJS.Timeout | undefined;
  private finish: ((code: number) => void) | undefined;
  /** Per essential service: exits kept up by a stale `apply` hold since the updater last held it. */
  private readonly staleHoldExits = new Map<string, number>();
  /** The re-exec request listener, from right after the first spawns. */
  private reexec: Reexec | undefined;

  constructor(
    private readonly config: InitConfig,
    private readonly argv: string[],
    private readonly successCodes: number[] = [],
    private readonly parentDeathSignal?: NodeJS.Signals,
    private readonly startDir: string = process.cwd(),
    private readonly exec?: typeof import('./exec.js'),
    private readonly adopting?: Adopting,
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
    process.on('SIGCHLD', () => {
      this.reaper.schedule();
      this.followCmdStop();
    });
    // Job control signals are caught too, so a terminal's background read or write never stops molt itself.
    for (const sig of [...SHUTDOWN_SIGNALS, ...RELAYED_SIGNALS, ...JOB_SIGNALS]) process.on(sig, () => this.onSignal(sig));
    // Same tick: what the entry module queued before these handlers existed (a re-exec) is taken once, none twice.
    const early = takeEarlySignals();
    process.on('SIGPIPE', () => {});

    if (this.parentDeathSignal && process.pid !== 1) {
      if (!native().setParentDeathSignal(signalNumber(this.parentDeathSignal))) log.warn('cannot set the parent-death signal (-p)');
      // The parent may have died before the kernel knew to tell us.
      else if (process.ppid !== PARENT_AT_START) setImmediate(() => process.kill(process.pid, this.parentDeathSignal!));
    }
    const done = new Promise<number>((resolve) => (this.finish = resolve));
    log.info('starting', { pid: process.pid, services: this.config.servicesDir, cmd: this.argv.length ? this.argv.join(' ') : undefined });
    // Re-exec (issue 15): take over what the molt before this one ran, before anything is reaped.
    const adoption = this.adopting?.reexec.loadAdoption(process.env);
    if (!adoption && early.length) log.warn('signals arrived before molt init could adopt; acting on them now', { signals: early.join(',') });
    // Asked for now, it loads while the services and CMD are spawned below, and listens right after.
    const reexecModule = this.adopting ? Promise.resolve(this.adopting.reexec) : import('./reexec.js');
    if (adoption) this.supervisor.adoptFrom(adoption.services, this.adopting!.adopt.adoptService);
    this.supervisor.start();
    if (adoption?.cmdPid) this.adoptCmd(adoption.cmdPid, this.adopting!.adopt.AdoptedChild);
    else if (this.argv.length) this.startCmd();
    // Who PID 1 is, for the updater's trial of a new molt; loaded after the first spawns.
    const identity = import('./identity.js');
    void identity.then((m) => m.writeIdentity(this.config.servicesDir, adoption?.services, this.supervisor.services));
    if (adoption) {
      this.adopting!.reexec.answerReexec(this.config.servicesDir, `re-executed: ${adoption.services.length} service(s) adopted`);
      // Signals the old molt held between its decision and the exec, then those since this molt started.
      const replay = [...(adoption.signals ?? []), ...early];
      if (replay.length) log.info('replaying signals received during the re-exec', { signals: replay.join(',') });
      for (const sig of replay) this.onSignal(sig);
    } else {
      for (const sig of early) this.onSignal(sig);
    }
    this.reaper.onReap = () => this.maybeDone();
    // Orphans reparented before our SIGCHLD handler existed.
    this.reaper.scan();
    void reexecModule.then(({ Reexec }) => {
      this.reexec = new Reexec({
        servicesDir: this.config.servicesDir,
        supervisor: this.supervisor,
        initArgs: initArgv,
        cmdPid: () => (this.cmd && this.cmd.exit === undefined ? this.cmd.child.pid : undefined),
        shuttingDown: () => this.shuttingDown,
        spawn: (cmd, args, opts) => this.spawnTracked(cmd, args, opts),
        holdSignals: () => void (this.held ??= []),
        heldSignals: () => [...(this.held ?? [])],
        releaseSignals: () => this.releaseSignals(),
      });
      this.reexec.listen();
    });
    return done.then(async (code) => {
      this.reexec?.close();
      await identity.then((m) => m.removeIdentity(this.config.servicesDir), () => {});
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
    const [file] = this.argv as [string, ...string[]];
    // Not PID 1: if molt dies of a signal it cannot catch, CMD must not run on orphaned.
    const opts: ExecOptions = { parentDeathSignal: process.pid === 1 ? 0 : signalNumber('SIGTERM'), parent: process.pid, ...this.config.inheritedSignals };
    // PID 1 with no terminal (`docker run -d`): no foreground to hand over and no parent-death
    // signal to set, so libuv's own setsid (a group of its own; signals already reset by libuv)
    // does the shim's work without a second Node start. Otherwise molt's own entry file
    // (dist/src/cli/main.js, or the image's bundle) runs the shim.
    const child = this.exec!.directCmdSpawn(process.pid, [0, 1, 2].map((fd) => isatty(fd)), this.config.inheritedSignals)
      ? this.spawnTracked(file, this.argv.slice(1), { stdio: 'inherit', cwd: this.startDir, detached: true })
      : this.spawnTracked(process.execPath, [process.argv[1]!, '__init-exec', JSON.stringify(opts), ...this.argv], { stdio: 'inherit', cwd: this.startDir });
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
      terminalBackFrom(this.cmd?.child.pid);
      this.cmd!.exit = status;
      log.info('main program exited', { code: code ?? undefined, signal: signal ?? undefined });
      this.shutdown('main program exited', status);
    });
  }

  /** CMD as the molt before this one left it (re-exec): its exit comes from the reaper. */
  private adoptCmd(pid: number, AdoptedChild: Adopting['adopt']['AdoptedChild']): void {
    const child = new AdoptedChild(pid);
    this.cmd = { child: child as unknown as ChildProcess };
    this.reaper.adopt(pid, (code, signal) => child.exited(code, signal));
    child.on('exit', (code: number | null, signal: NodeJS.Signals | null) => {
      terminalBackFrom(this.cmd?.child.pid);
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

  /** Every handled signal comes here: acted on, or held while a re-exec is decided and under way. */
  private onSignal(sig: NodeJS.Signals): void {
    if (this.held) {
      log.debug('signal held for after the re-exec', { signal: sig });
      if (this.held.length < 1000) this.held.push(sig); // the state's bound: a flood is not a queue
      return;
    }
    if ((SHUTDOWN_SIGNALS as readonly string[]).includes(sig)) this.onShutdownSignal(sig as (typeof SHUTDOWN_SIGNALS)[number]);
    else if ((JOB_SIGNALS as readonly string[]).includes(sig)) this.relayJob(sig as (typeof JOB_SIGNALS)[number]);
    else this.relay(sig);
  }

  /** The re-exec did not happen: act on what was held, in order. */
  private releaseSignals(): void {
    const held = this.held ?? [];
    this.held = undefined;
    if (held.length) log.info('the re-exec did not happen; acting on the signals held for it', { signals: held.join(',') });
    for (const sig of held) this.onSignal(sig);
  }

  private onShutdownSignal(sig: (typeof SHUTDOWN_SIGNALS)[number]): void {
    if (this.shuttingDown) {
      // Every repeat reaches CMD (a second ^C often means "now" to it); the grace
      // time keeps running from the first. Without CMD a second ^C means "now" to molt.
      if (this.cmdRunning()) this.relay(sig);
      else if (sig === 'SIGINT') this.killEverything();
      return;
    }
    log.info('signal received, stopping', { signal: sig });
    this.shutdown(`${sig}`, 0, sig);
  }

  private cmdRunning(): boolean {
    return !!this.cmd?.child.pid && this.cmd.exit === undefined;
  }

  private relay(sig: NodeJS.Signals): void {
    log.debug('relaying signal', { signal: sig });
    if (this.cmd) {
      if (this.cmdRunning()) signalQuietly(this.cmd.child.pid!, sig);
    } else {
      this.supervisor.signalAll(sig);
    }
  }

  /** TSTP, TTIN, TTOU and CONT: to CMD's process group (the exec shim made it its own). */
  private relayJob(sig: (typeof JOB_SIGNALS)[number]): void {
    if (sig === 'SIGCONT' && this.cmdRunning()) terminalTo(this.cmd!.child.pid!);
    if (!this.cmdRunning()) return this.relay(sig);
    log.debug('relaying signal', { signal: sig, group: true });
    try {
      process.kill(-this.cmd!.child.pid!, sig);
    } catch {
      signalQuietly(this.cmd!.child.pid!, sig);
    }
  }

  /**
   * CMD stopped (^Z, or a TSTP relayed to it): when molt is a job of some shell (not
   * PID 1, which cannot stop), molt stops too, so that shell sees its job stopped and
   * takes the terminal back; its `fg` then CONTs molt, which CONTs CMD (relayJob).
   */
  private followCmdStop(): void {
    if (process.pid === 1 || !this.cmdRunning() || this.shuttingDown) return;
    if (procState(this.cmd!.child.pid!) !== 'T') return;
    log.debug('main program stopped, stopping too');
    process.kill(process.pid, 'SIGSTOP');
  }

  private shutdown(reason: string, code: number, cmdSignal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.exitCode = code;
    log.info('shutting down', { reason, grace_ms: this.config.stopTimeoutMs });
    this.supervisor.stopAll();
    if (this.cmd?.child.pid && this.cmd.exit === undefined) signalQuietly(this.cmd.child.pid, cmdSignal);
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
      signalQuietly(pid, 'SIGTERM');
    }
  }

  /** The grace time is over: SIGKILL every process left below us, then exit. */
  private killEverything(): void {
    const left = descendantsOfSelf();
    if (left.length) log.warn('grace time over, killing what is left', { processes: left.length });
    for (let round = 0; round < 5; round++) {
      const pids = descendantsOfSelf();
      if (!pids.length) break;
      for (const pid of pids) signalQuietly(pid, 'SIGKILL');
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
