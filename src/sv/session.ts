// The I/O of one `molt sv` run: changing into service directories, probing
// supervise/ok, reading supervise/status, writing supervise/control, running
// ./check and printing. Decisions come from wait.ts; this file only acts.
//
// Like runit's sv, it works from inside each service directory (chdir), and
// keeps one 20-byte status buffer for the whole run: a failed or short read
// leaves the previous bytes in place, and `status` prints them for log/ then.
import fs from 'node:fs';
import { decodeStatus, formatSvStatus } from '../supervise/status.js';
import { checkScriptPasses } from './check.js';
import { codeOf, errorText } from './errors.js';
import { Output } from './output.js';
import { controlInEffect, waitSatisfied } from './wait.js';

/** sv's "fatal:" errors: exit 100 at once. */
export class FatalError extends Error {}

/** What svstatus reading found: 1 read, 0 runsv not running, -1 other failure (warned). */
export type Got = 1 | 0 | -1;

const { O_WRONLY, O_NONBLOCK, O_RDONLY } = fs.constants;

export class Session {
  readonly out = new Output();
  /** Failures so far: each fail/warning/timeout line counts one. */
  failures = 0;
  /** The service as given on the command line, for messages. */
  name = '';
  /** Inside log/ while printing the logger's status: messages say NAME/log. */
  private inLog = false;
  private readonly raw = Buffer.alloc(20);
  private readonly origCwd: string;

  /**
   * @param exitMode the command's first letter is x: a runsv that is gone is
   *   then what was asked for (ok), not a failure.
   * @param startWallMs when sv started, wall clock (t/k/o compare stamps to it).
   * @param nowWallMs the time status lines count seconds to; advanced by tick().
   */
  constructor(
    private readonly exitMode: boolean,
    readonly startWallMs: number,
    public nowWallMs: number,
  ) {
    try {
      this.origCwd = process.cwd();
    } catch (err) {
      throw new FatalError(`fatal: unable to open current directory: ${errorText(codeOf(err) ?? 'EIO')}\n`);
    }
  }

  private line(prefix: string, msg: string, code?: string): void {
    let text = `${prefix}${this.name}${this.inLog ? '/log' : ''}: ${msg}`;
    if (code) text += `: ${errorText(code)}`;
    this.out.flush(text + '\n');
  }

  fail(msg: string, code?: string): void {
    this.failures++;
    this.line('fail: ', msg, code);
  }

  warn(msg: string, code?: string): void {
    this.failures++;
    this.line('warning: ', msg, code);
  }

  ok(msg: string): void {
    this.line('ok: ', msg);
  }

  /** chdir into the service; false (after a fail line) when that fails. */
  enter(serviceDir: string, name: string, underServiceDir: boolean): boolean {
    this.name = name;
    try {
      if (underServiceDir) process.chdir(serviceDir);
      process.chdir(name);
      return true;
    } catch (err) {
      this.fail('unable to change to service directory', codeOf(err) ?? 'EIO');
      return false;
    }
  }

  leave(): void {
    try {
      process.chdir(this.origCwd);
    } catch (err) {
      throw new FatalError(`fatal: unable to change to original directory: ${errorText(codeOf(err) ?? 'EIO')}\n`);
    }
  }

  /**
   * Probes runsv through supervise/ok (opening a FIFO without a reader for
   * writing fails with ENXIO) and reads supervise/status into the buffer.
   */
  getStatus(): Got {
    try {
      fs.closeSync(fs.openSync('supervise/ok', O_WRONLY | O_NONBLOCK));
    } catch (err) {
      const code = codeOf(err) ?? 'EIO';
      if (code === 'ENXIO') {
        if (this.exitMode) this.ok('runsv not running');
        else this.fail('runsv not running');
        return 0;
      }
      this.warn('unable to open supervise/ok', code);
      return -1;
    }
    let fd: number;
    try {
      fd = fs.openSync('supervise/status', O_RDONLY);
    } catch (err) {
      this.warn('unable to open supervise/status', codeOf(err) ?? 'EIO');
      return -1;
    }
    let n: number;
    try {
      n = fs.readSync(fd, this.raw, 0, 20, null);
    } catch (err) {
      this.warn('unable to read supervise/status', codeOf(err) ?? 'EIO');
      return -1;
    } finally {
      fs.closeSync(fd);
    }
    if (n !== 20) {
      this.warn('unable to read supervise/status: bad format');
      return -1;
    }
    return 1;
  }

