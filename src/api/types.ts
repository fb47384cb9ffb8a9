// What the running updater exposes, over its socket (and, later, TCP): the
// shapes the API server, the CLI, `molt/client` and the status page share.

export type UpdatePhase =
  | 'idle'
  | 'checking'
  | 'downloading'
  | 'staged'
  | 'stopping'
  | 'swapping'
  | 'starting'
  | 'trial'
  | 'committed'
  | 'rolling-back';

export interface BlockedEntry {
  version: string;
  reason: string;
  /** ISO time */
  at: string;
}

export interface HistoryEntry {
  /** ISO time */
  at: string;
  event: 'check' | 'check-failed' | 'download' | 'update' | 'commit' | 'rollback' | 'block' | 'unblock' | 'crash-loop' | 'recover' | 'unhealthy' | 'healed' | 'gave-up';
  version?: string;
  from?: string;
  detail?: string;
  /** A block because of the release's signature (MOLT_TRUST_*): counted in molt_signature_failures_total. */
  cause?: 'signature';
}

export interface ActionInfo {
  id: string;
  kind: 'check' | 'update' | 'rollback';
  state: 'running' | 'done' | 'failed';
  /** ISO times */
  startedAt: string;
  finishedAt?: string;
  /** One line: what happened, or why it failed. */
  message?: string;
  version?: string;
  /** Added by the API server: the updater turned this action down at once (answered 409); nothing was tried. */
  refused?: boolean;
}

export interface TrialInfo {
  version: string;
  from?: string;
  startedAt: string;
  deadlineAt: string;
  crashes: number;
  crashLimit: number;
  ready: boolean;
  readyMode: 'auto' | 'explicit';
}

export interface ReleaseInfo {
  version: string;
  prerelease: boolean;
  blocked: boolean;
}

/** How fresh the updater's view of its release source is (update/freshness.ts). */
export interface SourceFreshness {
  /** ISO time of the last poll the source answered (200 or 304 alike). */
  lastSuccessAt?: string;
  /** Seconds since then, or since the updater started when the source never answered. */
  lastSuccessAgeSeconds: number;
  /** ISO time of the last answer that differed from the one before (a release added, removed or changed). */
  lastChangeAt?: string;
  /** The newest publish time the source gives its releases, and that release's version. */
  newestPublishedAt?: string;
  newestVersion?: string;
  /** No answer for longer than staleAfterSeconds (MOLT_STALE_AFTER). */
  stale: boolean;
  staleAfterSeconds: number;
}

export interface UpdaterStatus {
  phase: UpdatePhase;
  source: string;
  policy: string;
  current?: string;
  /** What verified the running version's signature: key id or identity (absent: no check, or installed before one). */
  verifiedBy?: string;
  /** True when a trust setting is present and the running version is not verified by a key or identity trusted now (kept from before it). */
  unverified?: boolean;
  /** Keyless trust without MOLT_TRUST_ROOT: the Sigstore trusted root TUF keeps, and how fresh it is. */
  trustRoot?: TrustRootInfo;
  previous?: string;
  /** The release the policy would take now, when newer than current and not blocked. */
  available?: string;
  /** Known releases, newest first (at most 20). */
  releases: ReleaseInfo[];
  lastCheck?: { at: string; ok: boolean; error?: string; notModified?: boolean };
  /** Ages of what the updater knows of its source: a frozen or silent source shows here. */
  freshness?: SourceFreshness;
  nextCheckAt?: string;
  /** Why an available release is not being applied yet (schedule window, delay, rollout, manual policy). */
  waiting?: string;
  download?: { version: string; bytes: number; total?: number };
  /** Updates are not applied (still checked): `molt pause` here, or `molt pause --fleet` for every replica. */
  paused?: 'local' | 'fleet';
  /** The fleet settings (docs/fleet.md): whether verdicts are read/written, this replica's id, whether it is a canary. */
  fleet?: { mode: 'off' | 'read' | 'write'; replica: string; canary?: boolean };
  trial?: TrialInfo;
  blocked: BlockedEntry[];
  history: HistoryEntry[];
  actions: ActionInfo[];
  /** molt itself (MOLT_SELF, update/self/): which molt runs as PID 1, where its releases come from, its history. */
  self?: SelfStatus;
  /** Added by the API server (not the updater): the supervised services, read from their supervise/ dirs. */
  services?: ServiceInfo[];
  /** Added by the API server: the host name, for the page title and notifications. */
  host?: string;
}

