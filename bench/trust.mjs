#!/usr/bin/env node
// Download + verify + install of a ~200 MB release from a local directory
// (MOLT_DIR: molt's LocalDirSource.fetch, the same download loop as GitHub),
// with and without a signature check, side by side in one run (issue 12's
// benchmark): no trust setting; minisign over the tarball (its default,
// prehashed signature: one BLAKE2b-512 pass more); minisign over SHA256SUMS;
// an openssl P-256 (PEM) signature over SHA256SUMS; a Sigstore bundle beside
// the tarball verified against a test trusted root (MOLT_TRUST_ROOT). Each is
// reported as a ratio to the unsigned run. Then the cost of one keyless
// verification with the trusted root already loaded (no network).
//
//   node bench/trust.mjs              5 runs per variant, round robin, markdown on stdout
//   node bench/trust.mjs --reps 3
//   node bench/trust.mjs --quick      2 runs, 20 MB (smoke test; not for RESULTS.md)
//   node bench/trust.mjs --write      also write its section of bench/RESULTS.md
//   node bench/trust.mjs --only none,minisign   a subset of the variants (not with --write)
//
// Each run is a child Node process with a fresh MOLT_HOME, timing fetch() only
// (list() and the trust settings are loaded before the clock starts).
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BENCH, DIST, NODE, git, log, median, onExit, requireBins, requireBuilt, watchdog, releaseBenchOptions, reportSection } from './lib.mjs';

const mod = (p) => import(pathToFileURL(path.join(DIST, p)).href);

// ------------------------------------------------------------ child mode

if (process.argv[2] === '--child') {
  // node trust.mjs --child DIR HOME ENV_JSON: list, time fetch, print {ms}.
  const [dir, home, envJson] = process.argv.slice(3);
  const { LocalDirSource } = await mod('src/update/sources/local.js');
  const { VersionStore } = await mod('src/update/store.js');
  const { loadTrustConfig } = await mod('src/update/trust/config.js');
  const trust = loadTrustConfig(JSON.parse(envJson));
  const store = new VersionStore(home);
  const source = new LocalDirSource(dir, {});
  const { releases } = await source.list();
  // On-CPU time of the main thread alone (Linux schedstat, ns): the download's thread, the critical path.
  const mainNs = () => Number(fs.readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]);
  const m0 = mainNs();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const fetched = await source.fetch(releases[0], store.stagingRoot(), { trust });
  const ms = performance.now() - t0;
  // CPU time of every thread of the process (the BLAKE2b worker included): what the check costs, whatever the machine's load.
  const c = process.cpuUsage(c0);
  const cpuMs = (c.user + c.system) / 1000;
  const mainMs = (mainNs() - m0) / 1e6;
  process.stdout.write(JSON.stringify({ ms, cpuMs, mainMs, trustedBy: fetched.trustedBy ?? null, downloaded: fetched.downloaded }) + '\n');
  process.exit(0);
}

if (process.argv[2] === '--keyless') {
  // node trust.mjs --keyless BUNDLE ROOT IDENTITY NAME SHA256: the cost of one keyless verification, root loaded.
  const [bundleFile, rootFile, identity, name, sha256] = process.argv.slice(3);
  const { loadTrustConfig } = await mod('src/update/trust/config.js');
  const { verifySigstoreBundle } = await mod('src/update/trust/sigstore.js');
  const text = fs.readFileSync(bundleFile, 'utf8');
  const t0 = performance.now();
  const trust = loadTrustConfig({ MOLT_TRUST_IDENTITY: identity, MOLT_TRUST_ROOT: rootFile });
  const loadMs = performance.now() - t0;
  const times = [];
  for (let i = 0; i < 21; i++) {
    const t = performance.now();
    const v = verifySigstoreBundle(text, trust.keyless, name, sha256);
    times.push(performance.now() - t);
    if (v.kind !== 'valid') throw new Error(`keyless verification failed: ${JSON.stringify(v)}`);
  }
  process.stdout.write(JSON.stringify({ loadMs, firstMs: times[0], medianMs: median(times.slice(1)) }) + '\n');
  process.exit(0);
}

// ------------------------------------------------------------ options

