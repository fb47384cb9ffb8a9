// Finding the signatures of one release manifest in its registry: cosign's `sha256-<hex>.sig`
// tag, and OCI 1.1 referrers (the referrers API, else the referrers tag schema). Every object is
// small and bounded (SIGNATURE_MAX_BYTES), counted (at most a few of each), and the whole search
// has a deadline. What is found is handed over as bytes; trust/oci.ts decides what it proves.
// A signature object that is malformed or too big is reported as broken (a 'bad signature' for
// the decision); a network fault or a 5xx is thrown, so the release is tried again later, not blocked.
import { UpdateError } from '../types.js';
import { SIGNATURE_MAX_BYTES } from '../trust/gate.js';
import type { RegistryClient } from './client.js';
import { httpError, sha256Hex } from './errors.js';
import { discard, header, readBody } from './http.js';
import { MAX_MANIFEST_BYTES, MT, type Descriptor, type ImageIndex, type ImageManifest } from './manifest.js';
import { artifactTypeOf, cosignSignatureTag, parseReferrersIndex, referrersTag, SIG, signatureKind, signatureReferrers } from './referrers.js';

/** At most this many signature referrers, and simple-signing layers per manifest, are read. */
export const MAX_SIGNATURE_OBJECTS = 8;
/** The whole search for one release's signatures ends by then (a registry that trickles is a fault, retried later). */
export const SIGNATURE_DEADLINE_MS = 60_000;

export interface OciSignatureMaterial {
  /** Simple-signing payloads with their base64 signature (a `.sig` tag or a cosign referrer). */
  cosign: Array<{ payload: Buffer; signature: string }>;
  /** Sigstore bundles attached as referrers. */
  bundles: Buffer[];
  /** .minisig files attached as referrers (over the release manifest's bytes). */
  minisigs: Buffer[];
  /** Signature objects that were found but cannot be read as one: each a reason, for the log. */
  broken: string[];
  /** Where they were found, for the log: 'sig-tag', 'referrers-api', 'referrers-tag'. */
  via: string[];
}

export interface DiscoverOptions {
  signal?: AbortSignal;
  /** Read Sigstore bundles (only useful with a keyless identity to check them against). */
  bundles?: boolean;
  deadlineMs?: number;
}

/** A signal that aborts with the caller's or at the deadline (AbortSignal.any is Node >= 20.3). */
function deadline(parent: AbortSignal | undefined, ms: number): { signal: AbortSignal; expired(): boolean; done(): void } {
  const ac = new AbortController();
  let expired = false;
  const t = setTimeout(() => {
    expired = true;
    ac.abort();
  }, ms);
  const onAbort = () => ac.abort();
  if (parent?.aborted) ac.abort();
  parent?.addEventListener('abort', onAbort, { once: true });
  return { signal: ac.signal, expired: () => expired, done: () => (clearTimeout(t), parent?.removeEventListener('abort', onAbort)) };
}

/** Run one fetch: absent (404) is undefined, malformed or oversized is recorded as broken, anything else is thrown. */
async function tryFetch<T>(what: string, broken: string[], f: () => Promise<T>): Promise<T | undefined> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof UpdateError && err.code === 'not-found') return undefined;
    if (err instanceof UpdateError && err.code === 'bad-input') {
      broken.push(`${what}: ${err.message}`);
      return undefined;
    }
    throw err;
  }
}

/** A small blob, whole, proven by its digest; more than SIGNATURE_MAX_BYTES is refused unread. */
export async function smallBlob(client: RegistryClient, d: Descriptor, signal?: AbortSignal): Promise<Buffer> {
  if (d.size > SIGNATURE_MAX_BYTES) throw new UpdateError(`blob ${d.digest} of ${d.size} bytes is larger than ${SIGNATURE_MAX_BYTES} bytes`, 'bad-input');
  const { body } = await client.openBlob(d.digest, signal);
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of body) {
      n += c.length;
      if (n > d.size) throw new UpdateError(`blob ${d.digest}: more than its ${d.size} bytes`, 'bad-input');
      chunks.push(Buffer.from(c)); // a copy: the body reuses its buffers
    }
  } catch (err) {
    body.destroy();
    if (err instanceof UpdateError) throw err;
    throw new UpdateError(`blob ${d.digest}: ${(err as Error).message}`, 'network');
  }
  const bytes = Buffer.concat(chunks);
  if (bytes.length !== d.size) throw new UpdateError(`blob ${d.digest}: ${bytes.length} of ${d.size} bytes`, 'network');
  if (sha256Hex(bytes) !== d.digest) throw new UpdateError(`blob ${d.digest} does not match its digest`, 'integrity');
  return bytes;
}

/** The signature manifest at `reference`, bounded; 'bad-input' when it is an index or too big. */
async function signatureManifest(client: RegistryClient, reference: string, signal: AbortSignal): Promise<ImageManifest> {
  const m = await client.getManifest(reference, signal, SIGNATURE_MAX_BYTES);
  if (m.manifest.kind !== 'manifest') throw new UpdateError(`${reference} is an image index, not a signature manifest`, 'bad-input');
  return m.manifest;
}

