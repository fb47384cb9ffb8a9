// Re-exec (issue 15): PID 1 replaces itself with a new molt without stopping a
// service, as systemd's daemon-reexec. A request arrives on the FIFO
// MOLT_SERVICES/.molt-reexec (one line: the new molt's path, or empty for this
// one); the new molt first proves in a child that it can load the state
// (`molt init --check-adopt FILE`), then PID 1 writes the state, lets the fds it
// hands over survive the exec and execve's. Any failure leaves the old molt on.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { logger } from '../common/log.js';
import { writeFileAtomicSync } from '../common/atomic.js';
import { native } from '../common/native.js';
import { captureService, serviceView } from '../supervise/adopt.js';
import { reexecBlocker } from '../supervise/reexecGate.js';
import { decodeState, encodeState, handedFds, REEXEC_STATE_VERSION, ReexecStateError, type ReexecState } from '../supervise/reexecState.js';
import type { Supervisor } from '../supervise/supervisor.js';

const log = logger('init');
const { O_RDONLY, O_WRONLY, O_NONBLOCK } = fs.constants;
const CHECK_TIMEOUT_MS = 30_000;

export const REQUEST_FIFO = '.molt-reexec';
export const STATE_FILE = '.molt-reexec.state';
/** One line, replaced at each outcome: `re-executed: ...`, `refused: ...` or `failed: ...` (`molt reexec --wait` reads it). */
export const ANSWER_FILE = '.molt-reexec.answer';
/**
 * Test only: the old molt waits, after its decision and before the exec, until
 * this file exists (at most 2 minutes), so a test can send a signal right then.
 */
const TEST_GATE_ENV = 'MOLT_TEST_REEXEC_GATE';

export interface ReexecHost {
  servicesDir: string;
  supervisor: Supervisor;
  /** The arguments `molt init` was started with (CMD included): the new molt gets them again. */
  initArgs: string[];
  cmdPid(): number | undefined;
  shuttingDown(): boolean;
  spawn(cmd: string, args: string[], opts: SpawnOptions): ChildProcess;
  /** From the decision to the exec, signals are held (not acted on) and handed to the new molt. */
  holdSignals(): void;
  heldSignals(): NodeJS.Signals[];
  /** No exec after all: act on the held signals. */
  releaseSignals(): void;
}

/** PID 1's answer to the last request (write and rename: a reader never sees half of it). */
export function answerReexec(servicesDir: string, line: string): void {
  try {
    writeFileAtomicSync(path.join(servicesDir, ANSWER_FILE), `${line}\n`, { mode: 0o644, durable: false });
  } catch {
    // read-only directory: the log says it too
  }
}

/** The command that runs this molt: node, its flags, the entry script. */
export function selfCommand(): string[] {
  return [process.execPath, ...process.execArgv, process.argv[1]!];
}

/** What PID 1 would hand over now, or why not now. */
export function captureState(host: ReexecHost): ReexecState | string {
  const all = [...host.supervisor.services.values()];
  const why = reexecBlocker(all.map(serviceView), host.shuttingDown());
  if (why) return why;
  const services = [];
  for (const svc of all) {
    const rec = captureService(svc);
    if (typeof rec === 'string') return `service ${svc.name}: ${rec}`;
    services.push(rec);
  }
  const s: ReexecState = { version: REEXEC_STATE_VERSION, pid: process.pid, writtenMs: Date.now(), servicesDir: host.servicesDir, services };
  const cmd = host.cmdPid();
  if (cmd) s.cmdPid = cmd;
  return s;
}

export class Reexec {
  private fifo: net.Socket | undefined;
  private inFlight = false;
  private readonly statePath: string;

  constructor(private readonly host: ReexecHost) {
    this.statePath = path.join(host.servicesDir, STATE_FILE);
  }

