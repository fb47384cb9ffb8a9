// `molt publish REF FILE... [--version V] [--annotation k=v] [--sign KEY]`: push files to an OCI
// registry as an ORAS-style artifact that MOLT_OCI can follow, so neither users nor CI need ORAS.
// Blobs stream from disk (hashed first, then uploaded), blobs the registry has are skipped.
// --sign pushes a signature of the manifest after it (oci/attach.ts): a PEM key's as cosign
// does, a minisign key's as a referrer.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { logger } from '../common/log.js';
import { UpdateError } from './types.js';
import { RegistryClient, isTransient, sha256Hex, type ClientOptions } from './oci/client.js';
import { retryDelayMs, sleep } from './oci/http.js';
import { ANN, EMPTY_CONFIG, MT, validTitle, versionFromLabel, type Descriptor } from './oci/manifest.js';
import { formatReference, isValidTag, parseReference, type OciReference } from './oci/reference.js';
import { semverTagVersion } from './sources/oci.js';
import { pushSignature } from './oci/attach.js';
import { parseSigningKey, type SigningKey } from './trust/sign.js';

const log = logger('publish');

export interface PublishArgs {
  ref: string;
  files: string[];
  version?: string;
  annotations: Record<string, string>;
  insecure: boolean;
  chunkSize?: number;
  /** --sign: a PEM private key (P-256/Ed25519) or an unencrypted minisign secret key. */
  sign?: string;
}

export class UsageError extends Error {}

/** Parse the command line; throws UsageError with a one-line message. Pure. */
export function parsePublishArgs(argv: string[]): PublishArgs {
  const out: PublishArgs = { ref: '', files: [], annotations: {}, insecure: false };
  const positional: string[] = [];
  let i = 0;
  const value = (flag: string, inline: string | undefined): string => {
    if (inline !== undefined) return inline;
    const v = argv[++i];
    if (v === undefined) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const inline = eq > 0 ? a.slice(eq + 1) : undefined;
    if (flag === '--version') {
      const v = value(flag, inline);
      const clean = versionFromLabel(v);
      if (!clean) throw new UsageError(`--version '${v}' is not a usable version label`);
      out.version = clean;
    } else if (flag === '--annotation' || flag === '-a') {
      const kv = value(flag, inline);
      const at = kv.indexOf('=');
      if (at <= 0) throw new UsageError(`--annotation '${kv}' is not key=value`);
      out.annotations[kv.slice(0, at)] = kv.slice(at + 1);
    } else if (flag === '--sign') {
      out.sign = value(flag, inline);
    } else if (flag === '--insecure') {
      out.insecure = true;
    } else if (flag === '--chunk-size') {
      const v = value(flag, inline);
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`--chunk-size '${v}' is not a positive number of bytes`);
      out.chunkSize = n;
    } else if (a.startsWith('-') && a !== '-') {
      throw new UsageError(`unknown option '${a}'`);
    } else positional.push(a);
  }
  const [ref, ...files] = positional;
  if (!ref) throw new UsageError('missing REF (host[:port]/repo:tag)');
  if (files.length === 0) throw new UsageError('missing FILE (at least one file to publish)');
  out.ref = ref;
  out.files = files;
  return out;
}

/** A `.tar.gz`/`.tgz` ships as a tar+gzip layer (extracted by molt), anything else as a plain file. */
export function layerMediaType(fileName: string): string {
  return /\.(tar\.gz|tgz)$/i.test(fileName) ? MT.layerTarGzip : MT.octetStream;
}

/** The artifact manifest, as bytes: the digest is over exactly these. Pure. */
export function buildManifest(layers: Descriptor[], annotations: Record<string, string>): Buffer {
  const doc = {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    artifactType: MT.moltRelease,
    config: { ...EMPTY_CONFIG },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size, annotations: l.annotations })),
    annotations,
  };
  return Buffer.from(JSON.stringify(doc));
}

async function hashFile(file: string): Promise<{ digest: string; size: number }> {
  const h = crypto.createHash('sha256');
  let size = 0;
  for await (const c of fs.createReadStream(file) as AsyncIterable<Buffer>) {
    h.update(c);
    size += c.length;
  }
  return { digest: 'sha256:' + h.digest('hex'), size };
}

function openRange(file: string): (start: number, end: number) => Readable {
  return (start, end) => (end > start ? fs.createReadStream(file, { start, end: end - 1 }) : Readable.from([]));
}

export interface PublishOptions extends ClientOptions {
  chunkSize?: number;
  signal?: AbortSignal;
  now?: () => Date;
  /** Sign the manifest and push the signature after it. */
  signWith?: SigningKey;
}

