// The fleet's notice board in the registry: verdicts as referrers of a release's
// manifest, and the repository's pause tag. Reading is one GET per release (the
// referrers API's answer, else the referrers tag schema's index, whose entries
// carry each verdict in their annotations); writing pushes a referrer and, where
// the registry has no referrers API, adds it to that index. The index is
// read-modify-write without a compare-and-swap (docker-registry has none), so a
// writer waits a jittered moment, reads again and adds itself back until its
// entry stays listed: two replicas writing at once both land.
import { logger } from '../../common/log.js';
import { UpdateError } from '../types.js';
import { maybeManifest, pushSmall } from '../oci/attach.js';
import type { RegistryClient } from '../oci/client.js';
import { isTransient, sha256Hex } from '../oci/errors.js';
import { discard, readBody, sleep as defaultSleep } from '../oci/http.js';
import { MT, type Descriptor, type ImageIndex } from '../oci/manifest.js';
import { addToReferrersIndex, buildReferrerManifest, parseReferrersIndex, referrersTag, repositoryName } from '../oci/referrers.js';
import type { TrustKey } from '../trust/keys.js';
import type { SigningKey } from '../trust/sign.js';
import { ANN_SIG, ANN_VERDICT, encodeVerdict, judgeVerdict, signVerdict, VERDICT_TYPE, type Verdict } from './verdict.js';

const log = logger('fleet');

/** The tag whose manifest says whether the fleet is paused. Not semver: never taken for a release. */
export const PAUSE_TAG = 'molt-paused';
/** Rounds of add-and-check before a write gives up (each waits SETTLE_MS plus jitter). */
const WRITE_ROUNDS = 8;
const SETTLE_MS = 150;
/** The referrers index is read with this bound (a few dozen verdicts fit many times over). */
const MAX_INDEX_BYTES = 1024 * 1024;

