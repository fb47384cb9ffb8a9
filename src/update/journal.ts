// state.json: the updater's journal. Each phase is written (write, fsync,
// rename, fsync dir) before it begins, so that `molt updater` can recover from
// a kill -9 at any instant.
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../common/atomic.js';
import { logger } from '../common/log.js';
import type { BlockedEntry, HistoryEntry, UpdatePhase } from '../api/types.js';
import { canEnter, canRecover, nextPhases } from './phases.js';
import type { Release } from './types.js';
import { parseSourceRecord, type SourceRecord } from './freshness.js';

const log = logger('journal');
const HISTORY_MAX = 100;

export interface UpdateTarget {
  version: string;
  /** The version that ran before; where a rollback goes. */
  from?: string;
  release: Release;
  /** Why: 'policy', 'named' (molt update VERSION), 'rollback', 'bundled' (MOLT_BUNDLED, the image's own release). */
  reason: 'policy' | 'named' | 'rollback' | 'bundled';
  startedAt: string;
  /** The reason to block with, once rolling back. */
  failure?: string;
  /** Set when the new version was started beside the old one (MOLT_HANDOVER=overlap). */
  handover?: 'overlap';
}

export interface JournalState {
  version: 1;
  phase: UpdatePhase;
  target?: UpdateTarget;
  blocked: BlockedEntry[];
  history: HistoryEntry[];
  /** When each version was first seen (MOLT_DELAY counts from discovery, across restarts). */
  firstSeen: Record<string, string>;
  lastCheck?: { at: string; ok: boolean; error?: string; notModified?: boolean };
  /** The source's answers: when it last answered, last said something new (update/freshness.ts). */
  source?: SourceRecord;
  /** What verified each installed version: key id or identity (MOLT_TRUST_*). Optional: older state.json has none. */
  verifiedBy?: Record<string, string>;
}

export function emptyJournal(): JournalState {
  return { version: 1, phase: 'idle', blocked: [], history: [], firstSeen: {} };
}

// The phase table's keys are the phases: one list, not two to keep in step.
const phases: ReadonlySet<string> = new Set(Object.keys(nextPhases));

/** Validate a parsed state.json; anything off is an error naming the field. */
export function parseJournal(text: string): JournalState {
  const raw = JSON.parse(text) as Partial<JournalState>;
  if (!raw || typeof raw !== 'object') throw new Error('not an object');
  if (raw.version !== 1) throw new Error(`unknown version ${String(raw.version)}`);
  if (typeof raw.phase !== 'string' || !phases.has(raw.phase)) throw new Error(`bad phase ${String(raw.phase)}`);
  if (!Array.isArray(raw.blocked) || !Array.isArray(raw.history)) throw new Error('blocked/history missing');
  if (raw.target && (typeof raw.target.version !== 'string' || typeof raw.target.release !== 'object')) throw new Error('bad target');
  const out = { ...emptyJournal(), ...raw, firstSeen: raw.firstSeen ?? {} } as JournalState;
  // A malformed record only loses the ages it held; it is not worth the whole journal.
  const source = parseSourceRecord(raw.source);
  if (source) out.source = source;
  else delete out.source;
  return out;
}

/** state.json could not be written (disk full, read-only): the phase is still `from`. */
export class JournalWriteError extends Error {
  constructor(readonly from: UpdatePhase, readonly to: UpdatePhase, file: string, cause: unknown) {
    super(`cannot write ${file} (phase ${from} -> ${to}): ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/** Where the journal's text lives: state.json, or memory for the property tests. */
export interface JournalStore {
  /** undefined when there is none yet. */
  read(file: string): string | undefined;
  write(file: string, text: string): Promise<void>;
}

const fileStore: JournalStore = {
  read(file) {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch {
      return undefined; // no journal yet: a first start
    }
  },
  write: (file, text) => writeFileAtomic(file, text, { mode: 0o600 }),
};

export class Journal {
  readonly file: string;
  state: JournalState;

  constructor(home: string, private readonly store: JournalStore = fileStore) {
    this.file = path.join(home, 'state.json');
    this.state = this.load();
  }

  private load(): JournalState {
    const text = this.store.read(this.file);
    if (text === undefined) return emptyJournal();
    try {
      return parseJournal(text);
    } catch (err) {
      // Keep the evidence, start clean: the store's symlinks still say what runs.
      const aside = `${this.file}.corrupt-${Date.now()}`;
      try {
        fs.renameSync(this.file, aside);
      } catch {
        // nothing to keep
      }
      log.error('state.json unreadable, starting a new one', { error: err, kept: aside });
      return emptyJournal();
    }
  }

  /** Saves one after another: two at once would share the temp file's name and one rename would fail. */
  private writing: Promise<void> = Promise.resolve();

  save(): Promise<void> {
    return this.write(this.state);
  }

  private write(state: JournalState): Promise<void> {
    const text = JSON.stringify(state, null, 2) + '\n';
    const done = this.writing.then(() => this.store.write(this.file, text));
    this.writing = done.catch(() => undefined); // the caller of this write gets its error; the next write still runs
    return done;
  }

  /**
   * Record a phase before doing it. Only the phase table's rows are allowed: `step` for
   * an update's own course, `recovery` for recover()'s way out of an abandoned phase.
   * The phase in memory changes only once state.json says so: a failed write (disk full)
   * throws a JournalWriteError and leaves both on the phase before.
   */
  async enter(phase: UpdatePhase, target?: UpdateTarget | null, via: 'step' | 'recovery' = 'step'): Promise<void> {
    const from = this.state.phase;
    if (!(via === 'step' ? canEnter : canRecover)(from, phase)) throw new Error(`internal: phase ${from} -> ${phase} is not in the table`);
    const next: JournalState = { ...this.state, phase };
    if (target === null) delete next.target;
    else if (target) next.target = target;
    try {
      await this.write(next);
    } catch (err) {
      throw new JournalWriteError(from, phase, this.file, err);
    }
    this.state.phase = phase;
    if (target === null) delete this.state.target;
    else if (target) this.state.target = target;
  }

  addHistory(e: Omit<HistoryEntry, 'at'>): HistoryEntry {
    const entry: HistoryEntry = { at: new Date().toISOString(), ...e };
    this.state.history.push(entry);
    if (this.state.history.length > HISTORY_MAX) this.state.history.splice(0, this.state.history.length - HISTORY_MAX);
    return entry;
  }

  isBlocked(version: string): boolean {
    return this.state.blocked.some((b) => b.version === version);
  }

  block(version: string, reason: string): void {
    if (this.isBlocked(version)) return;
    this.state.blocked.push({ version, reason, at: new Date().toISOString() });
  }

  /** Remember what verified `version`, forgetting versions no longer installed. */
  setVerifiedBy(version: string, by: string, installed: readonly string[]): void {
    const keep = new Set(installed);
    const next: Record<string, string> = {};
    for (const [v, b] of Object.entries(this.state.verifiedBy ?? {})) if (keep.has(v)) next[v] = b;
    next[version] = by;
    this.state.verifiedBy = next;
  }

  unblock(version: string): boolean {
    const before = this.state.blocked.length;
    this.state.blocked = this.state.blocked.filter((b) => b.version !== version);
    return this.state.blocked.length !== before;
  }
}
