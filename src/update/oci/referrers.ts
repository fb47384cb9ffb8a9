// Signatures stored in an OCI registry, as formats (pure): cosign's `sha256-<hex>.sig` tag of
// simple-signing payloads, and OCI 1.1 referrers (a manifest whose `subject` is the release's
// manifest), listed by the referrers API or, where a registry has none (Debian's docker-registry
// 2.8), by the referrers tag schema: an image index under the tag `sha256-<hex>`.
import { UpdateError } from '../types.js';
import { EMPTY_CONFIG, MT, parseManifest, type Descriptor, type ImageIndex, type ImageManifest } from './manifest.js';
import { DIGEST_RE, parseReference, type OciReference } from './reference.js';
import { sha256Hex } from './errors.js';

export const SIG = {
  /** cosign's payload layer in a `.sig` manifest, and the layer annotation carrying its base64 signature. */
  simpleSigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
  cosignAnnotation: 'dev.cosignproject.cosign/signature',
  /** cosign's signature manifest when stored as a referrer (same layers as a `.sig` manifest). */
  cosignReferrer: 'application/vnd.dev.cosign.artifact.sig.v1+json',
  /** A Sigstore bundle referrer, as `oras attach`, cosign and GitHub's attest action push it. */
  bundle: 'application/vnd.dev.sigstore.bundle.v0.3+json',
  /** molt's own: a .minisig over the release manifest's bytes (`molt publish --sign minisign.key`). */
  minisig: 'application/vnd.molt.minisig.v1',
  imageConfig: 'application/vnd.oci.image.config.v1+json',
} as const;

/** The type of a simple-signing payload cosign writes; the older containers/image one has the same shape. */
const PAYLOAD_TYPES = new Set(['cosign container image signature', 'atomic container signature']);

function hexOf(digest: string): string {
  if (!DIGEST_RE.test(digest)) throw new UpdateError(`not a sha256 digest: ${digest.slice(0, 80)}`, 'bad-input');
  return digest.slice('sha256:'.length);
}

/** cosign's tag for the signatures of `digest`: `sha256-<hex>.sig`. */
export function cosignSignatureTag(digest: string): string {
  return `sha256-${hexOf(digest)}.sig`;
}

/** The referrers tag schema's tag for `digest`: `sha256-<hex>` (64 hex digits fit the 128-character tag limit whole). */
export function referrersTag(digest: string): string {
  return `sha256-${hexOf(digest)}`;
}

/** What kind of signature a referrer carries, from its descriptor's (or manifest's) artifactType; undefined: not a signature. */
export function signatureKind(artifactType: string | undefined): 'bundle' | 'minisig' | 'cosign' | undefined {
  const t = (artifactType ?? '').toLowerCase();
  // v0.1-v0.3 in either spelling (`...bundle.v0.3+json`, `...bundle+json;version=0.3`): the library reads them all.
  if (t.startsWith('application/vnd.dev.sigstore.bundle')) return 'bundle';
  if (t === SIG.minisig) return 'minisig';
  if (t === SIG.cosignReferrer) return 'cosign';
  return undefined;
}

/** A referrer's artifact type: its artifactType, else its config's media type (the spec's rule). */
export function artifactTypeOf(m: ImageManifest): string {
  return m.artifactType ?? m.config.mediaType;
}

/** The signature referrers in a referrers index (API answer or tag schema), at most `max`, first listed first. */
export function signatureReferrers(index: ImageIndex, max: number): Array<{ descriptor: Descriptor; kind: 'bundle' | 'minisig' | 'cosign' }> {
  const out: Array<{ descriptor: Descriptor; kind: 'bundle' | 'minisig' | 'cosign' }> = [];
  const seen = new Set<string>();
  for (const d of index.manifests) {
    const kind = signatureKind(d.artifactType);
    if (!kind || seen.has(d.digest)) continue;
    seen.add(d.digest);
    out.push({ descriptor: d, kind });
    if (out.length >= max) break;
  }
  return out;
}

/** Parse a referrers index; throws UpdateError 'bad-input' when it is not an image index. */
export function parseReferrersIndex(bytes: Uint8Array, contentType: string | undefined, where: string): ImageIndex {
  const m = parseManifest(bytes, contentType, where);
  if (m.kind !== 'index') throw new UpdateError(`${where}: the referrers list is not an image index`, 'bad-input');
  return m;
}

