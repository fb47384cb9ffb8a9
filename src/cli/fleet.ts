// `molt block VERSION --fleet`, `molt unblock VERSION --fleet`, `molt pause [--fleet]`,
// `molt resume [--fleet]`: verdicts and the pause tag written straight to the registry
// (or, for block/unblock on GitHub, a release asset) with the updater's own settings
// (MOLT_OCI and its credentials or MOLT_GITHUB and GITHUB_TOKEN, MOLT_FLEET_KEY); the
// replicas see them at their next poll. Without --fleet, pause/resume is this replica's
// $MOLT_HOME/paused and block/unblock go to the running updater.
import fs from 'node:fs';
import os from 'node:os';
import { writeFileAtomicSync } from '../common/atomic.js';
import { ConfigError, readUpdaterConfig, type UpdaterConfig } from '../update/config.js';
import { readFleetConfig, type FleetConfig } from '../update/fleet/config.js';
import { VerdictBoard } from '../update/fleet/board.js';
import { pauseFile } from '../update/fleet/fleet.js';
import { RegistryClient } from '../update/oci/client.js';
import { DIGEST_RE, parseReference } from '../update/oci/reference.js';
import { OciSource } from '../update/sources/oci.js';
import { GitHubSource } from '../update/sources/github.js';
import { GitHubFleetBoard } from '../update/fleet/github-board.js';
import { VersionStore } from '../update/store.js';
import { loadTrustConfig } from '../update/trust/config.js';
import { TrustConfigError } from '../update/trust/keys.js';
import { UpdateError } from '../update/types.js';

const USAGE: Record<string, string> = {
  block: 'molt block VERSION [--fleet] [--reason TEXT]',
  unblock: 'molt unblock VERSION [--self | --fleet [--reason TEXT]]',
  pause: 'molt pause [--fleet] [--reason TEXT]',
  resume: 'molt resume [--fleet]',
};

class UsageError extends Error {}

function parse(name: string, argv: string[]): { fleet: boolean; reason?: string; args: string[] } {
  let fleet = false;
  let reason: string | undefined;
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--fleet') fleet = true;
    else if (a === '--reason') reason = argv[++i];
    else if (a.startsWith('--reason=')) reason = a.slice('--reason='.length);
    else if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
    else args.push(a);
  }
  const want = name === 'block' || name === 'unblock' ? 1 : 0;
  if (args.length !== want) throw new UsageError(want ? 'VERSION is required (one)' : 'takes no VERSION');
  return { fleet, args, ...(reason !== undefined ? { reason } : {}) };
}

interface Setup {
  cfg: UpdaterConfig;
  fleet: FleetConfig;
}

function setup(): Setup {
  const trust = loadTrustConfig(process.env);
  const cfg = readUpdaterConfig(process.env);
  return { cfg, fleet: readFleetConfig(process.env, trust, os.hostname()) };
}

function board(s: Setup): VerdictBoard {
  if (s.cfg.source.kind === 'github') throw new UsageError('a fleet pause is not kept on GitHub: pause each replica with molt pause, or use an OCI source (docs/fleet.md)');
  if (s.cfg.source.kind !== 'oci') throw new UsageError('--fleet needs an OCI or GitHub source (MOLT_OCI, MOLT_GITHUB): verdicts live there');
  const ref = parseReference(s.cfg.source.ref, { insecure: s.cfg.source.insecure });
  return new VerdictBoard(new RegistryClient(ref, { push: true }), { trust: s.fleet.trust, ...(s.fleet.key ? { key: s.fleet.key } : {}) });
}

/** VERSION as the release manifest's digest: a digest itself, a tag (VERSION or vVERSION), or the followed tag's release of that version. */
async function subjectOf(b: VerdictBoard, s: Setup, version: string): Promise<{ digest: string; mediaType: string; size: number }> {
  const head = async (ref: string) => {
    try {
      return await b.client.headManifest(ref);
    } catch (err) {
      if (err instanceof UpdateError && err.code === 'not-found') return undefined;
      throw err;
    }
  };
  if (DIGEST_RE.test(version)) {
    const h = await head(version);
    if (h) return { digest: h.digest, mediaType: h.mediaType, size: h.size ?? 0 };
  }
  for (const tag of [version, `v${version}`]) {
    if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(tag)) continue;
    const h = await head(tag);
    if (h) return { digest: h.digest, mediaType: h.mediaType, size: h.size ?? 0 };
  }
  if (s.cfg.source.kind === 'oci') {
    const src = new OciSource(s.cfg.source.ref, { insecure: s.cfg.source.insecure });
    const r = (await src.list()).releases.find((x) => x.version === version && x.digest);
    const h = r?.digest ? await head(r.digest) : undefined;
    if (h) return { digest: h.digest, mediaType: h.mediaType, size: h.size ?? 0 };
  }
  throw new UsageError(`no release ${version} at ${b.client.ref.registry}/${b.client.ref.repository}`);
}

