#!/usr/bin/env node
// Update downtime of a small HTTP app (examples/hello) under a steady loop of
// requests on loopback (one every 10 ms, one at a time), updated five times
// (1.0.0 -> 2.0.0 -> ... -> 6.0.0) by molt, against the seed's approach
// (arno01/self-update's update loop: wget the tarball, `sv stop app`, untar it
// over the live release, rewrite /version, `sv start app`) and a naive variant
// that downloads after stopping. Each with a small release and one carrying
// 50 MB of random padding. Downtime = time from the last answer of the old
// version to the first answer of the new one. Also: the app's own cold start,
// and the updater's idle CPU (utime+stime over 30 s) and RSS between polls.
//
//   node bench/update-downtime.mjs           the whole run (about 4 minutes); markdown on stdout
//   node bench/update-downtime.mjs --quick   2 updates per case, 10 s idle windows, 5 MB padding
//
// Every molt runs as PID 1 of its own PID namespace (killed from the host when
// its measurement ends, and on any exit of this script); the seed's file server
// is one python3 process, killed by pid.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { CLI, NODE, ROOT, childrenOf, clkTck, cpuTicks, descendantsOf, freePort, kill, killMoltNamespaces, log, median, onExit, publishToDir, readText, requireBins, requireBuilt, rssKiB, seedTree, sleep, startMoltNs, stopMoltNs, updaterTree, waitFor } from './lib.mjs';

const HELLO = path.join(ROOT, 'examples/hello');
const SV = '/usr/bin/sv'; // Debian's runit sv, as the seed used (molt's supervise/ is runit-compatible)
const CLK_TCK = clkTck();

const quick = process.argv.includes('--quick');
const UPDATES = quick ? 2 : 5;
const PAD_MB = quick ? 5 : 50;
const IDLE_S = quick ? 10 : 30;
const REQUEST_EVERY_MS = 10;
const START_REPS = quick ? 3 : 10;

requireBuilt([CLI]);
requireBins([SV, '/usr/bin/wget', '/usr/bin/python3', 'unshare'], 'apt-get install runit wget python3');

// ---------------------------------------------------------------- utilities

/** GET over TCP or a Unix socket; resolves { status, body } or undefined on any failure. */
function get(opts, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const req = http.get({ agent: false, ...opts }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', () => resolve(undefined));
    });
    req.setTimeout(timeoutMs, () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

async function appVersion(port) {
  const r = await get({ host: '127.0.0.1', port, path: '/' });
  if (!r || r.status !== 200) return undefined;
  try {
    return JSON.parse(r.body).version;
  } catch {
    return undefined;
  }
}

async function status(socket) {
  const r = await get({ socketPath: socket, path: '/api/status' }, 3000);
  if (!r || r.status !== 200) return undefined;
  return JSON.parse(r.body);
}

// ---------------------------------------------------------- temp and cleanup

const T = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-downtime-'));
/** Other processes started here (the seed's file server, hello alone). */
const pids = new Set();

function killEverything() {
  killMoltNamespaces();
  for (const pid of pids) kill(pid);
}
onExit(() => {
  killEverything();
  fs.rmSync(T, { recursive: true, force: true });
});
/** Every molt here keeps the last 8 KiB of its output, for error messages. */
const MOLT_OUT_BYTES = 8192;

// ---------------------------------------------------------------- releases

const padding = path.join(T, 'padding.bin');

/** A hello release as a tarball: VERSION, behaviour, server.mjs, run (+ padding.bin when padded). */
function packRelease(version, outDir, padded) {
  const work = path.join(T, `build-${version}-${padded ? 'big' : 'small'}`);
  fs.mkdirSync(work, { recursive: true });
  fs.copyFileSync(path.join(HELLO, 'server.mjs'), path.join(work, 'server.mjs'));
  fs.writeFileSync(path.join(work, 'VERSION'), `${version}\n`);
  fs.writeFileSync(path.join(work, 'behaviour'), 'ok\n');
  fs.writeFileSync(path.join(work, 'run'), '#!/bin/sh\nexec node ./server.mjs\n', { mode: 0o755 });
  if (padded) fs.copyFileSync(padding, path.join(work, 'padding.bin'));
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `${version}.tar.gz`);
  const r = spawnSync('tar', ['-C', work, '-czf', file, '.']);
  if (r.status !== 0) throw new Error(`tar failed for ${version}`);
  fs.rmSync(work, { recursive: true, force: true });
  return file;
}

// ------------------------------------------------------------ request loop

/** One request every REQUEST_EVERY_MS (never two at once); records when each answer came and what it said. */
function startLoad(port) {
  const samples = [];
  let running = true;
  const done = (async () => {
    let next = performance.now();
    while (running) {
      const sent = performance.now();
      const v = await appVersion(port);
      samples.push({ sent, at: performance.now(), version: v });
      next += REQUEST_EVERY_MS;
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
      else next = performance.now();
    }
  })();
  return {
    samples,
    async stop() {
      running = false;
      await done;
    },
  };
}