const args = process.argv.slice(2);
const { quick, write, reps: REPS, files: FILES, fileMb: FILE_MB } = releaseBenchOptions(args);
requireBuilt([path.join(DIST, 'src/update/sources/local.js'), path.join(DIST, 'test/helpers/sigstore.js')]);
requireBins(['/usr/bin/minisign', '/usr/bin/openssl', '/bin/bash'], 'apt-get install minisign openssl');
const { testSigstore } = await mod('test/helpers/sigstore.js');

function sh(cmd, opts = {}) {
  const r = spawnSync('/bin/bash', ['-c', cmd], { encoding: 'utf8', timeout: 600_000, ...opts });
  if (r.status !== 0) throw new Error(`${cmd}: exit ${r.status ?? r.signal}: ${r.stderr}`);
  return r.stdout;
}

const T = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-trust-bench-'));
onExit(() => fs.rmSync(T, { recursive: true, force: true }));
watchdog(30);

// ------------------------------------------------------------ the release and its signatures

const NAME = '1.0.0.tar.gz';
log(`packing ${FILES} x ${FILE_MB} MB of random bytes`);
const tree = path.join(T, 'tree');
fs.mkdirSync(path.join(tree, 'data'), { recursive: true });
for (let i = 0; i < FILES; i++) fs.writeFileSync(path.join(tree, 'data', `part-${String(i).padStart(2, '0')}.bin`), crypto.randomBytes(FILE_MB << 20));
fs.writeFileSync(path.join(tree, 'run'), '#!/bin/sh\necho big\n', { mode: 0o755 });
const tarball = path.join(T, NAME);
sh(`tar -C '${tree}' -cf - . | gzip -1 > '${tarball}'`);
fs.rmSync(tree, { recursive: true, force: true });
const gzBytes = fs.statSync(tarball).size;
const sha256 = sh(`sha256sum '${tarball}'`).split(' ')[0];

const keys = path.join(T, 'keys');
fs.mkdirSync(keys);
sh(`minisign -G -W -p mini.pub -s mini.key`, { cwd: keys });
sh(`openssl ecparam -name prime256v1 -genkey -noout -out p256.key && openssl ec -in p256.key -pubout -out p256.pub 2>/dev/null`, { cwd: keys });
const IDENTITY = 'https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0';
const sigstoreDir = path.join(T, 'sigstore');
fs.mkdirSync(sigstoreDir);
const sigstore = testSigstore(sigstoreDir);
const rootFile = path.join(T, 'trusted_root.json');
fs.writeFileSync(rootFile, JSON.stringify(sigstore.root()));

/** A release directory holding the tarball (a hard link: the same file, the same page cache) and `files`. */
function releaseDir(name, files) {
  const dir = path.join(T, `dir-${name}`);
  fs.mkdirSync(dir);
  fs.linkSync(tarball, path.join(dir, NAME));
  for (const [f, data] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), data);
  return dir;
}
const sums = `${sha256}  ${NAME}\n`;
const sumsFile = path.join(T, 'SHA256SUMS');
fs.writeFileSync(sumsFile, sums);
sh(`minisign -S -s '${keys}/mini.key' -m '${tarball}'`);
sh(`minisign -S -s '${keys}/mini.key' -m '${sumsFile}'`);
sh(`openssl dgst -sha256 -sign '${keys}/p256.key' -out '${sumsFile}.sig' '${sumsFile}'`);
const bundle = sigstore.bundle([{ name: NAME, sha256 }], IDENTITY);
const bundleFile = path.join(T, `${NAME}.sigstore.json`);
fs.writeFileSync(bundleFile, bundle);

