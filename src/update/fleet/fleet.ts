// The updater's side of a fleet: which verdicts a release has, whether the fleet
// or this replica is paused, and sharing this replica's own verdicts. Every
// registry fault here is a warning line and "nothing known": the fleet is an
// optimisation over each replica's own trial, never a reason for an update to fail.
import fs from 'node:fs';
import path from 'node:path';
import { logger } from '../../common/log.js';
import { statusOf } from '../oci/errors.js';
import type { Release } from '../types.js';
import type { FleetBoard } from './boards.js';
import type { FleetConfig } from './config.js';
import { foldVerdicts, type FleetView, type VerdictKind } from './verdict.js';
import { isCanary } from './wave.js';

const log = logger('fleet');

/** The file whose presence pauses this replica (`molt pause`). */
export function pauseFile(home: string): string {
  return path.join(home, 'paused');
}

export class Fleet {
  readonly canary: boolean;
  /** The fleet's pause as last read (status shows it). */
  fleetPaused = false;
  private lastReadError: string | undefined;

  constructor(
    readonly cfg: FleetConfig,
    readonly board: FleetBoard | undefined,
    readonly home: string,
  ) {
    this.canary = isCanary(cfg.replica, cfg.canaryShare);
  }

  get reads(): boolean {
    return this.cfg.mode !== 'off' && this.board !== undefined;
  }

  localPaused(): boolean {
    return fs.existsSync(pauseFile(this.home));
  }

  private readFailed(what: string, err: unknown): undefined {
    const msg = `${what}: ${(err as Error).message}`;
    if (msg !== this.lastReadError) log.warn('cannot read the fleet\'s verdicts; deciding alone', { error: msg });
    this.lastReadError = msg;
    return undefined;
  }

  /** The fleet's view of `release`; undefined when verdicts are off or cannot be read now. */
  async view(release: Release, signal?: AbortSignal): Promise<FleetView | undefined> {
    if (!this.reads) return undefined;
    try {
      const v = foldVerdicts(await this.board!.read(release, signal));
      this.lastReadError = undefined;
      return v;
    } catch (err) {
      return this.readFailed(`verdicts of ${release.version}`, err);
    }
  }

  /** 'local', 'fleet' or undefined; a fleet pause that cannot be read counts as not paused (one warning). */
  async paused(signal?: AbortSignal): Promise<'local' | 'fleet' | undefined> {
    if (this.localPaused()) return 'local';
    if (!this.reads) return undefined;
    try {
      this.fleetPaused = (await this.board!.readPause(signal)) !== undefined;
    } catch (err) {
      this.readFailed('pause tag', err);
    }
    return this.fleetPaused ? 'fleet' : undefined;
  }

  /** Share this replica's verdict on `release` (MOLT_FLEET=1 only). A refused write is one warning line; nothing else changes. */
  async share(release: Release, kind: Extract<VerdictKind, 'blocked' | 'committed'>, reason: string, signal?: AbortSignal): Promise<void> {
    if (this.cfg.mode !== 'write' || !this.board) return;
    try {
      // Enough is listed already (a block, or enough commits): the list stays small however large the fleet.
      const seen = foldVerdicts(await this.board.read(release, signal));
      if (kind === 'committed' && seen.commits >= Math.max(this.cfg.needCommits, MAX_SHARED_COMMITS)) return;
      if (kind === 'blocked' && seen.blocked) return;
      const subject = await this.board.subject(release, signal);
      const at = await this.board.write(release, { kind, subject, version: release.version, reason, replica: this.cfg.replica, time: new Date().toISOString() }, signal);
      log.info('verdict shared', { version: release.version, kind, referrer: at });
    } catch (err) {
      const status = statusOf(err);
      log.warn('cannot share the verdict with the fleet; kept locally', { version: release.version, kind, ...(status ? { status } : {}), error: (err as Error).message });
    }
  }
}

/** A replica writes `committed` only while fewer than this many (or MOLT_CANARY_COMMITS) are listed. */
export const MAX_SHARED_COMMITS = 16;