/** Push files under ref's tag; returns the manifest digest. */
export async function publish(ref: OciReference, files: string[], meta: { version?: string; annotations?: Record<string, string> }, opts: PublishOptions = {}): Promise<string> {
  if (!ref.tag) throw new UpdateError(`REF '${formatReference(ref)}' needs a tag to publish to`, 'config');
  const client = new RegistryClient(ref, { ...opts, push: true });
  const layers: Descriptor[] = [];
  const titles = new Set<string>();
  for (const file of files) {
    const title = path.basename(file);
    if (!validTitle(title)) throw new UpdateError(`file name '${title}' cannot be a layer title`, 'bad-input');
    if (titles.has(title)) throw new UpdateError(`two files are named '${title}'`, 'bad-input');
    titles.add(title);
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(file);
    } catch (err) {
      throw new UpdateError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'bad-input');
    }
    if (!st.isFile()) throw new UpdateError(`${file} is not a regular file`, 'bad-input');
    const { digest, size } = await hashFile(file);
    layers.push({ mediaType: layerMediaType(title), digest, size, annotations: { [ANN.title]: title } });
  }

  await pushBlob(client, EMPTY_CONFIG.digest, EMPTY_CONFIG.size, () => Readable.from([Buffer.from('{}')]), opts);
  for (const [i, l] of layers.entries()) await pushBlob(client, l.digest, l.size, openRange(files[i]!), opts);

  const version = meta.version ?? semverTagVersion(ref.tag);
  const annotations: Record<string, string> = {
    [ANN.created]: (opts.now?.() ?? new Date()).toISOString(),
    ...(version ? { [ANN.version]: version } : {}),
    ...meta.annotations,
  };
  const bytes = buildManifest(layers, annotations);
  if (opts.signWith) {
    // By digest, then the signature, then the tag: an updater never sees the tag without its signature.
    const digest = await client.putManifest(sha256Hex(bytes), bytes, MT.ociManifest, opts.signal);
    await pushSignature(client, { mediaType: MT.ociManifest, digest, size: bytes.length }, bytes, opts.signWith, { signal: opts.signal, ...(opts.now ? { now: opts.now } : {}) });
  }
  const digest = await client.putManifest(ref.tag, bytes, MT.ociManifest, opts.signal);
  log.info('published', { ref: formatReference(ref), digest, version, layers: layers.length, ...(opts.signWith ? { signed_by: opts.signWith.keyId } : {}) });
  return digest;
}

/** One blob: skipped when the registry has it, else uploaded; a transient fault restarts the upload. */
async function pushBlob(client: RegistryClient, digest: string, size: number, open: (s: number, e: number) => Readable, opts: PublishOptions): Promise<void> {
  if (await client.blobExists(digest, opts.signal)) {
    log.debug('blob exists', { digest });
    return;
  }
  const retries = opts.retries ?? 4;
  for (let attempt = 0; ; attempt++) {
    try {
      await client.uploadBlob(digest, size, (s, e) => open(s, e), { chunkSize: opts.chunkSize, signal: opts.signal });
      log.info('blob pushed', { digest, size });
      return;
    } catch (err) {
      if (!isTransient(err) || attempt >= retries) throw err;
      const delay = retryDelayMs(attempt, (err as UpdateError).retryAfterMs, { baseMs: opts.retryBaseMs ?? 500, maxMs: opts.retryMaxMs ?? 30_000 }, Math.random());
      log.warn('blob upload retry', { digest, reason: (err as Error).message, delay_ms: delay });
      await (opts.sleep ?? sleep)(delay, opts.signal);
    }
  }
}

/** The --sign key file to a signing key; a UsageError (exit 2) naming the file when it is not one. */
function readSigningKey(file: string): SigningKey {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--sign ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const key = parseSigningKey(text);
  if (typeof key === 'string') throw new UsageError(`--sign ${file}: ${key}`);
  return key;
}

export async function main(argv: string[]): Promise<number> {
  let args: PublishArgs;
  let ref: OciReference;
  let signWith: SigningKey | undefined;
  try {
    args = parsePublishArgs(argv);
    ref = parseReference(args.ref, { insecure: args.insecure || process.env.MOLT_OCI_INSECURE === '1' });
    if (!ref.tag && !args.version) throw new UsageError(`REF '${args.ref}' has no tag (write host/repo:tag, or give --version to use as the tag)`);
    if (ref.digest) throw new UsageError(`REF '${args.ref}' names a digest; publish to a tag`);
    if (!ref.tag && !isValidTag(args.version!)) throw new UsageError(`--version '${args.version}' cannot be used as a tag; give REF a tag`);
    if (!ref.tag) ref = { ...ref, tag: args.version };
    if (args.sign !== undefined) signWith = readSigningKey(args.sign);
  } catch (err) {
    if (err instanceof UsageError || (err instanceof UpdateError && err.code === 'config')) {
      process.stderr.write(`molt: publish: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  try {
    const digest = await publish(ref, args.files, { version: args.version, annotations: args.annotations }, { chunkSize: args.chunkSize, ...(signWith ? { signWith } : {}) });
    process.stdout.write(digest + '\n');
    return 0;
  } catch (err) {
    process.stderr.write(`molt: publish: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
