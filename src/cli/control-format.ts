// What `molt status`, `molt blocked` and the waiting commands print, as pure
// functions of the updater's status and the clock (unit-tested).
import type { BlockedEntry, HistoryEntry, SelfStatus, SourceFreshness, UpdatePhase, UpdaterStatus } from '../api/types.js';

export function span(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? ` ${s % 60}s` : ''}`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)}m` : ''}`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600) ? ` ${Math.floor((s % 86400) / 3600)}h` : ''}`;
}

/** "3m ago" / "in 2m" / "" when absent or unparsable. */
export function rel(iso: string | undefined, nowMs: number): string {
  if (!iso) return '';
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '';
  const d = (nowMs - t) / 1000;
  if (Math.abs(d) < 1) return 'now';
  return d >= 0 ? `${span(d)} ago` : `in ${span(-d)}`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

export function percent(done: number, total: number | undefined): number | undefined {
  if (!total || total <= 0) return undefined;
  return Math.max(0, Math.min(100, Math.floor((done * 100) / total)));
}

/** `[##########..........]  50%  1.0 MiB of 2.0 MiB`; without a total, the byte count alone. */
export function progressBar(done: number, total: number | undefined, width = 30): string {
  const pct = percent(done, total);
  if (pct === undefined) return `${bytes(done)} downloaded`;
  const filled = Math.round((pct * width) / 100);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(pct).padStart(3)}%  ${bytes(done)} of ${bytes(total!)}`;
}

function table(rows: string[][], indent = '  ', gap = '  '): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => indent + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join(gap).trimEnd());
}

export function historyLine(h: HistoryEntry): string {
  const versions = h.from && h.version ? `${h.from} -> ${h.version}` : (h.version ?? h.from ?? '');
  return [versions, h.detail ?? ''].filter(Boolean).join('  ');
}

/** One line: how old the source's last answer, last change and newest release are (STALE past MOLT_STALE_AFTER). */
export function formatFreshness(f: SourceFreshness, nowMs: number): string {
  const parts = [f.lastSuccessAt ? `answered ${rel(f.lastSuccessAt, nowMs)}` : `no answer since the start ${span(f.lastSuccessAgeSeconds)} ago`];
  if (f.lastChangeAt) parts.push(`last new answer ${rel(f.lastChangeAt, nowMs)}`);
  if (f.newestPublishedAt) parts.push(`newest release ${f.newestVersion ?? ''} published ${rel(f.newestPublishedAt, nowMs)}`.replace('  ', ' '));
  return `${f.stale ? `STALE (no answer for over ${span(f.staleAfterSeconds)}): ` : ''}${parts.join('; ')}`;
}

/** The compact human view of `molt status`. */
export function formatStatus(s: UpdaterStatus, nowMs: number): string {
  const out: string[] = [];
  out.push(`molt${s.host ? ` on ${s.host}` : ''}: ${s.phase}`);
  const rows: string[][] = [];
  rows.push(['current', s.current ?? '(none)']);
  if (s.unverified) rows.push(['signed by', `UNVERIFIED${s.verifiedBy ? ` (${s.verifiedBy}, no longer trusted)` : ' (installed before signatures were required)'}`]);
  else if (s.verifiedBy) rows.push(['signed by', s.verifiedBy]);
  if (s.trustRoot) {
    const r = s.trustRoot;
    const fresh = r.verifiedAt ? `verified ${rel(r.verifiedAt, nowMs)}` : 'none yet';
    rows.push(['trust root', `${r.mirror} (TUF), ${fresh}${r.lastError ? `; last refresh failed: ${r.lastError}` : ''}`]);
  }
  if (s.previous) rows.push(['previous', s.previous]);
  rows.push(['available', s.available ? `${s.available}${s.waiting ? `  (waiting: ${s.waiting})` : ''}` : 'up to date']);
  if (!s.available && s.waiting) rows.push(['waiting', s.waiting]);
  if (s.paused) rows.push(['paused', s.paused === 'fleet' ? 'fleet-wide (molt resume --fleet)' : 'here (molt resume)']);
  if (s.fleet && s.fleet.mode !== 'off') rows.push(['fleet', `${s.fleet.mode === 'write' ? 'shares' : 'reads'} verdicts as ${s.fleet.replica}${s.fleet.canary === undefined ? '' : s.fleet.canary ? ', canary' : ', later wave'}`]);
  rows.push(['source', `${s.source}  policy ${s.policy}`]);
  if (s.lastCheck) {
    const res = s.lastCheck.ok ? (s.lastCheck.notModified ? 'ok, not modified' : 'ok') : `failed: ${s.lastCheck.error ?? 'unknown error'}`;
    rows.push(['last check', `${rel(s.lastCheck.at, nowMs)}, ${res}${s.nextCheckAt ? `; next ${rel(s.nextCheckAt, nowMs)}` : ''}`]);
  } else if (s.nextCheckAt) {
    rows.push(['next check', rel(s.nextCheckAt, nowMs)]);
  }
  if (s.freshness) rows.push(['source age', formatFreshness(s.freshness, nowMs)]);
  if (s.download) rows.push(['download', `${s.download.version}  ${progressBar(s.download.bytes, s.download.total, 20)}`]);
  if (s.trial) {
    const t = s.trial;
    const left = (Date.parse(t.deadlineAt) - nowMs) / 1000;
    const state = t.ready ? 'ready' : t.readyMode === 'explicit' ? 'waiting for ready' : 'must stay up';
    rows.push(['trial', `${t.version}${t.from ? ` (from ${t.from})` : ''}  ${left > 0 ? `${span(left)} left` : 'deadline passed'}  crashes ${t.crashes}/${t.crashLimit}  ${state}`]);
  }
  out.push(...table(rows));
  const running = s.actions.filter((a) => a.state === 'running');
  for (const a of running) out.push(`  running     ${a.kind}${a.version ? ` ${a.version}` : ''} (${a.id}, started ${rel(a.startedAt, nowMs)})`);

  if (s.self) out.push('', ...formatSelf(s.self, nowMs));
  if (s.services?.length) {
    out.push('', 'services');
    out.push(
      ...table(
        s.services.map((v) => [
          v.name,
          v.state +
            (v.paused ? ', paused' : '') +
            (v.supervised ? '' : ', unsupervised') +
            (v.health?.healthy === true ? ', healthy' : v.health?.healthy === false ? `, check failing x${v.health.failures}` : ''),
          v.pid ? `pid ${v.pid}` : '',
          v.seconds !== undefined ? span(v.seconds) : '',
          v.lastExit && v.state !== 'up' ? (v.lastExit.code >= 0 ? `exit ${v.lastExit.code}` : `signal ${v.lastExit.signal}`) : '',
        ]),
      ),
    );
  }
  if (s.blocked.length) {
    out.push('', 'blocked');
    out.push(...formatBlockedRows(s.blocked, nowMs));
  }
  const recent = [...s.history].sort((a, b) => Date.parse(b.at) - Date.parse(a.at)).slice(0, 5);
  if (recent.length) {
    out.push('', 'recent');
    out.push(...table(recent.map((h) => [rel(h.at, nowMs), h.event, historyLine(h)])));
  }
  return out.join('\n') + '\n';
}

/** molt's own version and updates (MOLT_SELF): the rows the app has, under "molt itself". */
export function formatSelf(m: SelfStatus, nowMs: number): string[] {
  const runs = `${m.running ?? 'unknown'} (PID 1), updater ${m.updater}`;
  if (!m.source) return ['molt itself', ...table([['running', runs], ['updates', 'off (set MOLT_SELF)']])];
  const rows: string[][] = [['running', runs], ['current', m.current ?? "(the image's molt)"]];
  if (m.previous) rows.push(['previous', m.previous]);
  rows.push(['available', m.available ?? 'up to date']);
  rows.push(['source', `${m.source}  policy ${m.policy ?? ''}`]);
  if (m.lastCheck) rows.push(['last check', `${rel(m.lastCheck.at, nowMs)}, ${m.lastCheck.ok ? 'ok' : `failed: ${m.lastCheck.error ?? 'unknown error'}`}`]);
  if (m.trial) {
    const left = (Date.parse(m.trial.deadlineAt) - nowMs) / 1000;
    rows.push(['trial', `${m.trial.version}${m.trial.from ? ` (from ${m.trial.from})` : ''}  ${left > 0 ? `${span(left)} left` : 'deadline passed'}  waiting for PID 1`]);
  }
  for (const b of m.blocked) rows.push(['blocked', `${b.version}  ${b.reason}`]);
  const recent = [...m.history].sort((a, b) => Date.parse(b.at) - Date.parse(a.at)).slice(0, 3);
  for (const h of recent) rows.push(['recent', `${rel(h.at, nowMs)} ${h.event} ${historyLine(h)}`]);
  return ['molt itself', ...table(rows)];
}

function formatBlockedRows(list: BlockedEntry[], nowMs: number): string[] {
  return table(list.map((b) => [b.version, rel(b.at, nowMs), b.reason]));
}

export function formatBlocked(list: BlockedEntry[], nowMs: number): string {
  if (!list.length) return 'no blocked versions\n';
  return formatBlockedRows(list, nowMs).join('\n') + '\n';
}

const phaseWords: Partial<Record<UpdatePhase, string>> = {
  checking: 'checking for releases',
  downloading: 'downloading',
  staged: 'downloaded and verified',
  stopping: 'stopping the app',
  swapping: 'switching versions',
  starting: 'starting the app',
  trial: 'on trial',
  committed: 'committed',
  'rolling-back': 'rolling back',
};

/** Turns successive status snapshots into output for a waiting command: a bar redrawn in
 *  place on a terminal, or phase lines and a percentage line every 10% (or 5 s) otherwise. */
export class ProgressReporter {
  private phase: UpdatePhase | undefined;
  private lastPct = -1;
  private lastLineAt = 0;
  private barShown = false;

  /** `version`: what the action is about, for lines printed before the updater reports it. */
  constructor(
    private readonly tty: boolean,
    private readonly version?: string,
  ) {}

  /** The text to write for this snapshot (possibly empty). */
  step(s: UpdaterStatus, nowMs: number): string {
    let out = '';
    if (s.phase !== this.phase) {
      out += this.endBar();
      this.phase = s.phase;
      const words = phaseWords[s.phase];
      if (words) {
        let line = `molt: ${words}`;
        const v = s.download?.version ?? this.version;
        if (s.phase === 'downloading' && v) line += ` ${v}`;
        if (s.phase === 'trial' && s.trial) line += ` ${s.trial.version} (deadline ${rel(s.trial.deadlineAt, nowMs)})`;
        out += line + '\n';
      }
    }
    if (s.phase === 'downloading' && s.download) {
      const d = s.download;
      if (this.tty) {
        out += `\r  ${progressBar(d.bytes, d.total)}\x1b[K`;
        this.barShown = true;
      } else {
        const pct = percent(d.bytes, d.total);
        const step = pct === undefined ? undefined : Math.floor(pct / 10) * 10;
        if ((step !== undefined && step > this.lastPct) || nowMs - this.lastLineAt >= 5000) {
          if (step !== undefined) this.lastPct = step;
          this.lastLineAt = nowMs;
          out += `molt: download ${d.version} ${pct === undefined ? bytes(d.bytes) : `${pct}% (${bytes(d.bytes)} of ${bytes(d.total!)})`}\n`;
        }
      }
    }
    return out;
  }

  /** Finish a bar line before anything else is printed. */
  endBar(): string {
    if (!this.barShown) return '';
    this.barShown = false;
    return '\n';
  }
}
