// The service directory scanner (runsvdir's job): one Service per
// subdirectory of MOLT_SERVICES, new ones started and removed ones stopped
// within 5 s (at once when inotify reports the change).
import fs from 'node:fs';
import path from 'node:path';
import { logger } from '../common/log.js';
import { Service, type ServiceEnv } from './service.js';
import type { adoptService } from './adopt.js';
import type { ServiceRecord } from './reexecState.js';
import { inCycles, mayStop, startBlockers, type Graph } from './depends.js';

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
  private readonly env: ServiceEnv;
  private readonly stopSent = new Set<Service>();
  private reconsidering = false;
  private reconsiderAgain = false;
  private inScan = false;
  private warned = new Set<string>();
  onAllDone: (() => void) | undefined;
  /** Re-exec (issue 15): what the previous molt ran, taken over by the first scan. */
  private adoption = new Map<string, ServiceRecord>();
  /** adopt.ts's adoptService, handed in with the records: a molt that adopts nothing never loads it. */
  private adopt: typeof adoptService | undefined;

  constructor(
    readonly root: string,
    env: ServiceEnv,
  ) {
    // Every state change may let a service that waits for its dependencies start, or stop.
    this.env = {
      ...env,
      onChange: () => {
        env.onChange?.();
        this.reconsider();
      },
    };
  }

  private graph(): Graph {
    const g = new Map<string, readonly string[]>();
    for (const [name, svc] of this.services) if (!svc.done) g.set(name, svc.dependsOn);
    return g;
  }

  private warnOnce(key: string, msg: string, fields: Record<string, unknown>): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    log.warn(msg, fields);
  }

  /** What `name` waits for: dependencies missing, down, or not ready yet. */
  private blockers(svc: Service): string[] {
    const name = svc.name;
    // The asking service may not be in the map yet: it asks while it is being added.
    const g = new Map(this.graph());
    g.set(name, svc.dependsOn);
    const cyclic = inCycles(g);
    if (cyclic.has(name)) this.warnOnce(`cycle:${name}`, 'dependency cycle; starting without order', { service: name, depends: svc.dependsOn.join(',') });
    return startBlockers(name, g, (dep) => {
      const other = this.services.get(dep);
      // During a scan a dependency may simply come later in the directory listing.
      if ((!other || other.done) && !this.inScan) this.warnOnce(`missing:${name}:${dep}`, 'waiting for a service that does not exist', { service: name, dependency: dep });
      return !!other && !other.done && other.main.readyForDependants;
    }, cyclic);
  }


  private reconsider(): void {
    if (this.reconsidering) {
      // A start during this pass may unblock a service the pass already looked at.
      this.reconsiderAgain = true;
      return;
    }
    this.reconsidering = true;
    try {
      for (let pass = 0; pass < 100; pass++) {
        this.reconsiderAgain = false;
        if (this.stopping) this.stopWhatMayStop();
        else for (const svc of this.services.values()) svc.retryBoot();
        if (!this.reconsiderAgain) break;
      }
    } finally {
      this.reconsidering = false;
    }
  }

  /** Before start(): the services the molt that re-executed into this one was running, and how to take each over. */
  adoptFrom(records: ServiceRecord[], adopt: typeof adoptService): void {
    this.adopt = adopt;
    for (const r of records) this.adoption.set(r.name, r);
  }

  start(): void {
    this.scan(true);
    for (const [name, r] of this.adoption) log.warn('adopted service no longer in the directory; its processes are left to the reaper', { service: name, pid: r.main.pid || undefined });
    this.adoption.clear();
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
    this.inScan = true;
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
    this.inScan = false;
    // Services added in this pass may be what others wait for.
    this.reconsider();
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
      const adopt = this.adoption.get(name);
      this.adoption.delete(name);
      svc = new Service(name, dir, this.env, adopt?.pipe);
      svc.gate = () => this.blockers(svc);
      if (adopt) this.adopt!(svc, adopt);
      else svc.open();
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
      svc.onDone = () => {
        this.stopWhatMayStop();
        this.checkAllDone();
      };
    }
    this.stopWhatMayStop();
    this.checkAllDone();
  }

  /** Reverse dependency order: a service is stopped once nothing that depends on it still runs. */
  private stopWhatMayStop(): void {
    const g = this.graph();
    const cyclic = inCycles(g);
    const running = (name: string) => {
      const svc = this.services.get(name);
      return !!svc && !svc.done;
    };
    for (const [name, svc] of this.services) {
      if (svc.done || this.stopSent.has(svc) || !mayStop(name, g, running, cyclic)) continue;
      this.stopSent.add(svc);
      svc.stop();
    }
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
