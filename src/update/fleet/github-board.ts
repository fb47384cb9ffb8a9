// The fleet's notice board on GitHub: a verdict is a small asset uploaded to
// the release it judges (molt-verdict-<replica>-<kind>-<unix-ms>.json), written
// with a GITHUB_TOKEN that may write to the repository. The asset list comes
// with each release in the releases list a replica reads anyway, so finding
// verdicts costs nothing; each verdict asset is then read once (assets are
// immutable: cached by id), bounded like a checksum asset. The asset holds the
// same verdict document as an OCI verdict, and its signature, in an envelope:
// {"verdict": "<document>", "sig": "<signature>"}. GitHub has no pause here.
import { logger } from '../../common/log.js';
import type { AssetInfo } from '../github/assets.js';
import { VERDICT_ASSET_RE } from '../github/assets.js';
import type { GitHubAssetPort } from '../github/asset-stream.js';
import type { Locator } from '../github/locator.js';
import type { TrustKey } from '../trust/keys.js';
import type { SigningKey } from '../trust/sign.js';
import { UpdateError, type Release } from '../types.js';
import type { FleetBoard } from './boards.js';
import { encodeVerdict, judgeVerdict, MAX_SIG_BYTES, MAX_VERDICT_BYTES, signVerdict, type Verdict } from './verdict.js';

const log = logger('fleet');

/** An envelope larger than this is ignored unread (a document and a signature, JSON-escaped). */
export const MAX_VERDICT_ASSET_BYTES = 2 * (MAX_VERDICT_BYTES + MAX_SIG_BYTES) + 64;
/** The newest this many verdict assets of a release are read (a block is never buried: a replica writes none once one is listed). */
const MAX_READ = 32;
const CACHE_MAX = 1000;

/** The asset name of a verdict: replica ids may hold characters GitHub renames, so they are made safe (the document names the replica). */
export function verdictAssetName(replica: string, kind: string, ms: number): string {
  return `molt-verdict-${replica.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80)}-${kind}-${ms}.json`;
}

/** The envelope's bytes. */
export function encodeVerdictAsset(text: string, sig?: string): Buffer {
  return Buffer.from(JSON.stringify(sig ? { verdict: text, sig } : { verdict: text }), 'utf8');
}

/** An envelope to its document and signature, or a reason it is ignored. */
export function parseVerdictAsset(bytes: Buffer): { text: string; sig?: string } | string {
  if (bytes.length > MAX_VERDICT_ASSET_BYTES) return `verdict asset larger than ${MAX_VERDICT_ASSET_BYTES} bytes`;
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    return 'verdict asset is not JSON';
  }
  const d = doc as { verdict?: unknown; sig?: unknown } | null;
  if (typeof d !== 'object' || d === null || typeof d.verdict !== 'string') return 'verdict asset has no "verdict" string';
  if (d.sig !== undefined && typeof d.sig !== 'string') return 'verdict asset "sig" is not a string';
  return typeof d.sig === 'string' ? { text: d.verdict, sig: d.sig } : { text: d.verdict };
}

export interface GitHubBoardOptions {
  trust: { required: boolean; keys: readonly TrustKey[] };
  key?: SigningKey;
  now?: () => number;
}

export class GitHubFleetBoard implements FleetBoard {
  requests = 0;
  /** Per asset id: the accepted verdict, or why it was ignored (said once, when first read). */
  private readonly seen = new Map<number, Verdict | string>();

  constructor(
    private readonly port: GitHubAssetPort,
    private readonly opts: GitHubBoardOptions,
  ) {}

  private locator(release: Release): Locator {
    const l = release.locator as unknown as Locator;
    if (l?.source !== 'github' || typeof l.releaseId !== 'number' || !Array.isArray(l.assets)) throw new UpdateError(`release ${release.version} is not a GitHub release`, 'bad-input');
    return l;
  }

  /** Bound to the release's id: a verdict asset copied to another release (or a re-created tag) is not about it. */
  async subject(release: Release): Promise<string> {
    return `github:${this.port.repo}/releases/${this.locator(release).releaseId}`;
  }

  private remember(id: number, v: Verdict | string, name: string): void {
    if (this.seen.size >= CACHE_MAX) this.seen.clear();
    this.seen.set(id, v);
    if (typeof v === 'string') log.warn('verdict ignored', { asset: name, why: v });
  }

  async read(release: Release, signal?: AbortSignal): Promise<Verdict[]> {
    const loc = this.locator(release);
    const subject = await this.subject(release);
    const assets = loc.assets.filter((a) => VERDICT_ASSET_RE.test(a.name)).sort((a, b) => b.id - a.id).slice(0, MAX_READ);
    const out: Verdict[] = [];
    for (const a of assets) {
      let v = this.seen.get(a.id);
      if (v === undefined) {
        v = await this.readOne(a, loc.tag, subject, signal);
        this.remember(a.id, v, a.name);
      }
      if (typeof v !== 'string') out.push(v);
    }
    return out;
  }

  private async readOne(a: AssetInfo, tag: string, subject: string, signal?: AbortSignal): Promise<Verdict | string> {
    if (a.size > MAX_VERDICT_ASSET_BYTES) return `verdict asset of ${a.size} bytes (at most ${MAX_VERDICT_ASSET_BYTES})`;
    let bytes: Buffer;
    this.requests++;
    try {
      bytes = await this.port.read(a, tag, signal);
    } catch (err) {
      // Its own fault (a digest that does not match, too large): ignored; a network fault is the caller's.
      if (err instanceof UpdateError && (err.code === 'integrity' || err.code === 'bad-input')) return err.message;
      throw err;
    }
    const env = parseVerdictAsset(bytes);
    if (typeof env === 'string') return env;
    return judgeVerdict(env.text, env.sig, subject, this.opts.trust);
  }

  async write(release: Release, v: Verdict, signal?: AbortSignal): Promise<string> {
    const loc = this.locator(release);
    if (!loc.uploadUrl) throw new UpdateError(`release ${loc.tag} of ${this.port.repo} has no upload_url in its JSON`, 'bad-input');
    const text = encodeVerdict(v);
    const body = encodeVerdictAsset(text, this.opts.key ? signVerdict(text, this.opts.key) : undefined);
    const now = this.opts.now ?? Date.now;
    // A name already taken (422: another write in the same millisecond, or a retried upload) gets a new one, once.
    for (let attempt = 0; ; attempt++) {
      const name = verdictAssetName(v.replica, v.kind, now() + attempt);
      this.requests++;
      try {
        await this.port.upload(loc.uploadUrl, name, body, signal);
        return name;
      } catch (err) {
        if (attempt === 0 && /answered 422/.test((err as Error).message)) continue;
        throw err;
      }
    }
  }

  /** A fleet pause is not kept on GitHub (docs/fleet.md): `molt pause` pauses one replica. */
  async readPause(): Promise<Verdict | undefined> {
    return undefined;
  }
}
