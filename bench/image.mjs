// The image (issue 13): what molt adds to its Node base, set beside what tini
// and s6 add, and the time from `molt init` exec to the bundled app answering
// with no network, in the built image.
//
//   node bench/image.mjs            print the section
//   node bench/image.mjs --write    also write bench/image.json and this section of bench/RESULTS.md
//
// Needs root, Debian's buildah (the tests' way: vfs storage in a temp directory,
// chroot isolation), tini and s6 installed (`apt-get install tini s6`), and
// `npx tsc -p .` first. Builds docker/Dockerfile on a local glibc Node base made
// from this machine's node (test/ship/buildah.ts), then examples/hello/Dockerfile
// on it with hello 1.0.0 baked in (MOLT_BUNDLED), and runs that image RUNS times
// as `docker run --network none` would: molt init as PID 1 of new PID, mount and
// network namespaces (loopback only), chrooted into the image's root, with an
// empty MOLT_HOME each time (a first start). The clock starts just before the
// exec of that PID 1 and stops when GET / on the container's loopback answers
// 1.0.0, seen by a prober that waits inside the container's network namespace.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { BENCH, DIST, ROOT, git, log, median, requireBins, requireBuilt, reportSection } from './lib.mjs';

const RUNS = 7;
const write = process.argv.includes('--write');
const BUILDAH_JS = path.join(DIST, 'test/ship/buildah.js');
requireBuilt([BUILDAH_JS, path.join(DIST, 'src/cli/main.js')]);
requireBins(['/usr/bin/buildah', '/usr/bin/tini-static', '/usr/bin/unshare', '/usr/bin/nsenter'], 'apt-get install buildah tini util-linux');
if (process.getuid?.() !== 0) {
  log('needs root (buildah and the namespaces of the container runs)');
  process.exit(2);
}
const { Buildah, nodeBaseImage, buildMoltImage, imageEnv, runContainer } = await import(pathToFileURL(BUILDAH_JS).href);

const BASE = 'localhost/molt-bench-node:latest';
const MOLT = 'localhost/molt-bench-molt:latest';
const HELLO = 'localhost/molt-bench-hello:latest';
const MB = (n) => (n / 1e6).toFixed(2);
const du = (p) => Number(spawnSync('du', ['-sb', p], { encoding: 'utf8' }).stdout.split('\t')[0]);

