// The signatures of a GitHub release asset, published as assets of the same
// release under the same names as beside a MOLT_DIR tarball: `<asset>.minisig`,
// `<asset>.sig`, `<asset>.sigstore.json`, and a SHA256SUMS with its own
// `.minisig`/`.sig`. Each is read whole but bounded (CHECKSUM_MAX_BYTES). For a
// pinned keyless identity, GitHub's artifact attestations for the asset's
// digest are Sigstore bundles too.
import type { ReleaseSignatures } from '../trust/release.js';
import { signatureFileNames } from '../trust/gate.js';
import type { AssetInfo } from './assets.js';
import { CHECKSUM_MAX_BYTES, readSmallAssetBytes, type AssetContext } from './asset-stream.js';

/** A small asset's bytes by asset, each asset downloaded at most once per fetch (see smallAssets). */
export type SmallAssetReader = (a: AssetInfo, what: string) => Promise<Buffer>;

/**
 * The small assets of one release, each read once: a SHA256SUMS that gives the asset's digest
 * is also the signed list the trust check reads, one request for both.
 */
export function smallAssets(ctx: AssetContext, tag: string, signal?: AbortSignal): SmallAssetReader {
  const seen = new Map<number, Promise<Buffer>>();
  return (a, what) => {
    let p = seen.get(a.id);
    if (!p) {
      p = readSmallAssetBytes(ctx, a, tag, signal, what);
      seen.set(a.id, p);
    }
    return p;
  };
}

export async function assetSignatures(read: SmallAssetReader, assets: AssetInfo[], name: string): Promise<ReleaseSignatures> {
  const n = signatureFileNames(name);
  const get = async (file: string, what = 'signature asset'): Promise<Buffer | undefined> => {
    const a = assets.find((x) => x.name === file);
    return a ? read(a, what) : undefined;
  };
  const has = (file: string) => assets.some((x) => x.name === file);
  // All at once, not a round trip each one after another; only those the release has (each
  // is a request against the rate limit).
  const [minisig, sig, bundle, sumsMinisig, sumsSig, sums] = await Promise.all([
    get(n.minisig),
    get(n.sig),
    get(n.bundle),
    get(n.sumsMinisig),
    get(n.sumsSig),
    has(n.sumsMinisig) || has(n.sumsSig) ? get(n.sums, 'checksum asset') : undefined,
  ]);
  const out: ReleaseSignatures = {};
  if (minisig) out.minisig = minisig;
  if (sig) out.sig = sig;
  if (bundle) out.bundles = [bundle];
  if (sums && (sumsMinisig || sumsSig)) out.sums = { name: n.sums, content: sums, ...(sumsMinisig ? { minisig: sumsMinisig } : {}), ...(sumsSig ? { sig: sumsSig } : {}) };
  return out;
}

/** At most this many attestations are checked per digest (the API pages up to 100). */
export const MAX_ATTESTATIONS = 10;

/**
 * The Sigstore bundles in an answer of GitHub's attestations API
 * (`{"attestations": [{"bundle": {...}}]}`), each as JSON bytes of at most
 * CHECKSUM_MAX_BYTES; anything else in the answer is no evidence.
 */
export function attestationBundles(data: unknown): Uint8Array[] {
  const list = (data as { attestations?: unknown } | null)?.attestations;
  if (!Array.isArray(list)) return [];
  const out: Uint8Array[] = [];
  for (const a of list.slice(0, MAX_ATTESTATIONS)) {
    const bundle = (a as { bundle?: unknown } | null)?.bundle;
    if (!bundle || typeof bundle !== 'object') continue;
    const bytes = Buffer.from(JSON.stringify(bundle));
    if (bytes.length <= CHECKSUM_MAX_BYTES) out.push(bytes);
  }
  return out;
}
