#!/usr/bin/env node
// Keyless verification with a cached trusted root (issue 12's benchmark): the
// cost of checking one Sigstore bundle (DSSE, in-toto statement naming a
// 200 MB release by its sha256) against MOLT_TRUST_IDENTITY when the Sigstore
// trusted root is already cached under MOLT_HOME by the TUF keeper
// (src/update/trust/tuf.ts). No network: the root is fetched once from a
// loopback TUF repository (test/helpers/tuf.ts), which is then closed, and the
// measured processes point MOLT_TRUST_TUF_URL at it, closed.
//
//   node bench/verify.mjs            markdown on stdout
//   node bench/verify.mjs --write    also replace this section of bench/RESULTS.md
//
// Two numbers: warm, one verification in a running updater (root loaded,
// verifier built: what every release after the first costs), median of 200;
// and cold, a fresh process's first one: load the @sigstore modules, read the
// cached root from MOLT_HOME, build the verifier, verify (Node's own start-up
// not counted), median of 5 child processes. The 200 MB release's digest is
// computed once, untimed: the download computes it while streaming
// (bench/download.mjs), the bundle check only reads it.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BENCH, DIST, NODE, git, log, median, percentile, requireBuilt, watchdog, reportSection } from './lib.mjs';

const imp = (rel) => import(pathToFileURL(path.join(DIST, rel)).href);
const IDENTITY = 'https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v*';
const NAME = 'app-1.2.0-linux-amd64.tar.gz';

// ------------------------------------------------------------ child mode: one cold verification

if (process.argv[2] === '--child') {
  const [home, envJson, bundleFile, sha] = process.argv.slice(3);
  const bundle = fs.readFileSync(bundleFile, 'utf8');
  const t0 = performance.now();
  const { loadTrustConfig } = await imp('src/update/trust/config.js');
  const { keepTrustRoot } = await imp('src/update/trust/tuf.js');
  const { verifySigstoreBundle } = await imp('src/update/trust/sigstore.js');
  const trust = loadTrustConfig(JSON.parse(envJson));
  keepTrustRoot(trust, home);
  if (!trust.keyless) throw new Error('no cached root');
  const t1 = performance.now();
  const v = verifySigstoreBundle(bundle, trust.keyless, NAME, sha);
  const t2 = performance.now();
  if (v.kind !== 'valid') throw new Error(`not valid: ${JSON.stringify(v)}`);
  process.stdout.write(JSON.stringify({ ms: t2 - t0, load: t1 - t0, first: t2 - t1 }) + '\n');
  process.exit(0);
}

// ------------------------------------------------------------ main

const write = process.argv.includes('--write');
requireBuilt([path.join(DIST, 'src/update/trust/tuf.js'), path.join(DIST, 'test/helpers/tuf.js')]);
watchdog(10);
const started = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-bench-verify-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

// The digest of a 200 MB release (pseudo-random bytes, hashed in 4 MiB pieces; untimed).
const RELEASE_BYTES = 200 * 1024 * 1024;
const hash = crypto.createHash('sha256');
const piece = crypto.randomBytes(4 << 20);
for (let n = 0; n < RELEASE_BYTES; n += piece.length) {
  piece[0] = n & 0xff; // each piece differs
  hash.update(piece);
}
const sha = hash.digest('hex');

const { testSigstore } = await imp('test/helpers/sigstore.js');
const { TestTufRepo } = await imp('test/helpers/tuf.js');
const { loadTrustConfig } = await imp('src/update/trust/config.js');
const { keepTrustRoot } = await imp('src/update/trust/tuf.js');
const { verifySigstoreBundle } = await imp('src/update/trust/sigstore.js');
const { setLogSink } = await imp('src/common/log.js');
setLogSink(() => {});

fs.mkdirSync(path.join(tmp, 'sigstore'));
const sigstore = testSigstore(path.join(tmp, 'sigstore'));
const bundle = sigstore.bundle([{ name: NAME, sha256: sha }], IDENTITY.replace('v*', 'v1.2.0'));
const bundleFile = path.join(tmp, 'bundle.json');
fs.writeFileSync(bundleFile, bundle);