const ALL_VARIANTS = [
  { id: 'none', label: 'no signature check', env: {}, dir: releaseDir('none', {}) },
  { id: 'minisign', label: 'minisign, `<file>.minisig` (prehashed)', env: { MOLT_TRUST_KEYS: `${keys}/mini.pub` }, dir: releaseDir('minisign', { [`${NAME}.minisig`]: fs.readFileSync(`${tarball}.minisig`) }) },
  { id: 'minisign-sums', label: 'minisign over SHA256SUMS', env: { MOLT_TRUST_KEYS: `${keys}/mini.pub` }, dir: releaseDir('minisign-sums', { SHA256SUMS: sums, 'SHA256SUMS.minisig': fs.readFileSync(`${sumsFile}.minisig`) }) },
  { id: 'pem', label: 'PEM (openssl P-256) over SHA256SUMS', env: { MOLT_TRUST_KEYS: `${keys}/p256.pub` }, dir: releaseDir('pem', { SHA256SUMS: sums, 'SHA256SUMS.sig': fs.readFileSync(`${sumsFile}.sig`) }) },
  { id: 'sigstore', label: 'Sigstore bundle, `<file>.sigstore.json`', env: { MOLT_TRUST_IDENTITY: IDENTITY, MOLT_TRUST_ROOT: rootFile }, dir: releaseDir('sigstore', { [`${NAME}.sigstore.json`]: bundle }) },
];

// --only none,minisign: a subset (never with --write: the section compares all five).
const onlyArg = args.indexOf('--only');
const only = onlyArg >= 0 ? new Set(String(args[onlyArg + 1]).split(',')) : undefined;
if (only && write) {
  process.stderr.write('bench: --only and --write do not go together\n');
  process.exit(2);
}
const VARIANTS = ALL_VARIANTS.filter((v) => !only || only.has(v.id));
if (!VARIANTS.some((v) => v.id === 'none')) {
  process.stderr.write(`bench: --only must include none (the baseline); variants: ${ALL_VARIANTS.map((v) => v.id).join(', ')}\n`);
  process.exit(2);
}

// ------------------------------------------------------------ runs

function child(argv) {
  return new Promise((resolve, reject) => {
    const p = spawn(NODE, [fileURLToPath(import.meta.url), ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d) => (err = (err + d).slice(-4000)));
    const t = setTimeout(() => p.kill('SIGKILL'), 600_000);
    p.on('exit', (code) => {
      clearTimeout(t);
      if (code !== 0) return reject(new Error(`child ${argv[0]} exit ${code}: ${err}`));
      resolve(JSON.parse(out.trim().split('\n').pop()));
    });
  });
}

let run = 0;
async function fetchRun(v) {
  const home = path.join(T, `home-${run++}`);
  const r = await child(['--child', v.dir, home, JSON.stringify(v.env)]);
  fs.rmSync(home, { recursive: true, force: true });
  if ((v.id === 'none') !== (r.trustedBy === null)) throw new Error(`${v.id}: verified by ${r.trustedBy}`);
  return r;
}

const load0 = os.loadavg()[0];
const times = Object.fromEntries(VARIANTS.map((v) => [v.id, []]));
const cpu = Object.fromEntries(VARIANTS.map((v) => [v.id, []]));
const main = Object.fromEntries(VARIANTS.map((v) => [v.id, []]));
const by = {};
log('warm-up: one run of each variant');
for (const v of VARIANTS) by[v.id] = (await fetchRun(v)).trustedBy;
for (let rep = 0; rep < REPS; rep++) {
  // Round robin, the order rotated each repetition, so that drift in the machine's load spreads evenly.
  for (let k = 0; k < VARIANTS.length; k++) {
    const v = VARIANTS[(k + rep) % VARIANTS.length];
    const r = await fetchRun(v);
    times[v.id].push(r.ms);
    cpu[v.id].push(r.cpuMs);
    main[v.id].push(r.mainMs);
    log(`rep ${rep + 1}/${REPS} ${v.id}: ${r.ms.toFixed(0)} ms, CPU ${r.cpuMs.toFixed(0)} ms, main thread ${r.mainMs.toFixed(0)} ms`);
  }
}
const keyless = await child(['--keyless', bundleFile, rootFile, IDENTITY, NAME, sha256]);
const load1 = os.loadavg()[0];

// ------------------------------------------------------------ report

