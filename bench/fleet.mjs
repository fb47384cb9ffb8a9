#!/usr/bin/env node
// A simulated fleet (issue 16): Debian's docker-registry on loopback behind a counting proxy,
// and N replicas, each a real `molt init` (own process group, subreaper) supervising a tiny
// shell app and a real `molt updater` with its own MOLT_HOME, all following the semver tags
// of one repository. 1.0.0 is installed everywhere; then 2.0.0, whose app exits at once
// (a release that crashes at start); then 3.0.0, good. Measured, with verdicts
// (MOLT_FLEET=1, MOLT_CANARY=5%) and without (MOLT_FLEET=0: today's rollout spread alone),
// the same MOLT_ROLLOUT window either way:
//   - replicas that ran 2.0.0 (an `update` event for it in their state.json history);
//   - time from publishing 2.0.0 until every replica had blocked it;
//   - time from publishing 3.0.0 until every replica runs it, committed;
//   - registry requests per replica per minute, at rest and while releases were pending
//     (counted by the proxy, by kind);
//   - peak memory: the largest sum of RSS over every replica's processes, and the updaters' VmHWM.
//
//   node bench/fleet.mjs [N] [--mode both|fleet|off] [--write]
//     N: replicas (default 50). --write: add this section to bench/RESULTS.md (and bench/fleet.json).
//
// Everything started here is killed by process group on every exit; temp directories are removed.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { BENCH, CLI, DIST, NODE, ROOT, childrenOf, descendantsOf, git, kill, log, median, onExit, readText, requireBins, requireBuilt, sleep, statusKiB, waitFor, watchdog, reportSection } from './lib.mjs';

const args = process.argv.slice(2);
const write = args.includes('--write');
const modeArg = args.includes('--mode') ? args[args.indexOf('--mode') + 1] : 'both';
const N = Number(args.find((a) => /^\d+$/.test(a)) ?? 50);
if (!(N >= 1 && N <= 500) || !['both', 'fleet', 'off'].includes(modeArg)) {
  process.stderr.write('usage: node bench/fleet.mjs [N (1..500)] [--mode both|fleet|off] [--write]\n');
  process.exit(2);
}
const INTERVAL = '5s';
const JITTER = '2s';
const ROLLOUT_S = 60;
const TRIAL = '3s';
const CANARY = '5%';

requireBuilt([CLI, path.join(DIST, 'test/helpers/registry.js'), path.join(DIST, 'src/update/fleet/wave.js')]);
requireBins(['/usr/bin/docker-registry', '/bin/tar'], 'apt-get install docker-registry tar');
const { startRegistry } = await import(pathToFileURL(path.join(DIST, 'test/helpers/registry.js')).href);
const { isCanary } = await import(pathToFileURL(path.join(DIST, 'src/update/fleet/wave.js')).href);
watchdog(60);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-fleet-bench-'));
const groups = new Set();
let registry;
let proxy;
/** molt init and every process under it: services run in process groups of their own, so a group kill is not enough. */
function killReplica(pid) {
  const all = [pid, ...descendantsOf(pid)];
  for (const p of all) kill(p);
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // gone already
  }
}
onExit(() => {
  for (const pgid of groups) killReplica(pgid);
  proxy?.close();
  // The registry helper keeps its ChildProcess to itself: find it among our children by name.
  for (const pid of childrenOf(process.pid)) if ((readText(`/proc/${pid}/cmdline`) ?? '').includes('docker-registry')) kill(pid);
  if (registry) fs.rmSync(path.dirname(registry.root), { recursive: true, force: true });
  fs.rmSync(work, { recursive: true, force: true });
});