/** A referrer manifest (ORAS style: empty config, one layer) attached to `subject` (none: a plain artifact under a tag). */
export function buildReferrerManifest(subject: Descriptor | undefined, artifactType: string, layer: Descriptor, created: string, annotations: Record<string, string> = {}): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      artifactType,
      config: { ...EMPTY_CONFIG },
      layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size, ...(layer.annotations ? { annotations: layer.annotations } : {}) }],
      ...(subject ? { subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size } } : {}),
      annotations: { 'org.opencontainers.image.created': created, ...annotations },
    }),
  );
}

/**
 * The referrers tag schema's index with `entry` added (kept once, by digest), from the index the
 * tag holds now (undefined: none yet). Entries of other tools are kept as they were.
 */
export function addToReferrersIndex(existing: ImageIndex | undefined, entry: Descriptor): Buffer {
  const manifests = (existing?.manifests ?? []).filter((d) => d.digest !== entry.digest);
  manifests.push(entry);
  const strip = (d: Descriptor) => ({
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(d.artifactType ? { artifactType: d.artifactType } : {}),
    ...(d.annotations && Object.keys(d.annotations).length ? { annotations: d.annotations } : {}),
  });
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: manifests.map(strip) }));
}

/** The name a signature binds, as `registry/repository` (tag and digest dropped; Docker Hub's aliases made one). */
export function repositoryName(ref: Pick<OciReference, 'registry' | 'repository'>): string {
  const hub = ref.registry === 'docker.io' || ref.registry === 'index.docker.io' || ref.registry === 'registry-1.docker.io';
  return `${hub ? 'index.docker.io' : ref.registry}/${ref.repository}`;
}

/** A signed name (cosign's docker-reference, an in-toto subject name, minisign's file:) in repositoryName's form, or as written when it is no reference. */
export function normalizeSignedName(name: string): string {
  // Repository names are lower case; GitHub's attest action names `ghcr.io/${{ github.repository }}` as written.
  for (const n of [name, name.toLowerCase()]) {
    try {
      return repositoryName(parseReference(n));
    } catch {
      // not a reference as written
    }
  }
  return name;
}

export interface SimpleSigningPayload {
  /** critical.image.docker-manifest-digest */
  digest: string;
  /** critical.identity.docker-reference, normalized; null when absent. */
  reference: string | null;
}

function field(obj: unknown, key: string): unknown {
  if (typeof obj !== 'object' || obj === null) return undefined;
  const rec = obj as Record<string, unknown>;
  if (key in rec) return rec[key];
  // cosign's reader matches keys case-insensitively (its spec's example writes Docker-manifest-digest).
  const k = Object.keys(rec).find((x) => x.toLowerCase() === key);
  return k === undefined ? undefined : rec[k];
}

/** A simple-signing payload's bytes to what it vouches for, or a reason it is not one. */
export function parseSimpleSigning(payload: Uint8Array): SimpleSigningPayload | string {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    return 'simple-signing payload is not JSON';
  }
  const critical = field(doc, 'critical');
  const type = field(critical, 'type');
  if (typeof type !== 'string' || !PAYLOAD_TYPES.has(type)) return `simple-signing payload of type ${JSON.stringify(type ?? null)}`;
  const digest = field(field(critical, 'image'), 'docker-manifest-digest');
  if (typeof digest !== 'string' || !DIGEST_RE.test(digest)) return 'simple-signing payload without a sha256 docker-manifest-digest';
  const ref = field(field(critical, 'identity'), 'docker-reference');
  return { digest, reference: typeof ref === 'string' && ref !== '' ? normalizeSignedName(ref) : null };
}

/** The payload `molt publish` signs for a PEM key, as cosign writes it. */
export function buildSimpleSigning(reference: string, digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: { identity: { 'docker-reference': reference }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' },
      optional: null,
    }),
  );
}

/**
 * A `.sig` manifest holding `layers` (simple-signing payloads with their signature annotation),
 * and its config: an image config listing the payloads as its (uncompressed) layers, as cosign's is.
 */
export function buildCosignManifest(layers: Descriptor[]): { manifest: Buffer; config: Buffer } {
  const config = Buffer.from(
    JSON.stringify({ architecture: '', os: '', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: SIG.imageConfig, digest: sha256Hex(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size, annotations: l.annotations ?? {} })),
    }),
  );
  return { manifest, config };
}