/** On GitHub: a verdict asset uploaded to the release of VERSION (its tag VERSION or vVERSION), with GITHUB_TOKEN. */
async function githubVerdict(name: 'block' | 'unblock', s: Setup, version: string, reason: string | undefined): Promise<number> {
  const src = s.cfg.source;
  if (src.kind !== 'github') throw new Error('internal: not a GitHub source');
  if (!src.token) throw new UsageError('--fleet on GitHub needs GITHUB_TOKEN with write access to the repository: verdicts are release assets');
  const gh = new GitHubSource({ repo: src.repo, token: src.token, ...(src.apiUrl ? { baseUrl: src.apiUrl } : {}), store: new VersionStore(s.cfg.home) });
  const r = (await gh.list()).releases.find((x) => x.version === version || x.tag === version);
  if (!r) throw new UsageError(`no release ${version} in ${src.repo}`);
  const b = new GitHubFleetBoard(gh.fleetPort(), { trust: s.fleet.trust, ...(s.fleet.key ? { key: s.fleet.key } : {}) });
  const kind = name === 'block' ? 'blocked' : 'unblocked';
  const at = await b.write(r, { kind, subject: await b.subject(r), version: r.version, reason: reason ?? `molt ${name} --fleet`, replica: s.fleet.replica, time: new Date().toISOString() });
  process.stdout.write(`${kind} ${r.version} (${r.tag}, asset ${at}) for the fleet\n`);
  return 0;
}

async function verdict(name: 'block' | 'unblock', s: Setup, version: string, reason: string | undefined): Promise<number> {
  if (s.cfg.source.kind === 'github') return githubVerdict(name, s, version, reason);
  const b = board(s);
  const subject = await subjectOf(b, s, version);
  const kind = name === 'block' ? 'blocked' : 'unblocked';
  await b.write(subject, { kind, subject: subject.digest, version, reason: reason ?? `molt ${name} --fleet`, replica: s.fleet.replica, time: new Date().toISOString() });
  process.stdout.write(`${kind} ${version} (${subject.digest}) for the fleet\n`);
  return 0;
}

async function pause(name: 'pause' | 'resume', s: Setup, fleet: boolean, reason: string | undefined): Promise<number> {
  if (fleet) {
    await board(s).writePause(name === 'pause', s.fleet.replica, reason ?? `molt ${name} --fleet`);
    process.stdout.write(name === 'pause' ? 'paused the fleet: replicas check but apply nothing until molt resume --fleet\n' : 'resumed the fleet\n');
    return 0;
  }
  const file = pauseFile(s.cfg.home);
  if (name === 'pause') {
    writeFileAtomicSync(file, `paused ${new Date().toISOString()}${reason ? ` ${reason.replace(/\s+/g, ' ')}` : ''}\n`);
    process.stdout.write('paused: updates are checked, not applied, until molt resume\n');
  } else {
    fs.rmSync(file, { force: true });
    process.stdout.write('resumed\n');
  }
  return 0;
}

export async function main(name: string, argv: string[]): Promise<number> {
  // Without --fleet, block and unblock are the running updater's business.
  if ((name === 'block' || name === 'unblock') && !argv.includes('--fleet')) return (await import('./control.js')).runControl(name, argv);
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(`usage: ${USAGE[name]}\n`);
    return 0;
  }
  let o: ReturnType<typeof parse>;
  try {
    o = parse(name, argv);
  } catch (err) {
    process.stderr.write(`molt ${name}: ${(err as Error).message}\nusage: ${USAGE[name]}\n`);
    return 2;
  }
  try {
    const s = setup();
    if (name === 'block' || name === 'unblock') return await verdict(name, s, o.args[0]!, o.reason);
    return await pause(name as 'pause' | 'resume', s, o.fleet, o.reason);
  } catch (err) {
    const usage = err instanceof UsageError || err instanceof ConfigError || err instanceof TrustConfigError;
    process.stderr.write(`molt ${name}: ${(err as Error).message.split('\n')[0]}\n`);
    return usage ? 2 : 1;
  }
}