  /** Open the request FIFO; without it (read-only directory) re-exec is simply not offered. */
  listen(): void {
    const file = path.join(this.host.servicesDir, REQUEST_FIFO);
    try {
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(file);
      } catch {
        // absent
      }
      if (st && !st.isFIFO()) throw new Error(`${file} exists but is not a fifo`);
      // Whoever can write it chooses what PID 1 becomes: it must be ours and ours alone.
      if (st && (st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0)) throw new Error(`${file} is not owned by molt or is writable by others`);
      if (!st && native().mkfifo(file, 0o600) !== 0) throw new Error(`mkfifo ${file} failed (errno ${native().errno()})`);
      const fd = fs.openSync(file, O_RDONLY | O_NONBLOCK);
      // A writer of our own: the reader never sees EOF between requests. Close-on-exec, as Node opens it.
      fs.openSync(file, O_WRONLY | O_NONBLOCK);
      this.fifo = new net.Socket({ fd, readable: true, writable: false });
    } catch (err) {
      log.warn('re-exec not offered', { error: err instanceof Error ? err.message : String(err) });
      return;
    }
    let buf = '';
    this.fifo.setEncoding('utf8');
    this.fifo.on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        this.request(line);
      }
      if (buf.length > 4096) buf = '';
    });
    this.fifo.on('error', () => {});
  }

  /** At molt's exit: the FIFO goes with the molt that listened on it (a service directory is the user's). */
  close(): void {
    if (!this.fifo) return;
    this.fifo.destroy();
    this.fifo = undefined;
    for (const f of [REQUEST_FIFO, ANSWER_FILE]) fs.rmSync(path.join(this.host.servicesDir, f), { force: true });
  }

  /** `line`: the new molt's executable, or empty for this molt again. */
  request(line: string): void {
    if (this.inFlight) return this.refuse('a re-exec is already under way', 'refused');
    const command = line ? [line] : selfCommand();
    const first = captureState(this.host);
    if (typeof first === 'string') return this.refuse(first, 'refused');
    this.inFlight = true;
    log.info('re-exec requested; checking the new molt', { molt: command.join(' ') });
    try {
      writeFileAtomicSync(this.statePath, encodeState(first), { mode: 0o600 });
    } catch (err) {
      this.inFlight = false;
      return this.refuse(`cannot write the state: ${err instanceof Error ? err.message : String(err)}`, 'refused');
    }
    this.check(command, first.services.length).then(async (problem) => {
      if (problem) {
        this.inFlight = false;
        fs.rmSync(this.statePath, { force: true });
        return this.refuse(`the new molt cannot adopt (${problem}); staying on this one`, 'refused', { molt: command[0] });
      }
      // A TERM during the check began a shutdown: this molt finishes it, no exec.
      if (this.host.shuttingDown()) {
        this.inFlight = false;
        fs.rmSync(this.statePath, { force: true });
        return this.refuse('shutting down', 'refused');
      }
      // Decided: from here to the exec, signals are the new molt's to act on.
      this.host.holdSignals();
      await testGate();
      this.exec(command);
      this.inFlight = false;
    });
  }

  /** One log line and the answer; nothing has changed. */
  private refuse(why: string, kind: 'refused' | 'failed', extra: Record<string, unknown> = {}): void {
    if (kind === 'refused') log.warn('re-exec refused', { reason: why, ...extra });
    else log.error('re-exec failed; staying on this molt', { reason: why, ...extra });
    answerReexec(this.host.servicesDir, `${kind}: ${why}`);
  }

  /** `molt init --check-adopt STATE` in a child: undefined when it confirms it can adopt all `count` services, else what went wrong. */
  private check(command: string[], count: number): Promise<string | undefined> {
    return new Promise((resolve) => {
      let child: ChildProcess;
      try {
        child = this.host.spawn(command[0]!, [...command.slice(1), 'init', '--check-adopt', this.statePath], { stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (err) {
        resolve(err instanceof Error ? err.message : String(err));
        return;
      }
      let err = '';
      let out = '';
      child.stderr?.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-400)));
      child.stdout?.setEncoding('utf8').on('data', (d: string) => (out = (out + d).slice(-400)));
      const timer = setTimeout(() => child.kill('SIGKILL'), CHECK_TIMEOUT_MS);
      child.once('error', (e) => {
        clearTimeout(timer);
        resolve(e.message);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        const last = err.trim().split('\n').pop() ?? '';
        if (code !== 0) return resolve(`exit ${code ?? signal}${last ? `: ${last}` : ''}`);
        // Exit 0 alone proves little (`true` exits 0): the new molt must say it read this state.
        resolve(out.includes(checkLine(count)) ? undefined : 'exit 0 without confirming it can adopt the state');
      });
    });
  }

  /** Synchronous from capture to execve: no exit can be collected by this Node in between. */
  private exec(command: string[]): void {
    const state = captureState(this.host);
    if (typeof state === 'string') {
      this.host.releaseSignals();
      return this.refuse(state, 'refused');
    }
    const held = this.host.heldSignals();
    if (held.length) state.signals = held;
    const fds = handedFds(state);
    try {
      // Only this kernel reads it, right after the exec: no fsync (it would widen the window).
      writeFileAtomicSync(this.statePath, encodeState(state), { mode: 0o600, durable: false });
    } catch (err) {
      this.host.releaseSignals();
      return this.refuse(`cannot write the state: ${err instanceof Error ? err.message : String(err)}`, 'refused');
    }
    const nat = native();
    for (const fd of fds) nat.setInheritable(fd, true);
    log.info('re-executing', { molt: command.join(' '), services: state.services.length, held_signals: held.length ? held.join(',') : undefined });
    const env = Object.entries({ ...process.env, MOLT_ADOPT: this.statePath }).map(([k, v]) => `${k}=${v}`);
    const err = nat.execve(command[0]!, [...command, 'init', ...this.host.initArgs], env, true);
    // Still here: the exec failed. Everything is as it was; take the fds back.
    for (const fd of fds) nat.setInheritable(fd, false);
    fs.rmSync(this.statePath, { force: true });
    this.refuse(err.message, 'failed', { molt: command[0] });
    this.host.releaseSignals();
  }
}

