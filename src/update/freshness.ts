// How fresh molt's view of its release source is (TUF's "indefinite freeze"):
// a source that keeps serving the same answer (the same ETag and 304, the same
// old tag list) looks exactly like a project that released nothing new, and
// without a signed timestamp from the publisher molt cannot tell the two apart.
// What it can do honestly is say how old each thing it knows is, and warn when
// the source has not answered at all for longer than MOLT_STALE_AFTER:
//   - last success: the last poll the source answered (200 or 304 alike);
//   - last change: the last poll whose answer differed from the one before;
//   - newest release: the publish time the source gives its newest release.
// Pure: the updater feeds polls in (noteAnswer) and asks for a judgment.
import { createHash } from 'node:crypto';
import type { SourceFreshness } from '../api/types.js';
import type { Release } from './types.js';

/** What state.json keeps about the source's answers (it survives restarts). */
export interface SourceRecord {
  /** ISO time of the last poll the source answered. */
  lastSuccessAt: string;
  /** ISO time of the last answer that differed from the one before. */
  lastChangeAt: string;
  /** Fingerprint of that answer (sha256 of the listed releases). */
  fingerprint: string;
  /** The newest publish time among the listed releases, when the source gives one. */
  newestPublishedAt?: string;
  newestVersion?: string;
}

/** The judgment, as /api/status, `molt status`, /metrics and the page show it. */
export type Freshness = SourceFreshness;

const DAY_MS = 24 * 3600_000;

/** MOLT_STALE_AFTER's default: a day, or ten poll intervals when those are longer. */
export function defaultStaleAfterMs(intervalMs: number): number {
  return Math.max(DAY_MS, 10 * intervalMs);
}

/** The same list of releases (order aside) gives the same fingerprint; any changed field another. */
export function releasesFingerprint(releases: readonly Release[]): string {
  const canon = [...releases]
    .map((r) => JSON.stringify([r.version, r.tag, r.prerelease, r.digest ?? null, r.publishedAt ?? null, r.locator]))
    .sort();
  return createHash('sha256').update(canon.join('\n')).digest('hex');
}

function newest(releases: readonly Release[]): { at: string; version: string } | undefined {
  let best: { t: number; at: string; version: string } | undefined;
  for (const r of releases) {
    const t = Date.parse(r.publishedAt ?? '');
    if (Number.isFinite(t) && (!best || t > best.t)) best = { t, at: new Date(t).toISOString(), version: r.version };
  }
  return best && { at: best.at, version: best.version };
}

/** The record after a poll the source answered at `nowIso` with `releases`. */
export function noteAnswer(prev: SourceRecord | undefined, releases: readonly Release[], nowIso: string): SourceRecord {
  const fingerprint = releasesFingerprint(releases);
  const n = newest(releases);
  return {
    lastSuccessAt: nowIso,
    lastChangeAt: prev && prev.fingerprint === fingerprint ? prev.lastChangeAt : nowIso,
    fingerprint,
    ...(n ? { newestPublishedAt: n.at, newestVersion: n.version } : {}),
  };
}

/**
 * The judgment at `nowMs`. `startedAt` (ISO) is when this updater began: with
 * no answer ever recorded, the age counts from there. A clock that went back
 * gives an age of 0, never a negative one.
 */
export function judgeFreshness(nowMs: number, record: SourceRecord | undefined, startedAt: string, staleAfterMs: number): Freshness {
  const from = Date.parse(record?.lastSuccessAt ?? startedAt);
  const ageMs = Number.isFinite(from) ? Math.max(0, nowMs - from) : 0;
  return {
    ...(record ? { lastSuccessAt: record.lastSuccessAt, lastChangeAt: record.lastChangeAt } : {}),
    ...(record?.newestPublishedAt ? { newestPublishedAt: record.newestPublishedAt, newestVersion: record.newestVersion } : {}),
    lastSuccessAgeSeconds: Math.floor(ageMs / 1000),
    stale: ageMs > staleAfterMs,
    staleAfterSeconds: Math.round(staleAfterMs / 1000),
  };
}

/** A stale record from state.json that is not an object of strings is dropped, not trusted. */
export function parseSourceRecord(raw: unknown): SourceRecord | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  const r = raw as Record<string, unknown>;
  const iso = (v: unknown) => typeof v === 'string' && Number.isFinite(Date.parse(v));
  if (!iso(r.lastSuccessAt) || !iso(r.lastChangeAt) || typeof r.fingerprint !== 'string') return undefined;
  const out: SourceRecord = { lastSuccessAt: r.lastSuccessAt as string, lastChangeAt: r.lastChangeAt as string, fingerprint: r.fingerprint };
  if (iso(r.newestPublishedAt) && typeof r.newestVersion === 'string') {
    out.newestPublishedAt = r.newestPublishedAt as string;
    out.newestVersion = r.newestVersion;
  }
  return out;
}
