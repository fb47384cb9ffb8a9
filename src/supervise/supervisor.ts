// The service directory scanner (runsvdir's job): one Service per
// subdirectory of MOLT_SERVICES, new ones started and removed ones stopped
// within 5 s (at once when inotify reports the change).
import fs from 'node:fs';
import path from 'node:path';
import { logger } from '../common/log.js';
import { Service, type ServiceEnv } from './service.js';

const log = logger('supervise');
const RESCAN_MS = 5000;

export class Supervisor {
  readonly services = new Map<string, Service>();
  private timer: NodeJS.Timeout | undefined;
  private watcher: fs.FSWatcher | undefined;
  private lastStamp = '';
  private failed = new Map<string, string>();
  private stopping = false;
  private scanQueued = false;
  onAllDone: (() => void) | undefined;

  constructor(
    readonly root: string,
    private readonly env: ServiceEnv,
  ) {}

  start(): void {
    this.scan(true);
    this.timer = setInterval(() => this.scan(false), RESCAN_MS);
    this.watch();
  }

  private watch(): void {
    try {
      this.watcher = fs.watch(this.root, { persistent: false }, () => this.queueScan());
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      // No inotify, or the directory does not exist yet: the 5 s rescan covers it.
    }
  }

  private queueScan(): void {
    if (this.scanQueued) return;
    this.scanQueued = true;
    // A short delay lets `cp -r` or `mkdir && write run` finish before we look.
    setTimeout(() => {
      this.scanQueued = false;
      this.scan(true);
    }, 200).unref();
  }

  /** Read the directory when it changed (mtime/inode), or when forced. */
  scan(force: boolean): void {
    if (this.stopping) return;
    let st: fs.Stats;
    try {
      st = fs.statSync(this.root);
    } catch (err) {
      if (this.lastStamp !== 'missing') log.warn('service directory unreadable', { dir: this.root, error: (err as NodeJS.ErrnoException).code });
      this.lastStamp = 'missing';
      return;
    }
    const stamp = `${st.ino}:${st.mtimeMs}`;
    const hadMissing = this.lastStamp === 'missing';
    if (!force && stamp === this.lastStamp && !this.hasExited()) return;
    this.lastStamp = stamp;
    if (hadMissing && !this.watcher) this.watch();
    let names: string[];
    try {
      names = fs.readdirSync(this.root);
    } catch (err) {
      log.warn('cannot list service directory', { dir: this.root, error: (err as NodeJS.ErrnoException).code });
      return;
    }
    const present = new Set<string>();
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const dir = path.join(this.root, name);
      try {
        if (!fs.statSync(dir).isDirectory()) continue;
      } catch {
        continue; // dangling symlink
      }
      present.add(name);
      const known = this.services.get(name);
      if (known && !known.done) continue;
      if (known?.done) this.services.delete(name); // after `sv exit`, as runsvdir restarts runsv
      this.add(name, dir);
    }
    for (const [name, svc] of this.services) {
      if (!present.has(name) && !svc.done) {
        log.info('service removed, stopping', { service: name });
        svc.onDone = () => this.services.delete(name);
        svc.stop();
      }
    }
  }

  private hasExited(): boolean {
    for (const svc of this.services.values()) if (svc.done) return true;
    return false;
  }

  private add(name: string, dir: string): void {
    let svc: Service;
    try {
      svc = new Service(name, dir, this.env);
      svc.open();
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (this.failed.get(name) !== msg) log.error('cannot supervise', { service: name, error: msg });
      this.failed.set(name, msg);
      return;
    }
    this.failed.delete(name);
    this.services.set(name, svc);
    log.info('service added', { service: name });
  }

  /** Orderly stop of every service; onAllDone fires when all have let go. */
  stopAll(): void {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    this.watcher?.close();
    for (const svc of this.services.values()) {
      if (svc.done) continue;
      svc.onDone = () => this.checkAllDone();
      svc.stop();
    }
    this.checkAllDone();
  }

  private checkAllDone(): void {
    for (const svc of this.services.values()) if (!svc.done) return;
    this.onAllDone?.();
  }

  allDone(): boolean {
    for (const svc of this.services.values()) if (!svc.done) return false;
    return true;
  }

  /** Send a signal to every running process of every service (relay without CMD). */
  signalAll(sig: NodeJS.Signals): void {
    for (const svc of this.services.values()) for (const slot of svc.slots()) slot.kill(sig);
  }
}