/** What `--check-adopt` prints when it can adopt a state of `count` services. */
export function checkLine(count: number): string {
  return `state of ${count} service(s) can be adopted`;
}

/** Test only (MOLT_TEST_REEXEC_GATE): wait for the gate file, at most 2 minutes. */
async function testGate(): Promise<void> {
  const gate = process.env[TEST_GATE_ENV];
  if (!gate) return;
  log.info('re-exec waits for the test gate', { gate });
  for (let i = 0; i < 6000 && !fs.existsSync(gate); i++) await new Promise((r) => setTimeout(r, 20));
}

/** `molt init --check-adopt FILE`: exit 0 when this molt can load that state. */
export function checkAdopt(file: string | undefined): number {
  if (!file) {
    process.stderr.write('molt init: --check-adopt wants a state file\n');
    return 2;
  }
  try {
    const s = decodeState(fs.readFileSync(file, 'utf8'));
    native(); // koffi must load too: the new PID 1 reaps with it
    process.stdout.write(`${checkLine(s.services.length)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`molt init: cannot adopt ${file}: ${err instanceof ReexecStateError || err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

/** In the new molt: the state to adopt (the file is removed once read), or undefined (said) when there is none to trust. */
export function loadAdoption(env: NodeJS.ProcessEnv): ReexecState | undefined {
  const file = env.MOLT_ADOPT;
  if (!file) return undefined;
  delete env.MOLT_ADOPT; // not for the services
  try {
    const s = decodeState(fs.readFileSync(file, 'utf8'));
    fs.rmSync(file, { force: true });
    if (s.pid !== process.pid) throw new ReexecStateError(`written by pid ${s.pid}, not this process (${process.pid})`);
    return s;
  } catch (err) {
    log.error('cannot adopt; starting afresh', { file, error: err instanceof Error ? err.message : String(err) });
    return undefined;
  }
}
