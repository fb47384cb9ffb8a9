// Where a fleet's verdicts live, seen from the updater: one interface, two
// places. The registry (OCI: referrers of the release manifest, board.ts) and
// GitHub (assets of the release, github-board.ts). Fleet (fleet.ts) asks only
// these four questions, so what a replica decides is the same on both.
import type { Descriptor } from '../oci/manifest.js';
import type { Release } from '../types.js';
import type { VerdictBoard } from './board.js';
import type { Verdict } from './verdict.js';

export interface FleetBoard {
  /** Requests made (reads and writes), for the bench and tests. */
  requests: number;
  /** What a verdict on `release` must name as its subject (a manifest digest, a GitHub release). */
  subject(release: Release, signal?: AbortSignal): Promise<string>;
  /** Every accepted verdict on `release`; ignored ones are said once. Throws on a fault (the caller warns). */
  read(release: Release, signal?: AbortSignal): Promise<Verdict[]>;
  /** Share `v` (its subject from subject()); where it landed. A refused write throws as it came. */
  write(release: Release, v: Verdict, signal?: AbortSignal): Promise<string>;
  /** The fleet's pause, where the board has one. */
  readPause(signal?: AbortSignal): Promise<Verdict | undefined>;
}

/** The registry's board for the updater: a release is known by its manifest digest (the source's, else one HEAD of its tag). */
export class OciFleetBoard implements FleetBoard {
  private readonly digests = new Map<string, string>();

  constructor(readonly board: VerdictBoard) {}

  get requests(): number {
    return this.board.requests;
  }
  set requests(n: number) {
    this.board.requests = n;
  }

  async subject(release: Release, signal?: AbortSignal): Promise<string> {
    if (release.digest) return release.digest;
    const known = this.digests.get(release.version);
    if (known) return known;
    this.board.requests++;
    const head = await this.board.client.headManifest(release.tag, signal);
    if (this.digests.size > 100) this.digests.clear();
    this.digests.set(release.version, head.digest);
    return head.digest;
  }

  async read(release: Release, signal?: AbortSignal): Promise<Verdict[]> {
    return this.board.read(await this.subject(release, signal), signal);
  }

  async write(release: Release, v: Verdict, signal?: AbortSignal): Promise<string> {
    const digest = await this.subject(release, signal);
    this.board.requests++;
    const head = await this.board.client.headManifest(digest, signal);
    const subject: Descriptor = { mediaType: head.mediaType, digest, size: head.size ?? 0 };
    return this.board.write(subject, v, signal);
  }

  readPause(signal?: AbortSignal): Promise<Verdict | undefined> {
    return this.board.readPause(signal);
  }
}
