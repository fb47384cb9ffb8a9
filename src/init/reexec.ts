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
import { captureService } from '../supervise/adopt.js';
import { decodeState, encodeState, handedFds, REEXEC_STATE_VERSION, ReexecStateError, type ReexecState } from '../supervise/reexecState.js';
import type { Supervisor } from '../supervise/supervisor.js';

const log = logger('init');
const { O_RDONLY, O_WRONLY, O_NONBLOCK } = fs.constants;
const CHECK_TIMEOUT_MS = 30_000;

export const REQUEST_FIFO = '.molt-reexec';
export const STATE_FILE = '.molt-reexec.state';

export interface ReexecHost {
  servicesDir: string;
  supervisor: Supervisor;
  /** The arguments `molt init` was started with (CMD included): the new molt gets them again. */
  initArgs: string[];
  cmdPid(): number | undefined;
  /** Refuse while shutting down. */
  busy(): string | undefined;
  spawn(cmd: string, args: string[], opts: SpawnOptions): ChildProcess;
}

/** The command that runs this molt: node, its flags, the entry script. */
export function selfCommand(): string[] {
  return [process.execPath, ...process.execArgv, process.argv[1]!];
}

/** What PID 1 would hand over now, or why not now. */
export function captureState(host: ReexecHost): ReexecState | string {
  const why = host.busy();
  if (why) return why;
  const services = [];
  for (const svc of host.supervisor.services.values()) {
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
    try {
      fs.unlinkSync(path.join(this.host.servicesDir, REQUEST_FIFO));
    } catch {
      // already gone
    }
  }

  /** `line`: the new molt's executable, or empty for this molt again. */
  request(line: string): void {
    if (this.inFlight) {
      log.warn('re-exec already under way; request ignored');
      return;
    }
    const command = line ? [line] : selfCommand();
    const first = captureState(this.host);
    if (typeof first === 'string') {
      log.warn('re-exec refused for now', { reason: first });
      return;
    }
    this.inFlight = true;
    log.info('re-exec requested; checking the new molt', { molt: command.join(' ') });
    try {
      writeFileAtomicSync(this.statePath, encodeState(first), { mode: 0o600 });
    } catch (err) {
      this.inFlight = false;
      log.error('re-exec refused: cannot write the state', { error: err instanceof Error ? err.message : String(err) });
      return;
    }
    this.check(command).then((problem) => {
      this.inFlight = false;
      if (problem) {
        log.error('re-exec refused: the new molt cannot adopt; staying on this one', { molt: command[0], problem });
        fs.rmSync(this.statePath, { force: true });
        return;
      }
      this.exec(command);
    });
  }

  /** `molt init --check-adopt STATE` in a child: undefined when it exits 0, else what went wrong. */
  private check(command: string[]): Promise<string | undefined> {
    return new Promise((resolve) => {
      let child: ChildProcess;
      try {
        child = this.host.spawn(command[0]!, [...command.slice(1), 'init', '--check-adopt', this.statePath], { stdio: ['ignore', 'ignore', 'pipe'] });
      } catch (err) {
        resolve(err instanceof Error ? err.message : String(err));
        return;
      }
      let err = '';
      child.stderr?.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-400)));
      const timer = setTimeout(() => child.kill('SIGKILL'), CHECK_TIMEOUT_MS);
      child.once('error', (e) => {
        clearTimeout(timer);
        resolve(e.message);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        const last = err.trim().split('\n').pop() ?? '';
        resolve(code === 0 ? undefined : `exit ${code ?? signal}${last ? `: ${last}` : ''}`);
      });
    });
  }

  /** Synchronous from capture to execve: no exit can be collected by this Node in between. */
  private exec(command: string[]): void {
    const state = captureState(this.host);
    if (typeof state === 'string') {
      log.warn('re-exec refused for now', { reason: state });
      return;
    }
    const fds = handedFds(state);
    try {
      writeFileAtomicSync(this.statePath, encodeState(state), { mode: 0o600 });
    } catch (err) {
      log.error('re-exec refused: cannot write the state', { error: err instanceof Error ? err.message : String(err) });
      return;
    }
    const nat = native();
    for (const fd of fds) nat.setInheritable(fd, true);
    log.info('re-executing', { molt: command.join(' '), services: state.services.length });
    const env = Object.entries({ ...process.env, MOLT_ADOPT: this.statePath }).map(([k, v]) => `${k}=${v}`);
    const err = nat.execve(command[0]!, [...command, 'init', ...this.host.initArgs], env);
    // Still here: the exec failed. Everything is as it was; take the fds back.
    for (const fd of fds) nat.setInheritable(fd, false);
    fs.rmSync(this.statePath, { force: true });
    log.error('re-exec failed; staying on this molt', { molt: command[0], error: err.message });
  }
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
    process.stdout.write(`state of ${s.services.length} service(s) can be adopted\n`);
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
