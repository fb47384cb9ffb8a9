// Pushing a release's signature next to it (`molt publish --sign KEY`), in the places
// oci/signatures.ts reads: a PEM key's signature as cosign does (a simple-signing payload under
// the `sha256-<hex>.sig` tag, appended to the signatures already there), a minisign signature
// or a Sigstore bundle as an OCI 1.1 referrer. A registry that does not answer a referrer's
// PUT with OCI-Subject has no referrers API, so the referrers tag schema's index is updated
// too (read, add, write back), as oras and cosign do.
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { logger } from '../../common/log.js';
import { UpdateError } from '../types.js';
import type { SigningKey } from '../trust/sign.js';
import { signMinisign } from '../trust/minisign.js';
import { signPem } from '../trust/pem.js';
import type { RegistryClient } from './client.js';
import { sha256Hex } from './errors.js';
import { ANN, MT, type Descriptor, type ImageIndex } from './manifest.js';
import { addToReferrersIndex, buildCosignManifest, buildReferrerManifest, buildSimpleSigning, cosignSignatureTag, referrersTag, repositoryName, SIG } from './referrers.js';

const log = logger('publish');

/** A small blob, unless the registry has it. */
export async function pushSmall(client: RegistryClient, bytes: Buffer, signal?: AbortSignal): Promise<Descriptor> {
  const digest = sha256Hex(bytes);
  if (!(await client.blobExists(digest, signal))) await client.uploadBlob(digest, bytes.length, (s, e) => Readable.from([bytes.subarray(s, e)]), { signal });
  return { mediaType: MT.octetStream, digest, size: bytes.length };
}

/** A manifest that may be absent (404) or not what is expected: undefined then, so it is written afresh. */
export async function maybeManifest(client: RegistryClient, tag: string, signal?: AbortSignal) {
  try {
    return await client.getManifest(tag, signal);
  } catch (err) {
    if (err instanceof UpdateError && (err.code === 'not-found' || err.code === 'bad-input')) return undefined;
    throw err;
  }
}

/** Attach `blob` to `subject` as a referrer of `artifactType`; returns the referrer's digest. */
export async function attachReferrer(
  client: RegistryClient,
  subject: Descriptor,
  artifact: { artifactType: string; blob: Buffer; mediaType: string; title: string },
  opts: { signal?: AbortSignal; now?: () => Date } = {},
): Promise<string> {
  const layer = { ...(await pushSmall(client, artifact.blob, opts.signal)), mediaType: artifact.mediaType, annotations: { [ANN.title]: artifact.title } };
  await pushSmall(client, Buffer.from('{}'), opts.signal);
  const manifest = buildReferrerManifest(subject, artifact.artifactType, layer, (opts.now?.() ?? new Date()).toISOString());
  const put = await client.putManifestFull(sha256Hex(manifest), manifest, MT.ociManifest, opts.signal);
  if (put.ociSubject === subject.digest) {
    log.info('referrer attached', { subject: subject.digest, referrer: put.digest, via: 'referrers API' });
    return put.digest;
  }
  const tag = referrersTag(subject.digest);
  const had = await maybeManifest(client, tag, opts.signal);
  const index = addToReferrersIndex(had?.manifest.kind === 'index' ? (had.manifest as ImageIndex) : undefined, {
    mediaType: MT.ociManifest,
    digest: put.digest,
    size: manifest.length,
    artifactType: artifact.artifactType,
  });
  await client.putManifest(tag, index, MT.ociIndex, opts.signal);
  log.info('referrer attached', { subject: subject.digest, referrer: put.digest, via: `referrers tag ${tag}` });
  return put.digest;
}

/** cosign's way: the simple-signing payload for (repository, digest), signed, added to the `.sig` tag's manifest. */
export async function pushCosignSignature(client: RegistryClient, digest: string, key: Extract<SigningKey, { kind: 'pem' }>, signal?: AbortSignal): Promise<string> {
  const payload = buildSimpleSigning(repositoryName(client.ref), digest);
  const signature = signPem(key.key, payload);
  const layer: Descriptor = { ...(await pushSmall(client, payload, signal)), mediaType: SIG.simpleSigning, annotations: { [SIG.cosignAnnotation]: signature } };
  const tag = cosignSignatureTag(digest);
  const had = await maybeManifest(client, tag, signal);
  // Signatures already there stay (every key signs the same payload); only an identical one (Ed25519 is deterministic) is not added twice.
  const same = (l: Descriptor) => l.digest === layer.digest && l.annotations?.[SIG.cosignAnnotation] === signature;
  const kept = had?.manifest.kind === 'manifest' ? had.manifest.layers.filter((l) => l.mediaType === SIG.simpleSigning && !same(l)) : [];
  const { manifest, config } = buildCosignManifest([...kept, layer]);
  await pushSmall(client, config, signal);
  await client.putManifest(tag, manifest, MT.ociManifest, signal);
  log.info('signature pushed', { digest, tag, key: key.keyId });
  return tag;
}

/** Sign the release manifest `subject` (whose bytes are `bytes`) with `key` and push the signature where molt reads it. */
export async function pushSignature(client: RegistryClient, subject: Descriptor, bytes: Buffer, key: SigningKey, opts: { signal?: AbortSignal; now?: () => Date } = {}): Promise<string> {
  if (key.kind === 'pem') return pushCosignSignature(client, subject.digest, key, opts.signal);
  const blake = createHash('blake2b512').update(bytes).digest();
  const minisig = Buffer.from(signMinisign(key.key, blake, repositoryName(client.ref), (opts.now?.() ?? new Date()).getTime() / 1000));
  return attachReferrer(client, subject, { artifactType: SIG.minisig, blob: minisig, mediaType: SIG.minisig, title: `${subject.digest.replace(':', '-')}.minisig` }, opts);
}
