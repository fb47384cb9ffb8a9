// What list() keeps in state.json to fetch a GitHub release later, and its check when read back.
import { UpdateError, type Release } from '../types.js';
import { selectAsset, type AssetInfo, type Platform } from './assets.js';
import { parseRelease, type GhRelease } from './releases.js';
import { versionFromTag } from './tags.js';

/** What list() keeps in state.json to fetch a release later. */
export interface Locator {
  source: 'github';
  repo: string;
  releaseId: number;
  tag: string;
  assets: AssetInfo[];
  /** The release's upload_url (fleet verdicts are uploaded there); absent in older state.json. */
  uploadUrl?: string;
}

export function parseLocator(l: Record<string, unknown>, repo: string): Locator {
  const bad = (what: string) => new UpdateError(`GitHub release locator for ${repo} is malformed: ${what}`, 'bad-input');
  if (l.source !== 'github') throw bad('not a github locator');
  if (typeof l.repo !== 'string' || l.repo !== repo) throw bad(`repo ${JSON.stringify(l.repo)} is not ${repo}`);
  if (typeof l.tag !== 'string' || typeof l.releaseId !== 'number' || !Array.isArray(l.assets)) throw bad('tag, releaseId or assets missing');
  try {
    // Reuse the release parser's checks for the stored asset list.
    const r = parseRelease({ id: l.releaseId, tag_name: l.tag, draft: false, prerelease: false, assets: l.assets, upload_url: l.uploadUrl }, 'locator');
    return { source: 'github', repo, releaseId: r.id, tag: r.tag, assets: r.assets, ...(r.uploadUrl ? { uploadUrl: r.uploadUrl } : {}) };
  } catch (e) {
    throw bad((e as Error).message);
  }
}

/**
 * A GitHub release as molt lists it, with the locator to fetch it later; undefined for a
 * draft (never, even when a token with push access lets us see one), or why its tag is skipped. Pure.
 */
export function releaseOf(r: GhRelease, repo: string, platform: Platform, assetGlob?: string): Release | string | undefined {
  if (r.draft) return undefined;
  const version = versionFromTag(r.tag);
  if (!version) return 'not usable as a version directory name';
  const sel = selectAsset(r.assets, platform, version, assetGlob);
  const locator: Locator = { source: 'github', repo, releaseId: r.id, tag: r.tag, assets: r.assets, ...(r.uploadUrl ? { uploadUrl: r.uploadUrl } : {}) };
  const rel: Release = { version, tag: r.tag, prerelease: r.prerelease, locator: locator as unknown as Record<string, unknown> };
  if (r.publishedAt) rel.publishedAt = r.publishedAt;
  if (sel.ok && sel.asset.digest) rel.digest = sel.asset.digest;
  return rel;
}