/** The simple-signing layers of a cosign signature manifest, each with its signature annotation. */
async function cosignLayers(client: RegistryClient, m: ImageManifest, where: string, out: OciSignatureMaterial, signal: AbortSignal): Promise<void> {
  const layers = m.layers.filter((l) => l.mediaType === SIG.simpleSigning).slice(0, MAX_SIGNATURE_OBJECTS);
  if (layers.length === 0) out.broken.push(`${where}: no ${SIG.simpleSigning} layer`);
  for (const l of layers) {
    const signature = l.annotations?.[SIG.cosignAnnotation];
    if (!signature) {
      out.broken.push(`${where}: layer ${l.digest} has no ${SIG.cosignAnnotation} annotation`);
      continue;
    }
    const payload = await tryFetch(`${where}: payload ${l.digest}`, out.broken, () => smallBlob(client, l, signal));
    if (payload) out.cosign.push({ payload, signature });
  }
}

/**
 * The referrers of `digest`: the referrers API's answer, else (404: the registry has none, as
 * Debian's docker-registry 2.8) the index under the referrers tag schema's tag. The tag is also
 * read when the API lists no signature: a client may have written it before the registry had the API.
 */
async function referrers(client: RegistryClient, digest: string, out: OciSignatureMaterial, signal: AbortSignal): Promise<ImageIndex[]> {
  const found: ImageIndex[] = [];
  const res = await client.call('GET', client.url(`referrers/${digest}`), { headers: { accept: MT.ociIndex }, signal, idempotent: true });
  if (res.status === 200) {
    const index = await tryFetch('referrers API answer', out.broken, async () =>
      parseReferrersIndex(await readBody(res, MAX_MANIFEST_BYTES, 'referrers list'), header(res, 'content-type'), `referrers of ${digest}`),
    );
    if (index) {
      out.via.push('referrers-api');
      found.push(index);
      if (signatureReferrers(index, 1).length > 0) return found;
    }
  } else {
    discard(res);
    // 404 is the spec's "no referrers API"; some registries answer 400/405/501 for an unknown route.
    if (![400, 404, 405, 501].includes(res.status)) throw httpError(`${client.ref.registry}/${client.ref.repository}: GET referrers/${digest}: HTTP ${res.status}`, res.status);
  }
  const tag = referrersTag(digest);
  const tagged = await tryFetch(`referrers tag ${tag}`, out.broken, async () => {
    const m = await client.getManifest(tag, signal);
    if (m.manifest.kind !== 'index') throw new UpdateError(`referrers tag ${tag} does not hold an image index`, 'bad-input');
    return m.manifest;
  });
  if (tagged) {
    out.via.push('referrers-tag');
    found.push(tagged);
  }
  return found;
}

/** Everything that may sign the release manifest `digest`. */
export async function discoverSignatures(client: RegistryClient, digest: string, opts: DiscoverOptions = {}): Promise<OciSignatureMaterial> {
  const out: OciSignatureMaterial = { cosign: [], bundles: [], minisigs: [], broken: [], via: [] };
  const ms = opts.deadlineMs ?? SIGNATURE_DEADLINE_MS;
  const dl = deadline(opts.signal, ms);
  const signal = dl.signal;
  try {
    const sigTag = cosignSignatureTag(digest);
    const sig = await tryFetch(`signature tag ${sigTag}`, out.broken, () => signatureManifest(client, sigTag, signal));
    if (sig) {
      out.via.push('sig-tag');
      await cosignLayers(client, sig, `signature tag ${sigTag}`, out, signal);
    }
    const seen = new Set<string>();
    for (const index of await referrers(client, digest, out, signal)) {
      for (const { descriptor, kind } of signatureReferrers(index, MAX_SIGNATURE_OBJECTS)) {
        if (seen.has(descriptor.digest) || seen.size >= MAX_SIGNATURE_OBJECTS) continue;
        seen.add(descriptor.digest);
        if (kind === 'bundle' && !opts.bundles) continue;
        const where = `referrer ${descriptor.digest}`;
        const m = await tryFetch(where, out.broken, () => signatureManifest(client, descriptor.digest, signal));
        if (!m) continue;
        // The list is the registry's (or any pusher's) say-so: the referrer itself must name this manifest.
        if (m.subject?.digest !== digest) {
          out.broken.push(`${where}: its subject is ${m.subject?.digest ?? 'missing'}, not ${digest}`);
          continue;
        }
        if (signatureKind(artifactTypeOf(m)) !== kind) {
          out.broken.push(`${where}: listed as ${descriptor.artifactType}, but its artifact type is ${artifactTypeOf(m)}`);
          continue;
        }
        if (kind === 'cosign') {
          await cosignLayers(client, m, where, out, signal);
          continue;
        }
        const layer = m.layers.find((l) => (kind === 'bundle' ? signatureKind(l.mediaType) === 'bundle' : l.mediaType === SIG.minisig));
        if (!layer) {
          out.broken.push(`${where}: no ${kind} layer`);
          continue;
        }
        const bytes = await tryFetch(`${where}: layer ${layer.digest}`, out.broken, () => smallBlob(client, layer, signal));
        if (bytes) (kind === 'bundle' ? out.bundles : out.minisigs).push(bytes);
      }
    }
    return out;
  } catch (err) {
    if (dl.expired() && !opts.signal?.aborted) throw new UpdateError(`signatures of ${digest}: not read within ${ms} ms`, 'network');
    throw err;
  } finally {
    dl.done();
  }
}
