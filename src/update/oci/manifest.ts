// OCI / Docker v2 manifest types and the pure decisions made on them: which types we accept,
// how a manifest is validated, which index entry fits this machine, what to do with a layer.
import { UpdateError } from '../types.js';
import { DIGEST_RE } from './reference.js';

export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  empty: 'application/vnd.oci.empty.v1+json',
  layerTar: 'application/vnd.oci.image.layer.v1.tar',
  layerTarGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  octetStream: 'application/octet-stream',
  moltRelease: 'application/vnd.molt.release.v1',
} as const;

export const ANN = {
  title: 'org.opencontainers.image.title',
  version: 'org.opencontainers.image.version',
  created: 'org.opencontainers.image.created',
} as const;

/** The empty config blob `{}` every ORAS-style artifact points at. */
export const EMPTY_CONFIG = {
  mediaType: MT.empty,
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
} as const;

/** One Accept header listing every manifest type we can read (registries serve OCI only to clients that ask). */
export const MANIFEST_ACCEPT = [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerList].join(', ');

/** Registries cap manifests at about 4 MB; refuse more rather than buffer it. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface ImageManifest {
  kind: 'manifest';
  mediaType: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations: Record<string, string>;
  /** OCI 1.1: the manifest this one refers to (a signature, an attestation). */
  subject?: Descriptor;
}

export interface ImageIndex {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
  annotations: Record<string, string>;
}

export type AnyManifest = ImageManifest | ImageIndex;

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function strMap(v: unknown, where: string): Record<string, string> {
  if (v === undefined) return {};
  if (!isObj(v)) throw new UpdateError(`malformed manifest: ${where} annotations are not an object`, 'bad-input');
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw new UpdateError(`malformed manifest: annotation '${k}' in ${where} is not a string`, 'bad-input');
    out[k] = val;
  }
  return out;
}

export function parseDescriptor(v: unknown, where: string): Descriptor {
  if (!isObj(v)) throw new UpdateError(`malformed manifest: ${where} is not an object`, 'bad-input');
  const { mediaType, digest, size } = v;
  if (typeof mediaType !== 'string' || mediaType === '') throw new UpdateError(`malformed manifest: ${where} has no mediaType`, 'bad-input');
  if (typeof digest !== 'string') throw new UpdateError(`malformed manifest: ${where} has no digest`, 'bad-input');
  if (!DIGEST_RE.test(digest)) throw new UpdateError(`unsupported digest '${digest.slice(0, 80)}' in ${where} (only sha256 is accepted)`, 'bad-input');
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new UpdateError(`malformed manifest: ${where} has a bad size`, 'bad-input');
  const d: Descriptor = { mediaType, digest, size, annotations: strMap(v.annotations, where) };
  if (typeof v.artifactType === 'string') d.artifactType = v.artifactType;
  if (v.platform !== undefined) {
    const p = v.platform;
    if (!isObj(p) || typeof p.architecture !== 'string' || typeof p.os !== 'string') {
      throw new UpdateError(`malformed manifest: ${where} has a bad platform`, 'bad-input');
    }
    d.platform = { architecture: p.architecture, os: p.os, ...(typeof p.variant === 'string' ? { variant: p.variant } : {}) };
  }
  return d;
}

/** The media type as the registry sent it, parameters dropped (`; charset=utf-8`). */
export function baseMediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

/**
 * Validate manifest bytes. The type comes from the body's mediaType, else from Content-Type;
 * when both are present they must agree (the spec's rule against type confusion).
 */
export function parseManifest(bytes: Uint8Array, contentType: string | undefined, where: string): AnyManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new UpdateError(`malformed manifest JSON for ${where}`, 'bad-input');
  }
  if (!isObj(doc)) throw new UpdateError(`malformed manifest for ${where}: not a JSON object`, 'bad-input');
  if (doc.schemaVersion !== 2) throw new UpdateError(`unsupported manifest schemaVersion ${JSON.stringify(doc.schemaVersion)} for ${where}`, 'bad-input');
  const header = baseMediaType(contentType);
  const body = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  if (body && header && header !== body && header !== 'application/json') {
    throw new UpdateError(`manifest for ${where} says mediaType ${body} but was served as ${header}`, 'bad-input');
  }
  let type = body ?? (header && header !== 'application/json' ? header : undefined);
  // Without any declared type, the shape decides (OCI made mediaType optional).
  if (!type) type = Array.isArray(doc.manifests) ? MT.ociIndex : MT.ociManifest;
  const annotations = strMap(doc.annotations, 'manifest');
  if (type === MT.ociIndex || type === MT.dockerList) {
    if (!Array.isArray(doc.manifests)) throw new UpdateError(`malformed index for ${where}: no manifests list`, 'bad-input');
    const manifests = doc.manifests.map((m, i) => parseDescriptor(m, `manifests[${i}]`));
    return { kind: 'index', mediaType: type, manifests, annotations };
  }
  if (type === MT.ociManifest || type === MT.dockerManifest) {
    if (!Array.isArray(doc.layers)) throw new UpdateError(`malformed manifest for ${where}: no layers list`, 'bad-input');
    const config = parseDescriptor(doc.config, 'config');
    const layers = doc.layers.map((l, i) => parseDescriptor(l, `layers[${i}]`));
    const m: ImageManifest = { kind: 'manifest', mediaType: type, config, layers, annotations };
    if (typeof doc.artifactType === 'string') m.artifactType = doc.artifactType;
    if (doc.subject !== undefined) m.subject = parseDescriptor(doc.subject, 'subject');
    return m;
  }
  throw new UpdateError(`unknown manifest media type '${type.slice(0, 100)}' for ${where}`, 'bad-input');
}

