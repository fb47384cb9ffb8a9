// runsv's control scripts: `control/<letter>` runs before the default action of
// a control byte; exiting 0 replaces that action. They run one after the
// other, in the order the bytes came.
import type { ChildProcess } from 'node:child_process';
import { logger } from '../common/log.js';
import { signalQuietly } from './spawn.js';
import type { ServiceFiles } from './serviceFiles.js';

const log = logger('supervise');

export class ControlScripts {
  private chain: Promise<void> | undefined;

  constructor(
    private readonly files: ServiceFiles,
    private readonly label: string,
    private readonly start: (file: string) => ChildProcess | undefined,
    private readonly timeoutMs: number,
  ) {}

  /** Control scripts apply (a `control/` directory), or earlier ones are still running. */
  applies(): boolean {
    return this.chain !== undefined || this.files.has('control');
  }

  /** Work that follows a control script, in the order the control bytes came. */
  then(work: () => Promise<void>): void {
    const next = (this.chain ?? Promise.resolve()).then(work).catch((err: unknown) => log.warn('control script failed', { service: this.label, error: err }));
    this.chain = next;
    void next.finally(() => {
      if (this.chain === next) this.chain = undefined;
    });
  }

  /** Run control/<letter> when it is executable; true when it exited 0 (its default action is then skipped). */
  run(letter: string): Promise<boolean> {
    const file = this.files.controlScript(letter);
    if (!file) return Promise.resolve(false);
    const child = this.start(file);
    if (!child) return Promise.resolve(false);
    return new Promise((resolve) => {
      // runsv waits for ever; a control script that hangs gets finish's deadline here.
      const timer = setTimeout(() => {
        log.warn('control script timed out, killing it', { service: this.label, file, timeout_ms: this.timeoutMs });
        signalQuietly(child.pid!, 'SIGKILL');
      }, this.timeoutMs);
      child.once('exit', (code) => {
        clearTimeout(timer);
        log.debug('control script exited', { service: this.label, file, code: code ?? undefined });
        resolve(code === 0);
      });
    });
  }

  /** control/<letter> in its turn; unless it exited 0, `signal()` sends the default signal (then `sent()` for t). */
  signal(letter: string, signal: () => void, sent: () => void): void {
    this.then(async () => {
      if (await this.run(letter)) return;
      signal();
      if (letter === 't') sent();
    });
  }

  /** runsv's stop: control/t may replace the stop signal (`term`); CONT always; then control/d or control/x. */
  stop(want: string, term: () => void, cont: () => void): void {
    this.then(async () => {
      if (!(await this.run('t'))) term();
      cont();
      if (want === 'down' || want === 'exit') await this.run(want === 'down' ? 'd' : 'x');
    });
  }
}