// The root through TUF once, into MOLT_HOME; then the repository is gone.
const repo = new TestTufRepo(Buffer.from(JSON.stringify(sigstore.root())));
const url = await repo.serve();
fs.writeFileSync(path.join(tmp, 'tuf-root.json'), repo.rootJson());
const env = { MOLT_TRUST_IDENTITY: IDENTITY, MOLT_TRUST_TUF_URL: url, MOLT_TRUST_TUF_ROOT: path.join(tmp, 'tuf-root.json') };
const home = path.join(tmp, 'home');
fs.mkdirSync(home);
{
  const trust = loadTrustConfig(env);
  if (!(await keepTrustRoot(trust, home).refresh())) throw new Error('the loopback TUF repository did not answer');
}
await repo.close();

// Warm: the updater's state after its first verification.
const trust = loadTrustConfig(env);
keepTrustRoot(trust, home);
if (!trust.keyless) throw new Error('the cached root was not loaded');
const check = () => {
  const v = verifySigstoreBundle(bundle, trust.keyless, NAME, sha);
  if (v.kind !== 'valid') throw new Error(JSON.stringify(v));
};
for (let i = 0; i < 20; i++) check();
const warm = [];
for (let i = 0; i < 200; i++) {
  const t = performance.now();
  check();
  warm.push(performance.now() - t);
}

// Cold: a fresh process each time.
const cold = [];
for (let i = 0; i < 5; i++) {
  const r = spawnSync(NODE, [fileURLToPath(import.meta.url), '--child', home, JSON.stringify(env), bundleFile, sha], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  cold.push(JSON.parse(r.stdout.trim()));
}
const coldMs = cold.map((c) => c.ms);
if (repo.requests.length !== 5) throw new Error(`the measured runs reached the network: ${repo.requests.join(' ')}`);

const f = (x) => x.toFixed(2);
const dirty = git(['status', '--porcelain', '--', 'src']) ? ' + uncommitted changes to src/' : '';
const L = [];
L.push('## Keyless verification with a cached trusted root (bench/verify.mjs)');
L.push('');
L.push(`${started}, molt ${git(['rev-parse', '--short', 'HEAD'])}${dirty}, Node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), load ${os.loadavg()[0].toFixed(2)}.`);
L.push('');
L.push('One Sigstore bundle (v0.3, DSSE in-toto statement naming a 200 MB release by its sha256; a test CA leaf certificate and a test log entry with inclusion proof) checked against `MOLT_TRUST_IDENTITY`, with the Sigstore trusted root already cached under `MOLT_HOME/trust/tuf/` by the TUF keeper. No network: the loopback TUF repository that filled the cache was closed before the measured runs (and counted no request from them).');
L.push('');
L.push('| measurement | median | p95 | min | max | runs |');
L.push('|---|---:|---:|---:|---:|---:|');
L.push(`| warm: one verification in a running updater (root loaded, verifier built) | ${f(median(warm))} ms | ${f(percentile(warm, 95))} ms | ${f(Math.min(...warm))} ms | ${f(Math.max(...warm))} ms | ${warm.length} |`);
L.push(`| cold: a fresh process's first (load @sigstore modules, read the cached root, build the verifier, verify; Node start-up not counted) | ${f(median(coldMs))} ms | | ${f(Math.min(...coldMs))} ms | ${f(Math.max(...coldMs))} ms | ${cold.length} |`);
L.push(`| of which: modules + cached root + verifier, once per process | ${f(median(cold.map((c) => c.load)))} ms | | | | |`);
L.push(`| of which: that process's first verification | ${f(median(cold.map((c) => c.first)))} ms | | | | |`);
L.push('');
L.push('| target (issue 12) | measured (median) | met? |');
L.push('|---|---|---|');
L.push(`| keyless verification with a cached trusted root < 50 ms, no network | ${f(median(warm))} ms warm, ${f(median(coldMs))} ms cold | **${median(warm) < 50 ? 'yes' : 'no'}${median(coldMs) < 50 ? ' (cold too)' : ', not cold: the first check in a process also loads the @sigstore modules, once'}** |`);
L.push('');
L.push("The release's digest is not part of this cost: the download computes it while streaming (bench/download.mjs), and the bundle check reads only the digest, never the 200 MB again.");
L.push('');
L.push('Re-run: `npx tsc -p . && node bench/verify.mjs --write` (under a minute).');
const md = L.join('\n');
reportSection('bench/verify.mjs', md, { write, log });
process.exit(0);
