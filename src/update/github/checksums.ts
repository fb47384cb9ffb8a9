// Integrity data for a GitHub asset: the `digest` field ("sha256:<hex>"), or
// a checksum asset published beside it (SHA256SUMS, checksums.txt as
// goreleaser names it, <asset>.sha256), in sha256sum or BSD format.

import type { AssetInfo } from './assets.js';

const HEX64 = /^[0-9a-fA-F]{64}$/;

/**
 * Read GitHub's `digest` field: "sha256:<hex>" -> normalised lower case; null/absent or another
 * algorithm -> undefined (fall back to a checksum asset); a malformed sha256 value -> Error.
 */
export function parseDigestField(d: unknown): string | undefined {
  if (d === null || d === undefined || d === '') return undefined;
  if (typeof d !== 'string') throw new Error(`digest is not a string`);
  const m = /^([a-z0-9]+):(.*)$/i.exec(d);
  if (!m) throw new Error(`digest ${JSON.stringify(d)} is not "<algorithm>:<hex>"`);
  if (m[1]!.toLowerCase() !== 'sha256') return undefined;
  if (!HEX64.test(m[2]!)) throw new Error(`digest ${JSON.stringify(d)} is not sha256:<64 hex digits>`);
  return `sha256:${m[2]!.toLowerCase()}`;
}

function cleanName(n: string): string {
  return n.trim().replace(/^\*/, '').replace(/^\.\//, '');
}

/**
 * Parse a checksum file into name -> "sha256:<hex>". Accepts `sha256sum` lines ("<hex>  name",
 * "<hex> *name"), BSD lines ("SHA256 (name) = <hex>"), and a lone "<hex>" (an <asset>.sha256 file),
 * which is returned under the key "" for the caller to attach to its asset. Other lines are ignored.
 */
export function parseChecksumFile(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const bsd = /^SHA256\s*\((.+)\)\s*=\s*([0-9a-fA-F]{64})$/.exec(line);
    if (bsd) {
      out.set(cleanName(bsd[1]!), `sha256:${bsd[2]!.toLowerCase()}`);
      continue;
    }
    const gnu = /^([0-9a-fA-F]{64})(?:\s+(.+))?$/.exec(line);
    if (gnu) out.set(gnu[2] ? cleanName(gnu[2]) : '', `sha256:${gnu[1]!.toLowerCase()}`);
  }
  return out;
}

/** The checksum of `assetName` in a parsed checksum file (a lone hash counts for a per-asset file). */
export function lookupChecksum(sums: Map<string, string>, assetName: string, perAsset: boolean): string | undefined {
  const named = sums.get(assetName);
  if (named) return named;
  // "path/to/app.tar.gz" in the file still names our asset.
  for (const [k, v] of sums) if (k.split('/').pop() === assetName) return v;
  if (perAsset) return sums.get('') ?? (sums.size === 1 ? [...sums.values()][0] : undefined);
  return undefined;
}

export interface ChecksumSource {
  asset: AssetInfo;
  /** True for <asset>.sha256: a lone hash in it belongs to our asset. */
  perAsset: boolean;
}

/** Checksum assets that could cover `assetName`, most specific first. */
export function checksumAssets(assets: AssetInfo[], assetName: string): ChecksumSource[] {
  const lower = assetName.toLowerCase();
  const per = assets.filter((a) => [`${lower}.sha256`, `${lower}.sha256sum`].includes(a.name.toLowerCase()));
  const lists = assets.filter((a) => {
    const n = a.name.toLowerCase();
    return n === 'sha256sums' || n === 'sha256sums.txt' || n === 'checksums.txt' || n.endsWith('_checksums.txt') || n.endsWith('-checksums.txt') || n.endsWith('.sha256sums');
  });
  return [...per.map((asset) => ({ asset, perAsset: true })), ...lists.map((asset) => ({ asset, perAsset: false }))];
}