/** molt's own version and updates: field names as the app's. */
export interface SelfStatus {
  /** The molt PID 1 runs (MOLT_SERVICES/.molt-pid1). */
  running?: string;
  /** The molt this updater runs. */
  updater: string;
  /** MOLT_SELF's source; absent when MOLT_SELF is off. */
  source?: string;
  policy?: string;
  /** MOLT_HOME/molt/current; absent: the image's own molt. */
  current?: string;
  previous?: string;
  /** The molt release the policy would take now. */
  available?: string;
  lastCheck?: { at: string; ok: boolean; error?: string; notModified?: boolean };
  phase?: UpdatePhase;
  trial?: { version: string; from?: string; startedAt: string; deadlineAt: string };
  blocked: BlockedEntry[];
  history: HistoryEntry[];
}

/** The Sigstore trusted root kept through TUF (MOLT_TRUST_IDENTITY without MOLT_TRUST_ROOT). */
export interface TrustRootInfo {
  source: 'tuf';
  /** The TUF repository (MOLT_TRUST_TUF_URL, default Sigstore's public good one). */
  mirror: string;
  /** ISO time TUF last vouched for the root in use (absent: there is none yet). */
  verifiedAt?: string;
  /** Seconds since then: a frozen or unreachable repository shows here. */
  ageSeconds?: number;
  /** Why the last refresh failed (absent after a success). */
  lastError?: string;
}

/** One supervised service as its runit-compatible supervise/ directory describes it. */
export interface ServiceInfo {
  /** Directory name under MOLT_SERVICES; a log service is `<name>/log`. */
  name: string;
  /** `up` = runit's run, `finish` = its finish script runs, `unknown` = no readable supervise/status. */
  state: 'up' | 'down' | 'finish' | 'unknown';
  pid?: number;
  /** ISO time of the last state change. */
  since?: string;
  /** Seconds since the last state change (uptime when up). */
  seconds?: number;
  want?: 'up' | 'down';
  paused?: boolean;
  /** No `down` file in the service directory. */
  normallyUp: boolean;
  /** A supervisor holds supervise/ok open. */
  supervised: boolean;
  /** The last exit of `run` (supervise/exit): code -1 when killed by `signal`. */
  lastExit?: { code: number; signal: number };
  /** From supervise/health, for the current run of a service with a `check` script or a readiness fd. */
  health?: {
    ready: boolean;
    /** null until the first check of this run. */
    healthy: boolean | null;
    /** Failed checks in a row. */
    failures: number;
    heals: number;
    gaveUp: boolean;
    lastCheck?: string;
  };
  /** Stopped for good after too many deaths (`max-deaths`), until `sv up`. */
  failed?: boolean;
  /** A second instance started beside this one for an overlapping handover (MOLT_HANDOVER=overlap). */
  next?: { pid: number; ready: boolean; since?: string; stopping: boolean };
}

/** What the API and the CLI can ask of the running updater. */
export interface UpdaterControl {
  status(): UpdaterStatus;
  /** Starts a check; resolves with the action at once (202), progress in status().actions. */
  check(): ActionInfo;
  /** Starts an update to `version` (by name: may be older, never blocked unless named) or to the newest acceptable. */
  update(version?: string): ActionInfo;
  rollback(): ActionInfo;
  /** The app reports it is ready: commits a trial at once. false when no trial runs. */
  ready(): boolean;
  blocked(): BlockedEntry[];
  /** false when the version was not blocked. `of: 'molt'`: a version of molt itself (MOLT_SELF). */
  unblock(version: string, opts?: { of?: 'molt' }): Promise<boolean>;
  /** Block `version` by hand (never tried again until unblocked); refused for the running version. */
  block(version: string, reason?: string): Promise<BlockResult>;
}

/** What `PUT /api/blocked/VERSION` did: blocked now, was blocked already, or refused (one line why). */
export type BlockResult = { result: 'blocked' | 'already' } | { result: 'refused'; error: string };