/** Downtime between the last answer of `from` and the first answer of `to`, from samples taken after index `since`. */
function downtime(samples, since, from, to) {
  let lastOld;
  let firstNew;
  let failed = 0;
  for (let i = since; i < samples.length; i++) {
    const s = samples[i];
    if (firstNew === undefined) {
      if (s.version === from) {
        lastOld = s;
        failed = 0;
      } else if (s.version === to) firstNew = s;
      else failed++;
    }
  }
  if (!lastOld || !firstNew) return undefined;
  return { ms: firstNew.at - lastOld.at, failed };
}

// ---------------------------------------------------------------- cases

/** molt: app + updater services over MOLT_DIR; returns per-update downtimes. */
async function moltCase(padded) {
  const label = padded ? `molt-${PAD_MB}mb` : 'molt-small';
  const root = path.join(T, label);
  const pending = path.join(root, 'pending');
  const { releases, socket, env } = updaterTree(root);
  const versions = Array.from({ length: UPDATES + 1 }, (_, i) => `${i + 1}.0.0`);
  const files = versions.map((v) => packRelease(v, pending, padded));
  const size = fs.statSync(files[0]).size;
  const port = await freePort();
  const ns = startMoltNs({
    ...env,
    MOLT_INTERVAL: '1s',
    MOLT_TRIAL: '2s',
    MOLT_STOP_TIMEOUT: '5s',
    MOLT_LOG_LEVEL: 'info',
    HELLO_PORT: String(port),
  }, MOLT_OUT_BYTES);
  const results = [];
  try {
    publishToDir(files[0], releases, { move: true });
    await waitFor('1.0.0 to answer', async () => (await appVersion(port)) === '1.0.0', 60_000, 100);
    await waitFor('1.0.0 committed', async () => (await status(socket))?.phase === 'idle', 30_000, 100);
    const load = startLoad(port);
    try {
      for (let i = 1; i < versions.length; i++) {
        const since = load.samples.length;
        await sleep(300);
        publishToDir(files[i], releases, { move: true });
        const t0 = performance.now();
        await waitFor(
          `${versions[i]} committed`,
          async () => {
            const s = await status(socket);
            return s && s.phase === 'idle' && s.current === versions[i] && s.history.some((h) => h.event === 'commit' && h.version === versions[i]);
          },
          120_000,
          100,
        );
        const d = downtime(load.samples, since, versions[i - 1], versions[i]);
        if (!d) throw new Error(`no switch from ${versions[i - 1]} to ${versions[i]} seen`);
        results.push({ ...d, publishToCommitMs: performance.now() - t0 });
        log(`${label}: ${versions[i - 1]} -> ${versions[i]}: downtime ${d.ms.toFixed(0)} ms, ${d.failed} failed requests`);
      }
    } finally {
      await load.stop();
    }
  } catch (err) {
    log(`${label} failed: ${err.message}\n${ns.out().slice(-3000)}`);
    throw err;
  } finally {
    await stopMoltNs(ns, killEverything);
  }
  return { label, size, results };
}

/**
 * The seed's update loop, one pass, against a local HTTP server instead of GitHub.
 * seed:  wget the tarball; sv stop app; tar -x over the live release; echo VER > /version; sv start app
 * naive: sv stop app; wget | tar -x over the live release; echo VER > /version; sv start app
 */
const SEED_SCRIPT = `#!/bin/sh
# arno01/self-update docker/service/update/run, one pass (no set -e, as there).
# $1 = URL of the tarball, $2 = version, $3 = order (seed|naive)
url=$1 ver=$2 order=$3
if [ "$order" = seed ]; then
  wget -qO "$WORK/update.tar.gz" "$url"
  sv stop "$SVDIR/app"
  tar -C "$LIVE" -xzf "$WORK/update.tar.gz"
  rm -f "$WORK/update.tar.gz"
else
  sv stop "$SVDIR/app"
  wget -qO - "$url" | tar -C "$LIVE" -xzf -
fi
echo "$ver" > "$WORK/version"
sv start "$SVDIR/app"
`;

