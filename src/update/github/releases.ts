// GitHub release JSON -> checked records. Only the fields molt uses are read,
// and each is checked, so a proxy's HTML page or a truncated body becomes one
// clear error instead of an undefined deep inside the updater.

import type { AssetInfo } from './assets.js';
import { parseDigestField } from './checksums.js';
import { UpdateError } from '../types.js';

export interface GhRelease {
  id: number;
  tag: string;
  name?: string;
  draft: boolean;
  prerelease: boolean;
  publishedAt?: string;
  assets: AssetInfo[];
  /** Where assets are uploaded (a URI template ending in {?name,label}); fleet verdicts only. */
  uploadUrl?: string;
}

export class MalformedRelease extends Error {}

/** `parse()`'s MalformedRelease as the updater's one-line bad-input error. */
export function checkedRelease<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof MalformedRelease) throw new UpdateError(`malformed release JSON from ${e.message}`, 'bad-input');
    throw e;
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseAsset(a: unknown, where: string): AssetInfo {
  if (!isObj(a)) throw new MalformedRelease(`${where}: asset is not an object`);
  const { id, name, size, url, digest } = a;
  if (typeof id !== 'number' || !Number.isSafeInteger(id)) throw new MalformedRelease(`${where}: asset id is not an integer`);
  if (typeof name !== 'string' || name === '') throw new MalformedRelease(`${where}: asset ${id} has no name`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new MalformedRelease(`${where}: asset ${name} has no valid size`);
  if (typeof url !== 'string' || !/^https?:\/\//.test(url)) throw new MalformedRelease(`${where}: asset ${name} has no API url`);
  let d: string | undefined;
  try {
    d = parseDigestField(digest);
  } catch (e) {
    throw new MalformedRelease(`${where}: asset ${name}: ${(e as Error).message}`);
  }
  return d ? { id, name, size, url, digest: d } : { id, name, size, url };
}

export function parseRelease(r: unknown, where: string): GhRelease {
  if (!isObj(r)) throw new MalformedRelease(`${where}: release is not an object`);
  const { id, tag_name, name, draft, prerelease, published_at, assets, upload_url } = r;
  if (typeof id !== 'number' || !Number.isSafeInteger(id)) throw new MalformedRelease(`${where}: release id is not an integer`);
  if (typeof tag_name !== 'string' || tag_name === '') throw new MalformedRelease(`${where}: release ${id} has no tag_name`);
  const w = `${where} ${tag_name}`;
  if (typeof draft !== 'boolean') throw new MalformedRelease(`${w}: draft is not a boolean`);
  if (typeof prerelease !== 'boolean') throw new MalformedRelease(`${w}: prerelease is not a boolean`);
  if (!Array.isArray(assets)) throw new MalformedRelease(`${w}: assets is not a list`);
  const out: GhRelease = { id, tag: tag_name, draft, prerelease, assets: assets.map((a) => parseAsset(a, w)) };
  if (typeof name === 'string' && name) out.name = name;
  if (typeof published_at === 'string') out.publishedAt = published_at;
  if (typeof upload_url === 'string' && /^https?:\/\//.test(upload_url)) out.uploadUrl = upload_url;
  return out;
}

export function parseReleaseList(data: unknown, where: string): GhRelease[] {
  if (!Array.isArray(data)) {
    const what = typeof data === 'string' ? `text ${JSON.stringify(data.slice(0, 40))}` : data === null ? 'null' : typeof data;
    throw new MalformedRelease(`${where}: expected a JSON list of releases, got ${what}`);
  }
  return data.map((r) => parseRelease(r, where));
}