export interface BoardOptions {
  trust: { required: boolean; keys: readonly TrustKey[] };
  key?: SigningKey;
  random?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export class VerdictBoard {
  /** undefined: not known yet; false: the registry answered 404 (no referrers API), the tag schema is read. */
  private referrersApi: boolean | undefined;
  /** Ignored entries are said once each. */
  private readonly warned = new Set<string>();
  private pauseCache: { digest: string; paused: Verdict | undefined } | undefined;
  /** Requests made, for the bench and tests (reads and writes). */
  requests = 0;

  constructor(
    readonly client: RegistryClient,
    private readonly opts: BoardOptions,
  ) {}

  private ignore(id: string, why: string): void {
    if (this.warned.has(id)) return;
    if (this.warned.size > 1000) this.warned.clear();
    this.warned.add(id);
    log.warn('verdict ignored', { referrer: id, why });
  }

  /** The verdict entries of an index that are about `subject`, judged; ignored ones said once. */
  private judge(entries: readonly Descriptor[], subject: string): Verdict[] {
    const out: Verdict[] = [];
    for (const d of entries) {
      if (d.artifactType !== VERDICT_TYPE) continue;
      const v = judgeVerdict(d.annotations?.[ANN_VERDICT], d.annotations?.[ANN_SIG], subject, this.opts.trust);
      if (typeof v === 'string') this.ignore(d.digest, v);
      else out.push(v);
    }
    return out;
  }

  /** Every accepted verdict about the release manifest `digest`. Throws on a network fault or 5xx (the caller decides). */
  async read(digest: string, signal?: AbortSignal): Promise<Verdict[]> {
    if (this.referrersApi !== false) {
      this.requests++;
      const url = this.client.url(`referrers/${digest}`);
      url.searchParams.set('artifactType', VERDICT_TYPE);
      const res = await this.client.call('GET', url, { headers: { accept: MT.ociIndex }, signal, idempotent: true });
      if (res.status === 200) {
        this.referrersApi = true;
        const index = parseReferrersIndex(await readBody(res, MAX_INDEX_BYTES, 'referrers'), MT.ociIndex, `referrers of ${digest}`);
        return this.judge(index.manifests, digest);
      }
      discard(res);
      if (res.status !== 404) throw new UpdateError(`GET referrers of ${digest}: HTTP ${res.status}`, 'http');
      this.referrersApi = false;
    }
    return this.judge((await this.tagIndex(digest, signal))?.manifests ?? [], digest);
  }

  private async tagIndex(digest: string, signal?: AbortSignal): Promise<ImageIndex | undefined> {
    this.requests++;
    try {
      const m = await this.client.getManifest(referrersTag(digest), signal, MAX_INDEX_BYTES);
      return m.manifest.kind === 'index' ? m.manifest : undefined;
    } catch (err) {
      if (err instanceof UpdateError && err.code === 'not-found') return undefined;
      if (err instanceof UpdateError && err.code === 'bad-input') {
        this.ignore(referrersTag(digest), `referrers index unreadable: ${err.message}`);
        return undefined;
      }
      throw err;
    }
  }

  /** The annotations of a verdict: the document and, with a key, its signature. */
  private annotate(v: Verdict): Record<string, string> {
    const text = encodeVerdict(v);
    return { [ANN_VERDICT]: text, ...(this.opts.key ? { [ANN_SIG]: signVerdict(text, this.opts.key) } : {}) };
  }

  private async pushVerdictManifest(subject: Descriptor | undefined, v: Verdict, signal?: AbortSignal): Promise<{ bytes: Buffer; digest: string; ociSubject?: string; annotations: Record<string, string> }> {
    const annotations = this.annotate(v);
    const blob = Buffer.from(annotations[ANN_VERDICT]!, 'utf8');
    this.requests += 4;
    const layer = { ...(await pushSmall(this.client, blob, signal)), mediaType: VERDICT_TYPE };
    await pushSmall(this.client, Buffer.from('{}'), signal);
    const bytes = buildReferrerManifest(subject, VERDICT_TYPE, layer, v.time, annotations);
    this.requests++;
    const put = await this.client.putManifestFull(subject ? sha256Hex(bytes) : PAUSE_TAG, bytes, MT.ociManifest, signal);
    return { bytes, annotations, ...put };
  }

  /**
   * Attach verdict `v` to the release manifest `subject`; returns the referrer's digest once it is
   * listed. A refused write (403, 401) is thrown as it came: the caller keeps its local block.
   */
  async write(subject: Descriptor, v: Verdict, signal?: AbortSignal): Promise<string> {
    const put = await this.pushVerdictManifest(subject, v, signal);
    if (put.ociSubject === subject.digest) return put.digest;
    const entry: Descriptor = { mediaType: MT.ociManifest, digest: put.digest, size: put.bytes.length, artifactType: VERDICT_TYPE, annotations: put.annotations };
    const tag = referrersTag(subject.digest);
    const rand = this.opts.random ?? Math.random;
    const wait = this.opts.sleep ?? defaultSleep;
    let fault: unknown;
    for (let round = 0; round < WRITE_ROUNDS; round++) {
      try {
        this.requests++;
        const had = await maybeManifest(this.client, tag, signal);
        const index = had?.manifest.kind === 'index' ? (had.manifest as ImageIndex) : undefined;
        if (round > 0 && index?.manifests.some((d) => d.digest === put.digest)) return put.digest;
        this.requests++;
        await this.client.putManifest(tag, addToReferrersIndex(index, entry), MT.ociIndex, signal);
        fault = undefined;
      } catch (err) {
        // docker-registry answers 500 to a read of a tag another writer is rewriting: a round lost, not the write.
        if (!isTransient(err)) throw err;
        fault = err;
      }
      // Another writer that read before this PUT may overwrite it: look again after a jittered moment.
      await wait(SETTLE_MS + Math.floor(rand() * SETTLE_MS * (round + 1)), signal);
    }
    if (fault) throw fault;
    throw new UpdateError(`verdict ${put.digest} did not stay listed under ${tag} after ${WRITE_ROUNDS} rounds`, 'http');
  }

  /** The fleet's pause: a `paused` verdict under PAUSE_TAG (a HEAD per call; the manifest is read when it changed). */
  async readPause(signal?: AbortSignal): Promise<Verdict | undefined> {
    this.requests++;
    let digest: string;
    try {
      digest = (await this.client.headManifest(PAUSE_TAG, signal)).digest;
    } catch (err) {
      if (err instanceof UpdateError && err.code === 'not-found') return undefined;
      throw err;
    }
    if (this.pauseCache?.digest === digest) return this.pauseCache.paused;
    this.requests++;
    const m = await maybeManifest(this.client, digest, signal);
    const subject = repositoryName(this.client.ref);
    let paused: Verdict | undefined;
    if (m?.manifest.kind === 'manifest') {
      const v = judgeVerdict(m.manifest.annotations[ANN_VERDICT], m.manifest.annotations[ANN_SIG], subject, this.opts.trust);
      if (typeof v === 'string') this.ignore(digest, v);
      else if (v.kind === 'paused') paused = v;
    } else this.ignore(digest, `${PAUSE_TAG} is not a verdict manifest`);
    this.pauseCache = { digest, paused };
    return paused;
  }

  /** Pause (or resume) the fleet: PAUSE_TAG is overwritten, never deleted (registries often refuse DELETE). */
  async writePause(paused: boolean, replica: string, reason: string, signal?: AbortSignal): Promise<void> {
    const v: Verdict = { kind: paused ? 'paused' : 'resumed', subject: repositoryName(this.client.ref), reason, replica, time: new Date().toISOString() };
    await this.pushVerdictManifest(undefined, v, signal);
  }
}