async function seedCase(padded, order) {
  const label = `${order}-${padded ? `${PAD_MB}mb` : 'small'}`;
  const root = path.join(T, label);
  const served = path.join(root, 'served');
  const versions = Array.from({ length: UPDATES + 1 }, (_, i) => `${i + 1}.0.0`);
  const files = versions.map((v) => packRelease(v, served, padded));
  const size = fs.statSync(files[0]).size;
  const seed = seedTree(root, files[0], SEED_SCRIPT);
  const port = await freePort();
  const httpPort = await freePort();
  const server = spawn('/usr/bin/python3', ['-m', 'http.server', '--bind', '127.0.0.1', '--directory', served, String(httpPort)], { stdio: 'ignore' });
  pids.add(server.pid);
  const ns = startMoltNs({
    ...seed.env,
    MOLT_STOP_TIMEOUT: '5s',
    HELLO_PORT: String(port),
  }, MOLT_OUT_BYTES);
  const results = [];
  try {
    await waitFor('the file server', async () => (await get({ host: '127.0.0.1', port: httpPort, path: '/' })) !== undefined, 10_000, 50);
    await waitFor('1.0.0 to answer', async () => (await appVersion(port)) === '1.0.0', 30_000, 50);
    const load = startLoad(port);
    try {
      for (let i = 1; i < versions.length; i++) {
        const since = load.samples.length;
        // As under runit, the app has been up for a while before the updater's next pass.
        await sleep(1500);
        const r = await seed.update([`http://127.0.0.1:${httpPort}/${versions[i]}.tar.gz`, versions[i], order], 120_000);
        if (r !== 0) throw new Error(`update.sh exited ${r}`);
        await waitFor(`${versions[i]} to answer`, async () => load.samples.at(-1)?.version === versions[i], 30_000, 10);
        const d = downtime(load.samples, since, versions[i - 1], versions[i]);
        if (!d) throw new Error(`no switch from ${versions[i - 1]} to ${versions[i]} seen`);
        results.push(d);
        log(`${label}: ${versions[i - 1]} -> ${versions[i]}: downtime ${d.ms.toFixed(0)} ms, ${d.failed} failed requests`);
      }
    } finally {
      await load.stop();
    }
  } finally {
    await stopMoltNs(ns, killEverything);
    server.kill('SIGKILL');
    pids.delete(server.pid);
  }
  return { label, size, results };
}

/** The app alone: spawn to first answer, cold (no molt involved). */
async function appStart() {
  const times = [];
  for (let i = 0; i < START_REPS; i++) {
    const port = await freePort();
    const dir = path.join(T, 'start');
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(path.join(HELLO, 'server.mjs'), path.join(dir, 'server.mjs'));
    fs.writeFileSync(path.join(dir, 'VERSION'), '1.0.0\n');
    const t0 = performance.now();
    const p = spawn(NODE, ['server.mjs'], { cwd: dir, env: { ...process.env, HELLO_PORT: String(port) }, stdio: 'ignore' });
    pids.add(p.pid);
    await waitFor('hello to answer', async () => (await appVersion(port)) === '1.0.0', 10_000, 2);
    times.push(performance.now() - t0);
    p.kill('SIGKILL');
    pids.delete(p.pid);
    await new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)));
  }
  return times;
}

/** The updater at rest (1.0.0 committed, nothing new): CPU over IDLE_S seconds and RSS, for a poll interval. */
async function idleCase(interval) {
  const root = path.join(T, `idle-${interval}`);
  const { releases, socket, env } = updaterTree(root);
  publishToDir(packRelease('1.0.0', path.join(root, 'pending'), false), releases, { move: true });
  const port = await freePort();
  const ns = startMoltNs({
    ...env,
    MOLT_INTERVAL: interval,
    MOLT_TRIAL: '2s',
    MOLT_LOG_LEVEL: 'info',
    HELLO_PORT: String(port),
  }, MOLT_OUT_BYTES);
  try {
    await waitFor('1.0.0 committed', async () => {
      const s = await status(socket);
      return s && s.phase === 'idle' && s.history.some((h) => h.event === 'commit');
    }, 60_000, 200);
    await sleep(3000); // let start-up garbage settle
    const pid1 = childrenOf(ns.proc.pid)[0];
    const updater = descendantsOf(pid1).find((p) => (readText(`/proc/${p}/cmdline`) ?? '').split('\0').filter(Boolean).at(-1) === 'updater');
    if (!updater) throw new Error('updater process not found');
    const before = { u: cpuTicks(updater), i: cpuTicks(pid1) };
    const rss = [];
    const end = performance.now() + IDLE_S * 1000;
    while (performance.now() < end) {
      rss.push(rssKiB(updater));
      await sleep(1000);
    }
    const after = { u: cpuTicks(updater), i: cpuTicks(pid1) };
    const s = await status(socket);
    return {
      interval,
      updaterCpuMs: ((after.u - before.u) * 1000) / CLK_TCK,
      initCpuMs: ((after.i - before.i) * 1000) / CLK_TCK,
      updaterRssMiB: median(rss) / 1024,
      updaterRssMaxMiB: Math.max(...rss) / 1024,
      initRssMiB: rssKiB(pid1) / 1024,
      lastCheck: s?.lastCheck?.at,
    };
  } finally {
    await stopMoltNs(ns, killEverything);
  }
}

// ------------------------------------------------------------------- main