/** Bytes of a Debian package's installed regular files, without its docs and man pages. */
function dpkgBytes(pkg) {
  const r = spawnSync('dpkg', ['-L', pkg], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  let bytes = 0;
  for (const f of r.stdout.split('\n')) {
    if (!f || f.startsWith('/usr/share/doc') || f.startsWith('/usr/share/man')) continue;
    const st = fs.lstatSync(f, { throwIfNoEntry: false });
    if (st?.isFile()) bytes += st.size;
  }
  return bytes;
}

/** Installed-Size (KiB) that apt's metadata gives for a package that is not installed here. */
function aptInstalledKiB(pkg) {
  const m = /^Installed-Size: (\d+)/m.exec(spawnSync('apt-cache', ['show', '--no-all-versions', pkg], { encoding: 'utf8' }).stdout ?? '');
  return m ? Number(m[1]) : undefined;
}

/** One first start with no network: ms from just before PID 1's exec to hello answering 1.0.0 on the container's loopback. */
async function firstStart(root, env, port) {
  // A fresh container of the image: empty volume, no supervise state, the image's /version.
  const home = path.join(root, 'var/lib/molt');
  fs.rmSync(home, { recursive: true, force: true });
  fs.mkdirSync(home, { recursive: true });
  for (const s of ['app', 'app/log', 'updater']) fs.rmSync(path.join(root, 'etc/service', s, 'supervise'), { recursive: true, force: true });
  fs.writeFileSync(path.join(root, 'version'), '0.1.0\n');
  const t0 = performance.now();
  const c = await runContainer(root, env, { network: false });
  // The prober: this machine's node in the container's network namespace, polling every 5 ms.
  const js = `const http=require('http');const t=setInterval(()=>{http.get({host:'127.0.0.1',port:${port},path:'/'},(r)=>{let b='';r.on('data',(d)=>b+=d);r.on('end',()=>{try{if(JSON.parse(b).version==='1.0.0'){console.log('up');process.exit(0)}}catch{}})}).on('error',()=>{})},5);setTimeout(()=>process.exit(1),60000);`;
  const prober = spawn('nsenter', ['--target', String(c.pid1), '--net', process.execPath, '-e', js], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ms = await new Promise((resolve, reject) => {
    prober.stdout.setEncoding('utf8').on('data', (d) => {
      if (d.includes('up')) resolve(performance.now() - t0);
    });
    prober.once('exit', (code) => code !== 0 && reject(new Error(`no answer within 60 s:\n${c.output().slice(-2000)}`)));
  });
  const bundled = /installing the bundled release version=1\.0\.0 current=none/.test(c.output());
  process.kill(c.pid1, 'SIGTERM');
  const killer = setTimeout(() => c.kill(), 10_000);
  const exit = await c.exited;
  clearTimeout(killer);
  if (!bundled) throw new Error(`the run did not install the bundled release:\n${c.output().slice(-2000)}`);
  return { ms, exit: exit.code };
}

const t0 = performance.now();
const loadAtStart = os.loadavg()[0];
const startedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-bench-image-'));
const b = new Buildah(path.join(work, 'buildah'));
let container = '';
const result = {};
try {
  log('making the Node base and building docker/Dockerfile (about 1.5 minutes)');
  nodeBaseImage(b, work, BASE);
  const tb = performance.now();
  buildMoltImage(b, BASE, MOLT, '0.1.0');
  result.buildS = (performance.now() - tb) / 1000;
  const ctx = path.join(work, 'out');
  const packed = spawnSync(path.join(ROOT, 'examples/hello/pack.sh'), ['1.0.0', ctx], { encoding: 'utf8' });
  if (packed.status !== 0) throw new Error(`pack.sh: ${packed.stderr}`);
  b.ok(['bud', '--isolation', 'chroot', '--pull=never', '--format', 'docker', '--build-arg', `MOLT_IMAGE=${MOLT}`, '--build-arg', 'RELEASE=1.0.0.tar.gz', '-f', path.join(ROOT, 'examples/hello/Dockerfile'), '-t', HELLO, ctx], 120_000);

  result.baseBytes = b.size(BASE);
  result.moltBytes = b.size(MOLT);
  result.helloBytes = b.size(HELLO);
  container = b.ok(['from', '--pull=never', HELLO]);
  const root = b.ok(['mount', container]);
  result.parts = {
    '/usr/local/lib/molt (bundle, koffi)': du(path.join(root, 'usr/local/lib/molt')),
    '  of which molt.mjs and molt-chunks/ (the bundle)': du(path.join(root, 'usr/local/lib/molt/molt.mjs')) + du(path.join(root, 'usr/local/lib/molt/molt-chunks')),
    '/etc/service (example services)': du(path.join(root, 'etc/service')),
    '/usr/local/bin/molt (wrapper)': du(path.join(root, 'usr/local/bin/molt')),
  };
  result.tiniStatic = fs.statSync('/usr/bin/tini-static').size;
  result.tini = fs.statSync('/usr/bin/tini').size;
  const tiniVersion = spawnSync('dpkg-query', ['-W', '-f=${Version}', 'tini'], { encoding: 'utf8' }).stdout.trim();
  result.s6 = {};
  for (const p of ['s6', 'libs6-2.11', 'libskarnet2.13', 'libexecline2.9']) result.s6[p] = dpkgBytes(p);
  result.s6Missing = {};
  for (const p of ['execline', 's6-rc', 's6-linux-init', 's6-portable-utils']) result.s6Missing[p] = dpkgBytes(p) === undefined ? (aptInstalledKiB(p) ?? null) : undefined;
  result.s6Version = spawnSync('dpkg-query', ['-W', '-f=${Version}', 's6'], { encoding: 'utf8' }).stdout.trim();
  result.tiniVersion = tiniVersion;

  const env = { ...imageEnv(b, HELLO), HELLO_PORT: '8080' };
  result.runs = [];
  log(`${RUNS} first starts with no network`);
  for (let i = 0; i < RUNS; i++) {
    const r = await firstStart(root, env, 8080);
    log(`run ${i + 1}: ${r.ms.toFixed(0)} ms (exit ${r.exit})`);
    result.runs.push(r);
  }
} finally {
  if (container) b.run(['umount', container]);
  b.destroy();
  fs.rmSync(work, { recursive: true, force: true });
}

const added = result.moltBytes - result.baseBytes;
const s6Bytes = Object.values(result.s6).reduce((a, x) => a + (x ?? 0), 0);
const ms = result.runs.map((r) => r.ms);
const dirty = git(['status', '--porcelain', '--', 'src', 'docker', 'examples']).split('\n').filter(Boolean).length ? ' + uncommitted changes' : '';
const meta = { at: startedAt, commit: `${git(['rev-parse', '--short', 'HEAD'])}${dirty}`, node: process.version, cpus: os.cpus().length, load: [loadAtStart, os.loadavg()[0]], minutes: Math.max(1, Math.round((performance.now() - t0) / 60_000)) };

const L = [];
L.push('## The image: size over its Node base, offline first start (bench/image.mjs)');
L.push('');
L.push(
  `${meta.at}, molt ${meta.commit}, ${meta.cpus} CPUs (1-minute load average ${meta.load[0].toFixed(1)} at the start, ${meta.load[1].toFixed(1)} at the end: other work shared the machine, so the times below are upper bounds), Node ${meta.node}. docker/Dockerfile built by Debian's buildah (vfs, chroot isolation) on a glibc Node base made from this machine's node and its libraries (test/ship/buildah.ts: ${MB(result.baseBytes)} MB); sizes are bytes of files (du -sb of a container's root), so they compare across images whatever the layer compression.`,
);
L.push('');
L.push('| what it adds to a Node base | MB | how measured |');
L.push('|---|---:|---|');
L.push(`| **molt** (docker/Dockerfile's runtime stage over NODE_IMAGE) | **${MB(added)}** | image − base, du -sb |`);
for (const [k, v] of Object.entries(result.parts)) L.push(`| ${k.startsWith('  ') ? '&nbsp;&nbsp;' + k.trim() : k} | ${MB(v)} | du -sb in the image |`);
L.push(`| tini, static (Debian tini ${result.tiniVersion}, /usr/bin/tini-static) | ${MB(result.tiniStatic)} | file size; the dynamic /usr/bin/tini is ${MB(result.tini)} MB |`);
L.push(
  `| s6 (Debian s6 ${result.s6Version} and its libraries: ${Object.entries(result.s6).map(([p, v]) => `${p} ${MB(v ?? 0)}`).join(', ')}) | ${MB(s6Bytes)} | dpkg -L, regular files without docs and man pages |`,
);
const missing = Object.entries(result.s6Missing).filter(([, v]) => typeof v === 'number');
const unpackaged = Object.entries(result.s6Missing).filter(([, v]) => v === null).map(([p]) => p);
if (missing.length) L.push(`| more of what s6-overlay ships, not installed here: ${missing.map(([p, v]) => `${p} ${((v * 1024) / 1e6).toFixed(2)}`).join(', ')} | ${MB(missing.reduce((a, [, v]) => a + v * 1024, 0))} | apt-cache show: Installed-Size (KiB, docs included)${unpackaged.length ? `; ${unpackaged.join(', ')}: not packaged in this Debian release, not counted` : ''} |`);
L.push(`| the hello app baked in (examples/hello/Dockerfile over molt's image) | ${MB(result.helloBytes - result.moltBytes)} | image − molt image |`);
L.push('');
L.push(
  `s6-overlay's own published tarballs cannot be downloaded on this machine (its registries are npm and Debian only): Debian's s6 packages stand in for them, a lower bound of what s6-overlay adds (it also ships execline's programs, s6-rc, s6-linux-init and s6-portable-utils: execline from apt's metadata where it is packaged, the others not counted). tini is one static binary; s6 and molt are supervision suites, and molt also carries its updater (GitHub, OCI, signatures, API, status page) in the same bundle.`,
);
L.push('');
L.push('| target (issue 13) | measured | met? |');
L.push('|---|---|---|');
L.push(`| molt adds at most 15 MB to its Node base (the bundle and koffi's one binary) | ${MB(added)} MB | **${added <= 15e6 ? 'yes' : 'no'}** |`);
L.push('');
L.push(
  `**Offline first start**: from the exec of \`molt init\` (PID 1 of new PID, mount and network namespaces, loopback only: \`docker run --network none\`; chroot into the built hello image, empty MOLT_HOME) to GET / on the container's loopback answering the bundled hello 1.0.0, ${RUNS} runs: **median ${median(ms).toFixed(0)} ms** (min ${Math.min(...ms).toFixed(0)}, max ${Math.max(...ms).toFixed(0)}). ` +
    'It includes node loading molt\'s bundle twice (init, then the updater), reading the release\'s VERSION, extracting and fsyncing it into versions/, the journaled swap, and the app\'s own start; the GitHub source is unreachable throughout (its first poll fails after the install, never before). Every run ended with exit code ' +
    `${[...new Set(result.runs.map((r) => r.exit))].join(', ')} on TERM. The image build took ${result.buildS.toFixed(0)} s.`,
);
L.push('');
L.push(`Re-run (root): \`npx tsc -p . && node bench/image.mjs --write\` (about ${meta.minutes} minute${meta.minutes === 1 ? '' : 's'}).`);
const md = L.join('\n');
reportSection('bench/image.mjs', md, { write, log, json: { name: 'image.json', data: { meta, result } } });
process.exit(0);
