// Every variable of `molt updater` with its default and meaning (docs/configuration.md
// is checked against it), and which of them are secret or read
// from the environment only.

/** A table of every variable: name, default, meaning — checked against docs/configuration.md by the readme test. */
export const configReference: { name: string; default: string; meaning: string }[] = [
  { name: 'MOLT_CONFIG', default: '/etc/molt/molt.yaml (when it exists)', meaning: 'YAML file whose keys are these variable names (e.g. "MOLT_POLICY: minor"); the environment wins over it' },
  { name: 'MOLT_GITHUB', default: '', meaning: 'release source: GitHub Releases of owner/repo (exactly one of MOLT_GITHUB, MOLT_OCI, MOLT_DIR)' },
  { name: 'GH_USER', default: '', meaning: 'seed form of MOLT_GITHUB: the owner, with GH_REPO' },
  { name: 'GH_REPO', default: '', meaning: 'seed form of MOLT_GITHUB: the repository, with GH_USER' },
  { name: 'GITHUB_TOKEN', default: '', meaning: 'GitHub token: private repositories and 5,000 requests/h instead of 60; never logged' },
  { name: 'MOLT_GITHUB_API', default: 'https://api.github.com', meaning: 'GitHub API base URL (Enterprise Server: https://HOST/api/v3)' },
  { name: 'MOLT_ASSET', default: 'the single .tar.gz/.tgz asset, preferring linux and this arch', meaning: 'glob choosing the release asset; {os}, {arch} and {version} are substituted' },
  { name: 'MOLT_REQUIRE_CHECKSUM', default: '0', meaning: '1: refuse a release that cannot be verified (no asset digest, no checksum file, an unlisted MOLT_DIR entry)' },
  { name: 'MOLT_TRUST_KEYS', default: '', meaning: 'a file or directory of trusted public keys (minisign .pub or RW... string, PEM ECDSA P-256 or Ed25519): every release must be signed by one (environment only)' },
  { name: 'MOLT_TRUST_IDENTITY', default: '', meaning: 'a Sigstore keyless identity (a workflow URI) that signs releases; every release must carry its bundle (environment only)' },
  { name: 'MOLT_TRUST_ISSUER', default: 'https://token.actions.githubusercontent.com', meaning: 'the OIDC issuer of MOLT_TRUST_IDENTITY (environment only)' },
  { name: 'MOLT_TRUST_ROOT', default: 'Sigstore\'s public-good root, kept fresh through TUF and cached under MOLT_HOME/trust/tuf/', meaning: 'a Sigstore trusted_root.json for MOLT_TRUST_IDENTITY (a private Sigstore) (environment only)' },
  { name: 'MOLT_TRUST_TUF_URL', default: 'https://tuf-repo-cdn.sigstore.dev', meaning: 'the TUF repository that serves the trusted root for MOLT_TRUST_IDENTITY (a private Sigstore or a mirror) (environment only)' },
  { name: 'MOLT_TRUST_TUF_ROOT', default: 'the public-good repository\'s root.json, shipped with molt', meaning: 'the initial TUF root.json for MOLT_TRUST_TUF_URL; needed for any other repository (environment only)' },
  { name: 'MOLT_OCI', default: '', meaning: 'release source: OCI registry host[:port]/repo[:tag]; with a tag the tag is followed, without one the semver tags are the releases' },
  { name: 'MOLT_OCI_USER', default: 'from docker config.json', meaning: 'registry user name, with MOLT_OCI_PASSWORD' },
  { name: 'MOLT_OCI_PASSWORD', default: 'from docker config.json', meaning: 'registry password or token, with MOLT_OCI_USER; never logged' },
  { name: 'MOLT_OCI_INSECURE', default: '0', meaning: '1: plain http to a registry that is not on loopback (loopback always uses http)' },
  { name: 'MOLT_DIR', default: '', meaning: 'release source: a local directory (absolute path) of <version>/ or <version>.tar.gz, optional SHA256SUMS' },
  { name: 'MOLT_POLICY', default: 'latest', meaning: 'latest (any newer release), minor (same major), patch (same major.minor), manual (report, apply only when asked)' },
  { name: 'MOLT_PRERELEASE', default: '0', meaning: '1: prereleases are candidates too' },
  { name: 'MOLT_INTERVAL', default: '5m', meaning: 'time between polls (30s, 5m, 1h; bare numbers are ms), 1s to 7d' },
  { name: 'SLEEP', default: '', meaning: 'seed form of MOLT_INTERVAL, in seconds' },
  { name: 'MOLT_STALE_AFTER', default: '24h, or 10 intervals when longer', meaning: 'a source that has not answered a poll for this long is reported stale: one warning line, "stale" in molt status, the API, the page and molt_source_stale' },
  { name: 'MOLT_HTTP_TIMEOUT', default: '30s for an answer, 60s of silence in a download', meaning: 'how long a GitHub or registry request may wait for its answer, and a download for its next bytes (a GitHub asset must also average 32 KiB/s); a stalled or trickling download ends and is retried later' },
  { name: 'MOLT_SCHEDULE', default: 'always', meaning: 'windows when an update may be applied, local time: "mo-fr 9-17", "sa,su", "18-22", "22-6", "mo-fr 9-17; sa 10-12"' },
  { name: 'MOLT_DELAY', default: '0', meaning: 'wait this long after a release is first seen before applying it' },
  { name: 'MOLT_JITTER', default: '0', meaning: 'add a random [0, JITTER) to each poll interval, at most 7d' },
  { name: 'MOLT_ROLLOUT', default: '0', meaning: 'spread a fleet: each host waits a delay in [0, ROLLOUT) fixed by a hash of its hostname and the version' },
  { name: 'MOLT_FLEET', default: 'unset (verdicts read, not written)', meaning: '1: share this replica\'s verdicts (blocked, committed) through the OCI registry or as GitHub release assets (GITHUB_TOKEN with write access); 0: ignore the fleet\'s verdicts too (environment only; docs/fleet.md)' },
  { name: 'MOLT_REPLICA_ID', default: 'the hostname', meaning: 'this replica\'s name in verdicts and for MOLT_CANARY\'s hash (environment only)' },
  { name: 'MOLT_CANARY', default: '0', meaning: 'a share of the fleet (5%) chosen by a hash of MOLT_REPLICA_ID that takes a release at once; the rest wait for MOLT_CANARY_COMMITS committed verdicts or the end of MOLT_ROLLOUT without a block (OCI and GitHub sources; environment only)' },
  { name: 'MOLT_CANARY_COMMITS', default: '1', meaning: 'committed verdicts (distinct replicas) the later wave waits for (environment only)' },
  { name: 'MOLT_FLEET_KEY', default: '', meaning: 'secret key (unencrypted minisign, or PEM P-256/Ed25519) that signs this replica\'s verdicts and molt block/pause --fleet (environment only)' },
  { name: 'MOLT_FLEET_KEYS', default: 'MOLT_TRUST_KEYS', meaning: 'public keys that verdicts must be signed by; with it or any trust setting, unsigned verdicts are ignored (environment only)' },
  { name: 'MOLT_HOME', default: '/var/lib/molt', meaning: 'versions/, current, previous, state.json, cache/, staging/; one that cannot be used stops the updater (exit 2)' },
  { name: 'MOLT_KEEP', default: '3', meaning: 'how many versions to keep on disk (integer >= 1), applied after commits, rollbacks and blocks; blocked versions go first; current, previous and a staged release are always kept' },
  { name: 'MOLT_APP', default: 'app', meaning: 'the service (directory under MOLT_SERVICES) that runs the release' },
  { name: 'MOLT_APP_DIR', default: '', meaning: 'a symlink kept pointing at the version in use (for run scripts that cannot use MOLT_HOME/current)' },
  { name: 'MOLT_VERSION_FILE', default: '/version', meaning: 'file holding the version in use' },
  { name: 'MOLT_BUNDLED', default: '', meaning: 'a release shipped in the image (absolute path of a directory or .tar.gz): installed before the first poll when nothing is installed or it is newer than current; version from its VERSION file, its name, or MOLT_VERSION_FILE (environment only)' },
  { name: 'MOLT_SELF', default: 'off', meaning: 'molt updates itself from this source: github:owner/repo, an OCI reference host[:port]/repo[:tag], or a directory (absolute path); a release is molt\'s bundle (molt.mjs with node_modules/koffi beside it), installed under MOLT_HOME/molt/, PID 1 re-executes into it with a trial, molt first, then the app (environment only)' },
  { name: 'MOLT_SELF_POLICY', default: 'patch', meaning: 'which molt releases MOLT_SELF takes: latest, minor, patch or manual, as MOLT_POLICY' },
  { name: 'MOLT_TRIAL', default: '30s', meaning: 'a new version is committed after staying up this long (and passing check), or at once when it reports ready' },
  { name: 'MOLT_READY', default: 'auto', meaning: 'auto: surviving the trial commits; explicit: the app must report ready (molt ready) before the trial ends' },
  { name: 'MOLT_HANDOVER', default: 'restart', meaning: 'restart: stop the old version, then start the new one; overlap: start the new one beside the old one on the app\'s listen sockets, stop the old one only once the new one passed its trial' },
  { name: 'MOLT_CRASH_LIMIT', default: '2', meaning: 'deaths during the trial that roll it back (integer >= 1)' },
  { name: 'MOLT_SOCKET', default: '/run/molt/molt.sock', meaning: 'the API socket (mode 0600) that the CLI and apps talk to' },
  { name: 'MOLT_SOCKET_GROUP', default: '', meaning: 'a group (name or gid) whose members may use MOLT_SOCKET for status, ready, check and update: the socket becomes 0660 root:GROUP; admin calls stay with root or MOLT_ADMIN_TOKEN' },
  { name: 'MOLT_SERVICES', default: '/etc/service', meaning: 'service directories (environment only, shared with molt init)' },
  { name: 'SVDIR', default: '', meaning: 'seed/runit form of MOLT_SERVICES (environment only)' },
  { name: 'MOLT_STOP_TIMEOUT', default: '7s', meaning: 'how long a service may take to stop before SIGKILL; an update whose stop outlasts it (+3 s after KILL) restarts the old version and is retried later' },
  { name: 'SVWAIT', default: '', meaning: 'seed form of MOLT_STOP_TIMEOUT, in seconds' },
  { name: 'MOLT_ADMIN_ADDR', default: 'off', meaning: 'host:port for the API over TCP; a non-loopback address needs MOLT_ADMIN_TOKEN' },
  { name: 'MOLT_ADMIN_TOKEN', default: '', meaning: 'Bearer token for MOLT_ADMIN_ADDR, at least 16 characters; never logged' },
  { name: 'MOLT_WEBHOOK_SECRET', default: '', meaning: 'HMAC secret checked on POST /api/notify (X-Hub-Signature-256)' },
  { name: 'MOLT_NOTIFY_URL', default: '', meaning: 'URL that receives update, commit, rollback, block, crash-loop, unhealthy, healed and gave-up events (Discord and Slack understood); never logged' },
  { name: 'MOLT_LOG_LEVEL', default: 'info', meaning: 'error, warn, info or debug (any other value: exit 2, updater and molt init alike)' },
  { name: 'VERBOSE', default: '', meaning: 'seed switch: any value but 0/false means MOLT_LOG_LEVEL=debug' },
  { name: 'MOLT_MAX_BACKOFF', default: '30s', meaning: 'molt init: longest wait between restarts of a dying service (environment only)' },
  { name: 'MOLT_FINISH_TIMEOUT', default: '5s', meaning: 'molt init: how long a finish script may run (environment only)' },
  { name: 'MOLT_LOG_PREFIX', default: '1', meaning: 'molt init: 0 stops prefixing service output with [name] (environment only)' },
];

