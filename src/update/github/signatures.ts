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

export async function assetSignatures(ctx: AssetContext, assets: AssetInfo[], name: string, tag: string, signal?: AbortSignal): Promise<ReleaseSignatures> {
  const n = signatureFileNames(name);
  const read = async (file: string): Promise<Buffer | undefined> => {
    const a = assets.find((x) => x.name === file);
    return a ? readSmallAssetBytes(ctx, a, tag, signal, 'signature asset') : undefined;
  };
  // One after another: each is a request against the rate limit, and most releases have one or two.
  const minisig = await read(n.minisig);
  const sig = await read(n.sig);
  const bundle = await read(n.bundle);
  const sumsMinisig = await read(n.sumsMinisig);
  const sumsSig = await read(n.sumsSig);
  const sums = sumsMinisig || sumsSig ? await read(n.sums) : undefined;
  const out: ReleaseSignatures = {};
  if (minisig) out.minisig = minisig;
  if (sig) out.sig = sig;
  if (bundle) out.bundles = [bundle];
  if (sums) out.sums = { name: n.sums, content: sums, ...(sumsMinisig ? { minisig: sumsMinisig } : {}), ...(sumsSig ? { sig: sumsSig } : {}) };
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