// ---------------------------------------------------------------- registry and counting proxy
registry = await startRegistry();
const counts = { total: 0, kinds: {} };
const kindOf = (req) => {
  const u = req.url ?? '';
  if (req.method !== 'GET' && req.method !== 'HEAD') return 'write';
  if (/\/manifests\/sha256-[0-9a-f]{64}$/.test(u)) return 'verdicts (referrers index)';
  if (/\/referrers\//.test(u)) return 'verdicts (referrers API)';
  if (/\/manifests\/molt-paused$/.test(u)) return 'pause tag';
  if (/\/tags\/list/.test(u)) return 'tag list';
  if (/\/manifests\//.test(u)) return `manifest ${req.method}`;
  if (/\/blobs\//.test(u)) return `blob ${req.method}`;
  return 'other';
};
proxy = http.createServer((req, res) => {
  const kind = kindOf(req);
  counts.total++;
  counts.kinds[kind] = (counts.kinds[kind] ?? 0) + 1;
  const up = http.request(new URL(req.url ?? '/', registry.url), { method: req.method, headers: req.headers }, (r) => {
    res.writeHead(r.statusCode ?? 502, r.headers);
    r.pipe(res);
  });
  up.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(up);
});
proxy.keepAliveTimeout = 30_000;
await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
const proxyHost = `127.0.0.1:${proxy.address().port}`;
const snapshot = () => ({ total: counts.total, kinds: { ...counts.kinds } });
const diff = (a, b) => {
  const kinds = {};
  for (const k of new Set([...Object.keys(a.kinds), ...Object.keys(b.kinds)])) kinds[k] = (b.kinds[k] ?? 0) - (a.kinds[k] ?? 0);
  return { total: b.total - a.total, kinds };
};

// ---------------------------------------------------------------- releases of a tiny app
const bin = path.join(work, 'bin');
fs.mkdirSync(bin);
fs.writeFileSync(path.join(bin, 'molt'), `#!/bin/sh\nexec "${NODE}" "${CLI}" "$@"\n`, { mode: 0o755 });
function publish(version, crash) {
  const dir = path.join(work, 'rel', version);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'run'), crash ? '#!/bin/sh\necho "crashing at start"\nexit 1\n' : '#!/bin/sh\nexec sleep 1000000\n', { mode: 0o755 });
  const tgz = path.join(work, 'rel', `${version}.tar.gz`);
  if (spawnSync('tar', ['-C', dir, '-czf', tgz, '.']).status !== 0) throw new Error('tar failed');
  const r = spawnSync(NODE, [CLI, 'publish', `${registry.host}/app:${version}`, tgz], { encoding: 'utf8', env: { ...process.env, MOLT_LOG_LEVEL: 'warn' } });
  if (r.status !== 0) throw new Error(`molt publish ${version}: ${r.stderr}`);
}

// ---------------------------------------------------------------- replicas
function startReplica(i, mode) {
  const root = path.join(work, mode, `r${i}`);
  const services = path.join(root, 'services');
  for (const svc of ['app', 'updater']) {
    fs.mkdirSync(path.join(services, svc), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'services', svc, 'run'), path.join(services, svc, 'run'));
    fs.chmodSync(path.join(services, svc, 'run'), 0o755);
  }
  const home = path.join(root, 'home');
  const env = {
    PATH: `${bin}:${path.dirname(NODE)}:/usr/bin:/bin`,
    MOLT_SERVICES: services,
    MOLT_HOME: home,
    MOLT_SOCKET: path.join(root, 'molt.sock'),
    MOLT_VERSION_FILE: path.join(root, 'version'),
    MOLT_OCI: `${proxyHost}/app`,
    MOLT_INTERVAL: INTERVAL,
    MOLT_JITTER: JITTER,
    MOLT_ROLLOUT: `${ROLLOUT_S}s`,
    MOLT_TRIAL: TRIAL,
    MOLT_STOP_TIMEOUT: '3s',
    MOLT_MAX_BACKOFF: '1s',
    MOLT_LOG_LEVEL: 'warn',
    MOLT_REPLICA_ID: `replica-${i}`,
    ...(mode === 'fleet' ? { MOLT_FLEET: '1', MOLT_CANARY: CANARY, MOLT_CANARY_COMMITS: '1' } : { MOLT_FLEET: '0' }),
  };
  const out = fs.openSync(path.join(root, 'molt.log'), 'a');
  const p = spawn(NODE, [CLI, 'init'], { env, detached: true, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  groups.add(p.pid);
  return { i, root, home, pid: p.pid, proc: p };
}

function state(r) {
  const text = readText(path.join(r.home, 'state.json'));
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined; // mid-rename: read again next time
  }
}
function current(r) {
  try {
    return path.basename(fs.realpathSync(path.join(r.home, 'current')));
  } catch {
    return undefined;
  }
}
const committed = (r, v) => {
  const s = state(r);
  return current(r) === v && s?.phase === 'idle' && s.history.some((h) => h.event === 'commit' && h.version === v);
};

/** Total RSS of every replica's processes (KiB), sampled. */
let peakKiB = 0;
function sampleMemory(replicas) {
  let sum = 0;
  for (const r of replicas) for (const pid of [r.pid, ...descendantsOf(r.pid)]) sum += statusKiB(pid, 'VmRSS') || 0;
  peakKiB = Math.max(peakKiB, sum);
}
function updaterHwm(replicas) {
  const out = [];
  for (const r of replicas) {
    for (const pid of descendantsOf(r.pid)) {
      const cmd = (readText(`/proc/${pid}/cmdline`) ?? '').split('\0');
      if (cmd.includes('updater')) out.push(statusKiB(pid, 'VmHWM'));
    }
  }
  return out.filter((x) => x > 0);
}

async function runFleet(mode) {
  log(`${mode}: ${N} replicas`);
  counts.total = 0;
  counts.kinds = {};
  peakKiB = 0;
  publish('1.0.0', false);
  const replicas = [];
  for (let i = 0; i < N; i++) {
    replicas.push(startReplica(i, mode));
    // A gentle start on two cores: molt init and the updater are two Node starts each.
    await sleep(150);
  }
  const memTimer = setInterval(() => sampleMemory(replicas), 1000);
  try {
    await waitFor('every replica on 1.0.0', () => replicas.every((r) => committed(r, '1.0.0')), 10 * 60_000, 500);
    log(`${mode}: all on 1.0.0`);
    // At rest: one minute with nothing new, after the 1.0.0 verdicts were written (a write ends within a few seconds).
    await sleep(20_000);
    const restA = snapshot();
    const restT = performance.now();
    await sleep(60_000);
    const rest = diff(restA, snapshot());
    const restMin = (performance.now() - restT) / 60_000;

    const pendA = snapshot();
    const t2 = performance.now();
    publish('2.0.0', true);
    await waitFor('every replica blocked 2.0.0', () => replicas.every((r) => state(r)?.blocked?.some((b) => b.version === '2.0.0') && state(r)?.phase === 'idle'), 15 * 60_000, 250);
    const allBlockedS = (performance.now() - t2) / 1000;
    const ranBad = replicas.filter((r) => state(r)?.history.some((h) => h.event === 'update' && h.version === '2.0.0')).length;
    const byFleet = replicas.filter((r) => state(r)?.blocked?.some((b) => b.version === '2.0.0' && b.reason.startsWith('fleet: '))).length;
    log(`${mode}: all blocked 2.0.0 after ${allBlockedS.toFixed(1)} s; ${ranBad} ran it`);
    const t3 = performance.now();
    publish('3.0.0', false);
    await waitFor('every replica on 3.0.0', () => replicas.every((r) => committed(r, '3.0.0')), 15 * 60_000, 250);
    const allGoodS = (performance.now() - t3) / 1000;
    const pending = diff(pendA, snapshot());
    const pendMin = (performance.now() - t2) / 60_000;
    log(`${mode}: all on 3.0.0 after ${allGoodS.toFixed(1)} s`);
    const hwm = updaterHwm(replicas);
    const canaries = mode === 'fleet' ? replicas.filter((r) => isCanary(`replica-${r.i}`, 0.05)).length : 0;
    return {
      mode,
      n: N,
      canaries,
      ranBad,
      blockedByFleet: byFleet,
      allBlockedS: +allBlockedS.toFixed(1),
      allGoodS: +allGoodS.toFixed(1),
      restPerReplicaMin: +(rest.total / N / restMin).toFixed(2),
      restKinds: rest.kinds,
      pendingPerReplicaMin: +(pending.total / N / pendMin).toFixed(2),
      pendingPerReplica: +(pending.total / N).toFixed(1),
      pendingKinds: pending.kinds,
      pendingMinutes: +pendMin.toFixed(2),
      peakTotalMiB: Math.round(peakKiB / 1024),
      updaterHwmMiB: { median: Math.round(median(hwm) / 1024), max: Math.round(Math.max(...hwm) / 1024) },
    };
  } finally {
    clearInterval(memTimer);
    for (const r of replicas) {
      killReplica(r.pid);
      groups.delete(r.pid);
    }
    await sleep(1000);
  }
}

const results = [];
for (const mode of modeArg === 'both' ? ['fleet', 'off'] : [modeArg]) {
  // Each mode gets a fresh registry so verdicts and tags of the previous run do not count.
  if (results.length) {
    await registry.stop();
    registry = await startRegistry();
  }
  results.push(await runFleet(mode));
  process.stdout.write(JSON.stringify(results.at(-1)) + '\n');
}

// ---------------------------------------------------------------- report
const commit = git(['rev-parse', '--short', 'HEAD']);
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const L = [];
L.push('## Fleet (bench/fleet.mjs)', '');
L.push(`${N} replicas on this machine (${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GB), each a real \`molt init\` with a shell app and a real \`molt updater\` (own MOLT_HOME), following the semver tags of one repository of Debian's docker-registry on loopback through a counting proxy. MOLT_INTERVAL=${INTERVAL}, MOLT_JITTER=${JITTER}, MOLT_ROLLOUT=${ROLLOUT_S}s, MOLT_TRIAL=${TRIAL}; with verdicts: MOLT_FLEET=1, MOLT_CANARY=${CANARY}, MOLT_CANARY_COMMITS=1 (replica ids replica-0..${N - 1}); without: MOLT_FLEET=0 (the rollout spread alone, as before). 2.0.0 exits at start; 3.0.0 is good. Commit ${commit}.`, '');
L.push('| | ' + results.map((r) => (r.mode === 'fleet' ? 'verdicts + canary 5%' : 'no verdicts (before)')).join(' | ') + ' |');
L.push('|---|' + results.map(() => '---').join('|') + '|');
const row = (name, f) => L.push(`| ${name} | ${results.map(f).join(' | ')} |`);
row('canaries (by hash)', (r) => (r.mode === 'fleet' ? String(r.canaries) : '–'));
row('replicas that ran the bad release', (r) => `${r.ranBad} of ${r.n}`);
row('blocked by another replica\'s verdict', (r) => String(r.blockedByFleet));
row('publish of 2.0.0 → every replica blocked it', (r) => `${r.allBlockedS} s`);
row('publish of 3.0.0 → every replica runs it', (r) => `${r.allGoodS} s`);
row('registry requests / replica / min, at rest', (r) => String(r.restPerReplicaMin));
row('registry requests / replica / min, releases pending', (r) => `${r.pendingPerReplicaMin} (over ${r.pendingMinutes} min)`);
row('registry requests / replica, publish of 2.0.0 → all on 3.0.0', (r) => String(r.pendingPerReplica));
row('peak RSS of the whole fleet', (r) => `${r.peakTotalMiB} MiB`);
row('updater VmHWM, median / max', (r) => `${r.updaterHwmMiB.median} / ${r.updaterHwmMiB.max} MiB`);
L.push('');
for (const r of results) L.push(`Requests while pending (${r.mode}): ${Object.entries(r.pendingKinds).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')}.`);
L.push('');
L.push(`Command: \`npx tsc -p . && node bench/fleet.mjs ${N}${modeArg !== 'both' ? ` --mode ${modeArg}` : ''} --write\`${N < 50 ? ` (N=${N}, below the issue's 50: the machine was shared with other work)` : ''}.`, '');
const f = results.find((r) => r.mode === 'fleet');
if (f) {
  const intervalS = Number.parseInt(INTERVAL, 10);
  const rest10k = Math.round(f.restPerReplicaMin * 10_000 / 60);
  const pend10k = Math.round(f.pendingPerReplicaMin * 10_000 / 60);
  L.push(
    `**At 10,000 replicas (on paper).** At rest a replica makes ${f.restPerReplicaMin} requests a minute at MOLT_INTERVAL=${INTERVAL} (a GET of the tag list per poll for semver tags, a HEAD for a followed tag; verdicts are not read when nothing is pending), so 10,000 replicas make about ${rest10k} requests/s, which scales with 1/MOLT_INTERVAL: at the default 5m it is ${Math.round(rest10k * intervalS / 300)} requests/s, which one registry serves. ` +
      `While a release is pending each replica adds one GET of the release's referrers index per poll (and one per staged re-check), measured ${f.pendingPerReplicaMin} requests/replica/min here in all, about ${pend10k} requests/s for 10,000 at this interval. ` +
      'Every replica downloads each new layer once (cached by digest), so the release\'s bytes × replicas is the bandwidth bill, the same as without verdicts. ' +
      'The verdict list stays small: a replica writes `committed` only while fewer than 16 are listed and `blocked` only while none is, so the index holds the canaries that failed at the same moment plus 16 commits, each entry under 1 KiB (2 KiB signed). ' +
      'Where it stops scaling: MOLT_CANARY is a share, so 5% of 10,000 is 500 canaries trying a bad release at once and up to 500 concurrent writers on one index, which has no compare-and-swap on the registry (the re-read-and-add rounds converge, but with hundreds of writers they take many rounds and the index read by every pending replica grows to hundreds of KiB). ' +
      'For large fleets choose a share that gives a handful of canaries (0.05% of 10,000 = 5), raise MOLT_CANARY_COMMITS to a few, and keep MOLT_INTERVAL at minutes; past that, registry rate limits (Docker Hub: per-IP pull limits) and the referrers index being one tag are the limits, and a real referrers API (no index to rewrite) removes the second.',
  );
}
const md = L.join('\n');
reportSection('bench/fleet.mjs', md, { write, log, json: { name: 'fleet.json', data: { commit, at: new Date().toISOString(), results } } });
process.exit(0);