// Wall time on a shared machine swings with its load; the fastest run of each is the least disturbed one.
// CPU time (all threads) barely depends on the load: it shows what the check itself costs; the main
// thread's alone is what it adds to the download's own thread (a worker's share can run beside it).
const base = Math.min(...times.none);
const baseCpu = median(cpu.none);
const baseMain = median(main.none);
const fmt = (ms) => `${(ms / 1000).toFixed(2)} s`;
const ratioText = (r, ok) => `${r.toFixed(3)}${ok ? '' : ' (over 5%)'}`;
const rows = VARIANTS.map((v) => {
  const fastest = Math.min(...times[v.id]);
  const c = median(cpu[v.id]);
  const m = median(main[v.id]);
  const none = v.id === 'none';
  const ratio = (x, b) => (none ? '1.00' : ratioText(x / b, x / b <= 1.05));
  return `| ${v.label} | ${fmt(fastest)} | ${fmt(median(times[v.id]))} (${fmt(Math.max(...times[v.id]))}) | ${ratio(fastest, base)} | ${fmt(c)} | ${ratio(c, baseCpu)} | ${fmt(m)} | ${ratio(m, baseMain)} | ${none ? '' : `\`${by[v.id]}\``.slice(0, 60)} |`;
});
const dirty = git(['status', '--porcelain', '--', 'src']) ? '+dirty' : '';
const md = [
  '## Signed releases: download + verify + install of a 200 MB release (bench/trust.mjs)',
  '',
  `Measured ${new Date().toISOString()} (molt ${git(['rev-parse', '--short', 'HEAD'])}${dirty}), ${os.cpus().length} CPUs (1-minute load average ${load0.toFixed(2)} at the start, ${load1.toFixed(2)} at the end: other work shared the machine), Node ${process.version}. ` +
    `The release: ${FILES} files of ${FILE_MB} MB random bytes, tar + gzip -1 (${(gzBytes / 1e6).toFixed(0)} MB), from a local directory (MOLT_DIR): LocalDirSource.fetch() streams it through the same download loop as the GitHub source ` +
    `(hashing while copying into staging), then the trust check, then extraction into a fresh MOLT_HOME. One warm-up run per variant, then ${REPS} runs each, round robin; each run a fresh child process. Target: a signature check adds at most 5%. ` +
    `The wall times swing with the machine's load (see the slowest runs); the fastest run of each variant is the least disturbed, the CPU time of the whole process (every thread) is what the check itself adds, and the main thread's CPU time (its schedstat) what it adds to the download's own thread.`,
  '',
  '| variant | fastest | median (slowest) | fastest / unsigned | CPU, median (all threads) | CPU / unsigned | main thread CPU, median | main / unsigned | verified by |',
  '|---|---|---|---|---|---|---|---|---|',
  ...rows,
  '',
  'How the check hashes once and reads the artifact once: the download loop hashes each chunk with SHA-256 only when something compares that digest (a SHA256SUMS entry, a Sigstore subject, a GitHub or OCI digest), and the check reuses it instead of computing its own. ' +
    'minisign\'s prehashed signature over the tarball is over BLAKE2b-512 (minisign\'s own format, some 170 ms of CPU per 200 MB here, as `openssl dgst -blake2b512`): that is then the only digest, computed on a worker thread beside the download from a ring of 1 MiB slots in one SharedArrayBuffer that the file is read straight into, so no byte is copied or read twice and the download\'s thread only moves bytes. ' +
    'Found by this benchmark and fixed, in turn: the hasher computed its own SHA-256 beside the download\'s (every byte hashed twice); BLAKE2b-512 ran on the download\'s thread (minisign over the tarball at a median 1.53x the unsigned run); a fresh copy of every chunk for the worker (some 50 ms of the download\'s thread per 200 MB); a copy into reused slabs (some 30 ms, and 1.07x to 1.31x the unsigned run by the fastest runs, as loaded); and a SHA-256 that nothing compared, on the download\'s thread. ' +
    'The unsigned run and the SHA256SUMS variants read the file into one reused buffer. The Sigstore variant\'s constant is the verification itself, some 8 to 10 ms of the main thread (the first in the process; the @sigstore libraries load with the trust settings, before the clock).',
  '',
  `Keyless verification with the trusted root already loaded (${FILES === 50 ? 'same' : 'quick'} run, no network): load and parse MOLT_TRUST_ROOT ${keyless.loadMs.toFixed(1)} ms once; the first bundle verified in ${keyless.firstMs.toFixed(1)} ms, then a median of ${keyless.medianMs.toFixed(2)} ms per bundle over 20 (target: under 50 ms).`,
].join('\n');
reportSection('bench/trust.mjs', md, { write, log });
