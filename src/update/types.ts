// The contract between release sources, the version store and the updater.
// A source finds releases and fetches one into a staging directory; the store
// turns a complete, verified staging directory into versions/<version>/.

/** One release as a source sees it. */
export interface Release {
  /** Version label used on disk and in policy: semver without a leading "v" where the source has one
   *  (GitHub tag "v1.2.3" -> "1.2.3"); for an OCI tag followed by digest with no version annotation,
   *  the digest's short form. Safe as a directory name (validated by the source). */
  version: string;
  /** The name the source knows it by: a GitHub tag, an OCI tag or digest, a directory entry. */
  tag: string;
  prerelease: boolean;
  /** ISO time when known (display only). */
  publishedAt?: string;
  /** Content identity when known (sha256:<hex>): an OCI manifest digest, a GitHub asset digest. */
  digest?: string;
  /** Source-specific data needed by fetch(), JSON-serialisable (kept in state.json). */
  locator: Record<string, unknown>;
}

export interface FetchProgress {
  bytes: number;
  /** Total when known. */
  total?: number;
}

export interface FetchOptions {
  signal?: AbortSignal;
  onProgress?: (p: FetchProgress) => void;
  /** The trust settings: a source that checks signatures refuses (UpdateError 'untrusted') before extracting. */
  trust?: TrustConfig;
}

/** What fetch() leaves behind: a directory whose contents are the complete release tree. */
export interface FetchedRelease {
  release: Release;
  /** Absolute path of the extracted, verified release tree inside the staging area. */
  dir: string;
  /** Bytes downloaded (0 when served from cache). */
  downloaded: number;
  /** sha256:<hex> of each verified blob/asset, for the journal. */
  verified: string[];
  /** Key id or identity whose signature verified the artifact (null: no trust setting). */
  trustedBy?: string | null;
}

export interface ListResult {
  /** Releases visible to the updater (drafts never included; prereleases included and flagged). */
  releases: Release[];
  /** True when the source answered "not modified" (ETag 304, same tag digest) and releases are from cache. */
  notModified: boolean;
}

export interface ReleaseSource {
  /** "github", "oci" or "dir", plus the location, for logs and status. */
  readonly description: string;
  /** True when fetch() checks signatures against FetchOptions.trust; otherwise a required check refuses every release. */
  readonly checksSignatures?: boolean;
  list(opts?: { signal?: AbortSignal }): Promise<ListResult>;
  /** Download, verify and extract into a fresh directory under stagingRoot. Throws on any fault,
   *  leaving no debris under stagingRoot. */
  fetch(release: Release, stagingRoot: string, opts?: FetchOptions): Promise<FetchedRelease>;
}

import type { TrustConfig } from './trust/config.js';

export { UpdateError } from '../common/errors.js';
export type { UpdateErrorCode } from '../common/errors.js';