/** Node's process.arch in OCI's GOARCH words. */
export function ociArch(nodeArch: string): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64', mips: 'mips', mipsel: 'mipsle' };
  return map[nodeArch] ?? nodeArch;
}

/** BuildKit puts provenance/SBOM entries in indexes as unknown/unknown; they are never runnable. */
function isAttestation(d: Descriptor): boolean {
  return d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest' || d.platform?.os === 'unknown';
}

/**
 * Pick the index entry for os/arch. Preference: exact variant, then no variant, then any
 * variant (arm64 images are often tagged v8; a missing variant on our side accepts them).
 */
export function choosePlatform(index: ImageIndex, want: { os: string; architecture: string; variant?: string }): Descriptor | undefined {
  const fits = index.manifests.filter((d) => !isAttestation(d) && d.platform?.os === want.os && d.platform.architecture === want.architecture);
  if (want.variant) {
    const exact = fits.find((d) => d.platform?.variant === want.variant);
    if (exact) return exact;
  }
  return fits.find((d) => !d.platform?.variant) ?? fits[0];
}

export type LayerPlan =
  | { action: 'extract'; compressed: boolean; title?: string }
  | { action: 'file'; name: string };

/** A title is used as a file name inside the release: one plain path component, nothing else. */
export function validTitle(title: string | undefined): title is string {
  if (title === undefined || title === '' || title === '.' || title === '..') return false;
  if (title.length > 255 || Buffer.byteLength(title) > 255) return false;
  return !/[/\\\0\x01-\x1f\x7f]/.test(title);
}

/**
 * What to do with one layer: tar archives (`...tar`, `...tar+gzip`, Docker's `.tar.gzip`) are
 * extracted into the release; anything else is saved under its title. zstd cannot be read on
 * Node 20, so it is refused rather than saved as an opaque file the app would not expect.
 */
export function planLayer(d: Descriptor): LayerPlan {
  const mt = d.mediaType.toLowerCase();
  const title = d.annotations?.[ANN.title];
  if (/(\+|\.)zstd$/.test(mt)) throw new UpdateError(`layer ${d.digest} has media type ${d.mediaType}, which molt cannot unpack (zstd); push it as tar+gzip`, 'bad-input');
  const gz = mt.endsWith('tar+gzip') || mt.endsWith('.tar.gzip');
  const plain = mt.endsWith('.tar') || mt === 'application/x-tar';
  if (gz || plain) return { action: 'extract', compressed: gz, ...(validTitle(title) ? { title } : {}) };
  if (title === undefined) throw new UpdateError(`layer ${d.digest} (${d.mediaType}) has no ${ANN.title} annotation to name it`, 'bad-input');
  if (!validTitle(title)) throw new UpdateError(`layer ${d.digest} has an unsafe title ${JSON.stringify(String(title).slice(0, 100))} (a plain file name is required)`, 'bad-input');
  return { action: 'file', name: title };
}

/** A POSIX tar header carries "ustar" at offset 257. ORAS's CLI labels plain files `...tar`; such a
 *  layer is not an archive and is saved under its title instead. */
export function looksLikeTar(head: Uint8Array): boolean {
  if (head.length < 262) return false;
  return Buffer.from(head.subarray(257, 262)).toString('latin1') === 'ustar';
}

/** Version labels are directory names: semver-ish, no separators. A leading "v" is dropped. */
export function versionFromLabel(label: string | undefined): string | undefined {
  if (!label) return undefined;
  const v = label.trim().replace(/^v(?=\d)/, '');
  return /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/.test(v) ? v : undefined;
}

/** The short form used as a version when a followed tag carries no version annotation. */
export function digestLabel(digest: string): string {
  return `sha-${digest.replace(/^sha256:/, '').slice(0, 12)}`;
}
