// The signatures of a GitHub release asset, published as assets of the same
// release under the same names as beside a MOLT_DIR tarball: `<asset>.minisig`,
// `<asset>.sig`, `<asset>.sigstore.json`, and a SHA256SUMS with its own
// `.minisig`/`.sig`. Each is read whole but bounded (CHECKSUM_MAX_BYTES).
import type { ReleaseSignatures } from '../trust/release.js';
import { signatureFileNames } from '../trust/gate.js';
import type { AssetInfo } from './assets.js';
import { readSmallAssetBytes, type AssetContext } from './asset-stream.js';

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
