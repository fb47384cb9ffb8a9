// What list() keeps in state.json to fetch a GitHub release later, and its check when read back.
import { UpdateError } from '../types.js';
import type { AssetInfo } from './assets.js';
import { parseRelease } from './releases.js';

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