const t0 = performance.now();
log(`padding file: ${PAD_MB} MB of random bytes`);
{
  const fd = fs.openSync(padding, 'w');
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < PAD_MB; i++) {
    crypto.randomFillSync(chunk);
    fs.writeSync(fd, chunk);
  }
  fs.closeSync(fd);
}

const start = await appStart();
log(`hello cold start: median ${median(start).toFixed(0)} ms`);
const cases = [];
for (const padded of [false, true]) {
  cases.push(await moltCase(padded));
  cases.push(await seedCase(padded, 'seed'));
  cases.push(await seedCase(padded, 'naive'));
}
const idle = [];
for (const interval of ['5m', '1s']) {
  idle.push(await idleCase(interval));
  log(`idle ${interval}: updater ${idle.at(-1).updaterCpuMs} ms CPU, ${idle.at(-1).updaterRssMiB.toFixed(1)} MiB`);
}

// ------------------------------------------------------------------ report

const mb = (n) => (n < 1e6 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1e6).toFixed(1)} MB`);
const fmt = (x) => x.toFixed(0);
const NAMES = {
  molt: 'molt (download + verify while the old version runs; stop, swap, start)',
  seed: 'seed self-update (wget; sv stop; tar -x over the live release; sv start)',
  naive: 'naive (sv stop; wget | tar -x over the live release; sv start)',
};
const lines = [];
lines.push('## Update downtime (bench/update-downtime.mjs)');
lines.push('');
lines.push(
  `hello (examples/hello, Node HTTP server) under one GET every ${REQUEST_EVERY_MS} ms on loopback, one at a time; ` +
    `${UPDATES} updates per case (1.0.0 -> 2.0.0 -> ...); downtime = last answer of the old version to the first answer of the new one ` +
    `(resolution about ${REQUEST_EVERY_MS} ms). molt: molt init as PID 1 of a PID namespace with the example app and updater services, ` +
    'MOLT_DIR releases (tarball + SHA256SUMS), MOLT_INTERVAL=1s, MOLT_TRIAL=2s. Seed: the same app under molt init (runit-compatible), ' +
    `updated by a shell script doing what arno01/self-update's update loop does, with Debian's runit \`sv\` and \`wget\` from a local python3 http.server. ` +
    `The big releases carry ${PAD_MB} MB of random (incompressible) padding. Runit's \`sv stop\`/\`sv start\` check the status 420 ms after sending ` +
    `their command, which bounds the seed's downtime from below. ${os.cpus().length} CPUs, Node ${process.version}.`,
);
lines.push('');
lines.push('| approach | artifact | downtime median (ms) | min | max | failed requests (median) | per update (ms) |');
lines.push('|---|---|---:|---:|---:|---:|---|');
for (const c of cases) {
  const kind = c.label.split('-')[0];
  const ms = c.results.map((r) => r.ms);
  lines.push(
    `| ${NAMES[kind]} | ${mb(c.size)} | ${fmt(median(ms))} | ${fmt(Math.min(...ms))} | ${fmt(Math.max(...ms))} | ${median(c.results.map((r) => r.failed))} | ${ms.map(fmt).join(', ')} |`,
  );
}
lines.push('');
lines.push(`hello's own cold start (spawn \`node server.mjs\` to its first answer), ${START_REPS} runs: median ${fmt(median(start))} ms (min ${fmt(Math.min(...start))}, max ${fmt(Math.max(...start))}).`);
const mc = cases.filter((c) => c.label.startsWith('molt'));
lines.push(
  `molt, publish to commit (poll + download + verify + stop/swap/start + ${'2 s'} trial), median: ${mc.map((c) => `${mb(c.size)} ${fmt(median(c.results.map((r) => r.publishToCommitMs)))} ms`).join(', ')}.`,
);
lines.push('');
lines.push(`### Updater at rest (1.0.0 committed, nothing new), over ${IDLE_S} s`);
lines.push('');
lines.push('| MOLT_INTERVAL | updater CPU (utime+stime, ms) | updater RSS median / max (MiB) | molt init (PID 1) CPU (ms) | PID 1 RSS (MiB) |');
lines.push('|---|---:|---:|---:|---:|');
for (const r of idle) {
  lines.push(`| ${r.interval} | ${fmt(r.updaterCpuMs)} | ${r.updaterRssMiB.toFixed(1)} / ${r.updaterRssMaxMiB.toFixed(1)} | ${fmt(r.initCpuMs)} | ${r.initRssMiB.toFixed(1)} |`);
}
lines.push('');
lines.push(`CPU in clock ticks of 1/${CLK_TCK} s. Total run ${fmt((performance.now() - t0) / 1000)} s${quick ? ' (--quick: not for RESULTS.md)' : ''}.`);
process.stdout.write(lines.join('\n') + '\n');
process.exit(0);