/** Read from the environment only: by molt init (a different value in the file would split init and
 *  updater), the trust settings (read before anything else, so that no file can loosen them), and
 *  MOLT_BUNDLED (installed without a signature check, as part of the image: a file must not name one),
 *  MOLT_SELF (what PID 1 becomes: a file must not choose it). */
export const ENV_ONLY = new Set(['MOLT_FLEET', 'MOLT_REPLICA_ID', 'MOLT_CANARY', 'MOLT_CANARY_COMMITS', 'MOLT_FLEET_KEY', 'MOLT_FLEET_KEYS', 'MOLT_BUNDLED', 'MOLT_SELF', 'MOLT_TRUST_KEYS', 'MOLT_TRUST_IDENTITY', 'MOLT_TRUST_ISSUER', 'MOLT_TRUST_ROOT', 'MOLT_TRUST_TUF_URL', 'MOLT_TRUST_TUF_ROOT', 'MOLT_CONFIG', 'MOLT_SERVICES', 'SVDIR', 'MOLT_MAX_BACKOFF', 'MOLT_FINISH_TIMEOUT', 'MOLT_LOG_PREFIX']);
export const KNOWN = new Set(configReference.map((r) => r.name));
/** Values never shown in messages. MOLT_NOTIFY_URL is here because webhook URLs carry their token. */
export const SECRET = new Set(['GITHUB_TOKEN', 'MOLT_OCI_PASSWORD', 'MOLT_ADMIN_TOKEN', 'MOLT_WEBHOOK_SECRET', 'MOLT_NOTIFY_URL']);