  /** Appends the status part for `label` (the name, or "log"); nothing if ./down cannot be checked. */
  private putStatus(label: string): void {
    let normallyUp = false;
    try {
      fs.statSync('down');
    } catch (err) {
      const code = codeOf(err) ?? 'EIO';
      if (code !== 'ENOENT') {
        this.out.error(`warning: unable to stat ${this.name}/down: ${errorText(code)}\n`);
        return;
      }
      normallyUp = true;
    }
    this.out.puts(formatSvStatus(label, decodeStatus(this.raw), normallyUp, this.nowWallMs));
  }

  /** `sv status`: the service's line, with the logger's part when log/ exists. */
  status(): void {
    if (this.getStatus() !== 1) return;
    this.putStatus(this.name);
    this.inLog = true;
    let inLogDir = false;
    try {
      process.chdir('log');
      inLogDir = true;
    } catch (err) {
      const code = codeOf(err) ?? 'EIO';
      if (code !== 'ENOENT') {
        this.out.puts('; ');
        this.warn('unable to change directory', code);
      } else {
        this.out.puts('\n');
      }
    }
    if (inLogDir) {
      this.out.puts('; ');
      // On -1 sv still prints, from whatever the buffer holds: so do we.
      if (this.getStatus() !== 0) {
        this.putStatus('log');
        this.out.puts('\n');
      }
    }
    this.inLog = false;
    this.out.flush();
  }

  /** Writes control letters unless already in effect. -1 ends this service's part. */
  control(letters: string): -1 | 0 | 1 {
    if (this.getStatus() !== 1) return -1;
    if (controlInEffect(letters, decodeStatus(this.raw))) return 0;
    let fd: number;
    try {
      fd = fs.openSync('supervise/control', O_WRONLY | O_NONBLOCK);
    } catch (err) {
      const code = codeOf(err) ?? 'EIO';
      if (code !== 'ENXIO') this.warn('unable to open supervise/control', code);
      else if (letters[0] === 'x') this.ok('runsv not running');
      else this.fail('runsv not running');
      return -1;
    }
    let written = -1;
    let code: string | undefined;
    try {
      written = fs.writeSync(fd, letters);
    } catch (err) {
      code = codeOf(err) ?? 'EIO';
    } finally {
      fs.closeSync(fd);
    }
    if (written !== letters.length) {
      this.warn('unable to write to supervise/control', code);
      return -1;
    }
    return 1;
  }

  /** One wait round: 1 done (ok line printed), 0 not yet, -1 gave up (message printed). */
  check(letters: string): -1 | 0 | 1 {
    const got = this.getStatus();
    if (got === -1) return -1;
    if (got === 0) return letters[0] === 'x' ? 1 : -1;
    const startSec = Math.floor(this.startWallMs / 1000);
    const runCheck = () => checkScriptPasses(this.name, (l) => this.out.error(l));
    if (!waitSatisfied(letters, decodeStatus(this.raw), startSec, runCheck)) return 0;
    this.out.puts('ok: ');
    this.putStatus(this.name);
    this.out.flush('\n');
    return 1;
  }

  /** The wait ran out: `timeout: STATUS` or `kill: STATUS` and a KILL. */
  timedOut(kill: boolean): void {
    this.out.puts(kill ? 'kill: ' : 'timeout: ');
    if (this.getStatus() === 1) {
      this.putStatus(this.name);
      this.failures++;
    }
    this.out.flush('\n');
    if (kill) this.control('k');
  }
}
