// The runsv-compatible `supervise/` directory of one slot: lock, control and ok
// FIFOs, and the status/stat/pid files written through `*.new` + rename.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { SyscallError } from '../common/errors.js';
import { native } from '../common/native.js';
import type { SuperviseFds } from './reexecState.js';
import { encodeStatus, formatPid, formatStat, type SuperviseStatus } from './status.js';

const { O_RDONLY, O_WRONLY, O_NONBLOCK } = fs.constants;

function writeReplace(file: string, data: string | Buffer): void {
  // Not fsynced: like runsv's, these describe the running system and live as long as it.
  const tmp = file + '.new';
  fs.writeFileSync(tmp, data, { mode: 0o644 });
  fs.renameSync(tmp, file);
}

function ensureFifo(file: string): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.lstatSync(file);
  } catch {
    // absent
  }
  if (st && !st.isFIFO()) throw new Error(`${file} exists but is not a fifo`);
  if (!st && native().mkfifo(file, 0o600) !== 0) throw new SyscallError('mkfifo', native().errno(), { target: file });
}

/** mkdir supervise (0700); when it is a dangling symlink, create its target, as runsv does. */
function ensureSuperviseDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = fs.lstatSync(dir);
  if (st.isSymbolicLink()) {
    const target = path.resolve(path.dirname(dir), fs.readlinkSync(dir));
    fs.mkdirSync(target, { recursive: true, mode: 0o700 });
  } else if (!st.isDirectory()) {
    throw new Error(`${dir} exists but is not a directory`);
  }
}

export class SuperviseDir {
  private lockFd: number | undefined;
  private controlFd: number | undefined;
  private controlWriteFd: number | undefined;
  private okFd: number | undefined;
  private control: net.Socket | undefined;
  private lastPid = -1;

  constructor(readonly dir: string) {}

  /** Take the lock and open the FIFOs. Throws a one-line error when it cannot. */
  open(onControl: (bytes: Buffer) => void): void {
    ensureSuperviseDir(this.dir);
    this.lockFd = fs.openSync(path.join(this.dir, 'lock'), 'a', 0o600);
    if (!native().tryLock(this.lockFd)) {
      fs.closeSync(this.lockFd);
      this.lockFd = undefined;
      throw new Error(`${this.dir}/lock is held by another supervisor`);
    }
    const control = path.join(this.dir, 'control');
    ensureFifo(control);
    // Hold a writer too, so the reader never sees EOF (as runsv does).
    this.controlFd = fs.openSync(control, O_RDONLY | O_NONBLOCK);
    this.controlWriteFd = fs.openSync(control, O_WRONLY | O_NONBLOCK);
    const ok = path.join(this.dir, 'ok');
    ensureFifo(ok);
    // Held open for reading: `sv` opens it for writing, and ENXIO means "not running".
    this.okFd = fs.openSync(ok, O_RDONLY | O_NONBLOCK);
    this.readControl(onControl);
  }

  private readControl(onControl: (bytes: Buffer) => void): void {
    this.control = new net.Socket({ fd: this.controlFd!, readable: true, writable: false });
    this.control.on('data', (chunk: Buffer) => onControl(chunk));
    this.control.on('error', () => {
      // A FIFO read error is not fatal; status files still work.
    });
  }

  /** The lock and FIFO fds, for a re-exec to hand over (issue 15); undefined when not open. */
  fds(): SuperviseFds | undefined {
    const { lockFd: lock, controlFd: control, controlWriteFd: controlWrite, okFd: ok } = this;
    return lock === undefined || control === undefined || controlWrite === undefined || ok === undefined ? undefined : { lock, control, controlWrite, ok };
  }

  /** Take over the fds the previous molt held: `sv` never sees the FIFOs unread, the lock never lapses. */
  adopt(fds: SuperviseFds, onControl: (bytes: Buffer) => void): void {
    this.lockFd = fds.lock;
    this.controlFd = fds.control;
    this.controlWriteFd = fds.controlWrite;
    this.okFd = fds.ok;
    this.readControl(onControl);
  }

  write(status: SuperviseStatus): void {
    if (status.pid !== this.lastPid) {
      writeReplace(path.join(this.dir, 'pid'), formatPid(status.pid));
      this.lastPid = status.pid;
    }
    writeReplace(path.join(this.dir, 'stat'), formatStat(status));
    writeReplace(path.join(this.dir, 'status'), encodeStatus(status));
  }

  /** molt's addition beside runit's files: the last exit of `run` ("CODE SIGNAL", CODE -1 when killed),
   *  so that the updater can tell a crash from an exit 42 ("restart me into the update"). */
  writeExit(code: number | null, signal: number | null): void {
    writeReplace(path.join(this.dir, 'exit'), `${code ?? -1} ${signal ?? 0}\n`);
  }

  /** molt's own files beside runit's (health): replaced atomically. */
  writeFile(name: string, data: string): void {
    writeReplace(path.join(this.dir, name), data);
  }

  close(): void {
    // Closing ok first makes `sv` report "runsv not running" at once.
    for (const fd of [this.okFd, this.controlWriteFd]) {
      if (fd !== undefined) {
        try {
          fs.closeSync(fd);
        } catch {
          // already closed
        }
      }
    }
    this.okFd = this.controlWriteFd = undefined;
    this.control?.destroy(); // closes controlFd
    this.control = undefined;
    this.controlFd = undefined;
    if (this.lockFd !== undefined) fs.closeSync(this.lockFd);
    this.lockFd = undefined;
  }
}
