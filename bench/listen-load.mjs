#!/usr/bin/env node
// Requests lost while an app is updated under constant load (issue 8's
// benchmark): examples/hello on loopback, two clients sending GETs back to
// back (a new connection each, keep-alive off) for the whole run, while the app
// is updated ten times (1.0.0 -> 1.0.1 -> ... -> 1.0.10), by
//   (a) the seed's approach: a shell script that stops the app with runit's
//       `sv`, extracts the tarball over the live release and starts it again;
//   (b) molt's updater, the app binding its own port;
//   (c) molt's updater, with a `listen` file: molt holds the socket and lends it
//       to every start of the app as fd 3;
//   (d) as (c) with MOLT_HANDOVER=overlap: the new version starts beside the old
//       one on that socket, and the old one stops only after the new one's trial.
// Counts failed requests by error code, the longest latency and the longest gap
// without any answer, and latency percentiles during the updates.
//
//   node bench/listen-load.mjs            10 updates per approach (about 3 minutes); markdown on stdout
//   node bench/listen-load.mjs --quick    3 updates per approach (smoke test; not for RESULTS.md)
//   node bench/listen-load.mjs --write    also write bench/listen-load.json and this section of bench/RESULTS.md
//
// Every molt is PID 1 of its own PID namespace (unshare --pid --fork
// --mount-proc), killed by pid from the host when its measurement ends and on
// any exit of this script; the temp directory is removed on every exit.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { BENCH, CLI, ROOT, freePort, git, killMoltNamespaces, log, onExit, publishToDir, requireBins, requireBuilt, seedTree, sleep, startMoltNs, stopMoltNs, updaterTree, upsertSection, waitFor, watchdog } from './lib.mjs';

const PACK = path.join(ROOT, 'examples/hello/pack.sh');
const SV = '/usr/bin/sv'; // Debian's runit sv, as the seed used (molt's supervise/ is runit-compatible)

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const write = args.includes('--write') && !quick;
const UPDATES = quick ? 3 : 10;
const CLIENTS = 2;
const REQUEST_TIMEOUT_MS = 10_000;
const RETRY_PAUSE_MS = 10; // after a failed request, as a client that retries would
const SETTLE_MS = 1000; // steady load between updates (and before the first)

requireBuilt([CLI]);
requireBins([SV, '/usr/bin/unshare', '/bin/tar'], 'apt-get install runit util-linux tar');
if (process.getuid?.() !== 0) {
  log('unshare --pid needs root');
  process.exit(2);
}

// ---------------------------------------------------------------- utilities

// Not lib.mjs's percentile: the latency arrays hold tens of thousands of
// samples, sorted here as a Float64Array (their maximum by maxOf, not a spread).
function percentile(xs, p) {
  if (!xs.length) return NaN;
  const s = Float64Array.from(xs).sort();
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)];
}
const median = (xs) => percentile(xs, 50);
const maxOf = (xs) => xs.reduce((m, x) => (x > m ? x : m), -Infinity);

/** One GET on a new connection: { ok, version?, code? } where code names the failure (errno, 'timeout', 'http-NNN'). */
function get(opts, timeoutMs = REQUEST_TIMEOUT_MS) {
  return new Promise((resolve) => {
    let settled = false;
    const done = (r) => {
      if (!settled) {
        settled = true;
        resolve(r);
      }
    };
    const req = http.get({ agent: false, ...opts }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d) => (body += d));
      res.on('end', () => {
        if (res.statusCode !== 200) return done({ ok: false, code: `http-${res.statusCode}`, body });
        let version;
        try {
          version = JSON.parse(body).version;
        } catch {}
        done({ ok: true, version, body });
      });
      res.on('error', (e) => done({ ok: false, code: e.code ?? e.message }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
    req.on('error', (e) => done({ ok: false, code: e.code ?? e.message }));
  });
}

async function appVersion(port) {
  const r = await get({ host: '127.0.0.1', port, path: '/' }, 2000);
  return r.ok ? r.version : undefined;
}

async function status(socket) {
  const r = await get({ socketPath: socket, path: '/api/status' }, 3000);
  if (!r.ok) return undefined;
  try {
    return JSON.parse(r.body);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------- temp and cleanup

const T = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-listen-load-'));

onExit(() => {
  killMoltNamespaces();
  fs.rmSync(T, { recursive: true, force: true });
});
watchdog(20);
/** Every molt here keeps the last 16 KiB of its output, for error messages. */
const MOLT_OUT_BYTES = 16384;

// ---------------------------------------------------------------- releases

const VERSIONS = Array.from({ length: UPDATES + 1 }, (_, i) => `1.0.${i}`);

/** Every hello release packed by examples/hello/pack.sh before any measurement (packing costs CPU). */
function packAll(dir) {
  for (const v of VERSIONS) {
    const r = spawnSync(PACK, [v, dir], { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`pack.sh ${v}: ${r.stderr}`);
  }
  fs.rmSync(path.join(dir, 'SHA256SUMS'), { force: true }); // publishToDir writes its own
}


// ------------------------------------------------------------------- load

/**
 * CLIENTS loops of GETs, each on a new connection, back to back (a failure is
 * followed by RETRY_PAUSE_MS), until stop(); bounded by a request count.
 */
function startLoad(port, max = 5_000_000) {
  const samples = []; // { c, sent, at, ok, code?, version? }
  let running = true;
  const loops = Array.from({ length: CLIENTS }, async (_, c) => {
    for (let n = 0; running && n < max; n++) {
      const sent = performance.now();
      const r = await get({ host: '127.0.0.1', port, path: '/' });
      const at = performance.now();
      samples.push({ c, sent, at, ok: r.ok, code: r.code, version: r.version });
      if (!r.ok) await sleep(RETRY_PAUSE_MS);
    }
  });
  return {
    samples,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Statistics of the samples sent inside any of the windows [from, to]. */
function analyse(samples, windows) {
  const inWindow = (t) => windows.some((w) => t >= w.from && t <= w.to);
  const during = samples.filter((s) => inWindow(s.sent));
  const outside = samples.filter((s) => !inWindow(s.sent) && s.sent > windows[0].from - 60_000);
  const failures = {};
  for (const s of during) if (!s.ok) failures[s.code] = (failures[s.code] ?? 0) + 1;
  const lat = during.filter((s) => s.ok).map((s) => s.at - s.sent);
  const latOut = outside.filter((s) => s.ok).map((s) => s.at - s.sent);
  // The longest time without any successful answer, from all clients together, inside a window.
  const answers = samples.filter((s) => s.ok).map((s) => s.at).sort((a, b) => a - b);
  let gap = 0;
  for (let i = 1; i < answers.length; i++) if (inWindow(answers[i])) gap = Math.max(gap, answers[i] - answers[i - 1]);
  const failedPerUpdate = windows.map((w) => samples.filter((s) => !s.ok && s.sent >= w.from && s.sent <= w.to).length);
  return {
    requests: during.length,
    failed: during.length - lat.length,
    failures,
    failedPerUpdate,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    max: lat.length ? maxOf(lat) : NaN,
    longestGap: gap,
    steady: { requests: outside.length, failed: outside.filter((s) => !s.ok).length, p50: percentile(latOut, 50), p99: percentile(latOut, 99), max: latOut.length ? maxOf(latOut) : NaN },
  };
}

// ---------------------------------------------------------------- cases

/** molt: copies of services/app and services/updater over a MOLT_DIR; with or without a listen file. */
/** mode: 'plain' (app binds its port), 'listen' (molt holds it), 'overlap' (listen + MOLT_HANDOVER=overlap). */
async function moltCase(mode) {
  const withListen = mode !== 'plain';
  const label = { plain: 'molt', listen: 'molt-listen', overlap: 'molt-overlap' }[mode];
  const root = path.join(T, label);
  const pending = path.join(root, 'pending');
  const { app, releases, socket, env } = updaterTree(root);
  packAll(pending);
  const port = await freePort();
  if (withListen) fs.writeFileSync(path.join(app, 'listen'), `tcp 127.0.0.1:${port} http\n`);
  const ns = startMoltNs({
    ...env,
    MOLT_INTERVAL: '1s',
    MOLT_TRIAL: '1s',
    MOLT_STOP_TIMEOUT: '5s',
    MOLT_LOG_LEVEL: 'info',
    MOLT_HANDOVER: mode === 'overlap' ? 'overlap' : 'restart',
    HELLO_PORT: String(port),
  }, MOLT_OUT_BYTES);
  const windows = [];
  let load;
  try {
    publishToDir(path.join(pending, `${VERSIONS[0]}.tar.gz`), releases);
    await waitFor(`${VERSIONS[0]} to answer`, async () => (await appVersion(port)) === VERSIONS[0], 60_000, 100);
    await waitFor(`${VERSIONS[0]} committed`, async () => (await status(socket))?.phase === 'idle', 30_000, 100);
    load = startLoad(port);
    await sleep(SETTLE_MS);
    for (let i = 1; i < VERSIONS.length; i++) {
      const v = VERSIONS[i];
      const from = performance.now();
      publishToDir(path.join(pending, `${v}.tar.gz`), releases);
      await waitFor(
        `${v} committed`,
        async () => {
          const s = await status(socket);
          return s && s.phase === 'idle' && s.current === v && s.history.some((h) => h.event === 'commit' && h.version === v);
        },
        120_000,
        50,
      );
      const committed = performance.now();
      const first = load.samples.find((s) => s.ok && s.version === v && s.sent >= from);
      if (!first) throw new Error(`${label}: ${v} committed but never answered the load`);
      windows.push({ from, to: first.at, committed });
      const failed = load.samples.filter((s) => !s.ok && s.sent >= from).length;
      log(`${label}: ${VERSIONS[i - 1]} -> ${v}: ${(first.at - from).toFixed(0)} ms publish to first answer, ${(committed - from).toFixed(0)} ms to commit, ${failed} failed requests`);
      await sleep(SETTLE_MS);
    }
  } catch (err) {
    log(`${label} failed: ${err.message}\n${ns.out().slice(-4000)}`);
    throw err;
  } finally {
    await load?.stop();
    await stopMoltNs(ns);
  }
  const seen = new Set(load.samples.filter((s) => s.ok).map((s) => s.version));
  if (!VERSIONS.every((v) => seen.has(v))) throw new Error(`${label}: not every version answered (${[...seen].join(' ')})`);
  return { label, windows, samples: load.samples };
}

/**
 * The seed's update, one pass (arno01/self-update's update loop, its download
 * replaced by a copy of the same tarball: the seed downloads before it stops the
 * app, so the download is outside the outage): copy; sv stop app; tar -x over
 * the live release; write /version; sv start app.
 */
const SEED_SCRIPT = `#!/bin/sh
# $1 = the release tarball, $2 = version (no set -e, as in the seed)
cp "$1" "$WORK/update.tar.gz"
sv stop "$SVDIR/app"
tar -C "$LIVE" -xzf "$WORK/update.tar.gz"
rm -f "$WORK/update.tar.gz"
echo "$2" > "$WORK/version"
sv start "$SVDIR/app"
`;

async function seedCase() {
  const label = 'seed';
  const root = path.join(T, label);
  const pending = path.join(root, 'pending');
  packAll(pending);
  const seed = seedTree(root, path.join(pending, `${VERSIONS[0]}.tar.gz`), SEED_SCRIPT);
  const port = await freePort();
  const ns = startMoltNs({
    ...seed.env,
    MOLT_STOP_TIMEOUT: '5s',
    HELLO_PORT: String(port),
  }, MOLT_OUT_BYTES);
  const windows = [];
  let load;
  try {
    await waitFor(`${VERSIONS[0]} to answer`, async () => (await appVersion(port)) === VERSIONS[0], 30_000, 50);
    load = startLoad(port);
    await sleep(SETTLE_MS);
    for (let i = 1; i < VERSIONS.length; i++) {
      const v = VERSIONS[i];
      const from = performance.now();
      const code = await seed.update([path.join(pending, `${v}.tar.gz`), v], 60_000);
      if (code !== 0) throw new Error(`update.sh ${v} exited ${code}`);
      const first = await waitFor(`${v} to answer`, () => load.samples.find((s) => s.ok && s.version === v && s.sent >= from), 30_000, 10);
      const to = first.at;
      windows.push({ from, to });
      const failed = load.samples.filter((s) => !s.ok && s.sent >= from).length;
      log(`${label}: ${VERSIONS[i - 1]} -> ${v}: ${(to - from).toFixed(0)} ms script start to first answer of ${v}, ${failed} failed requests`);
      // As under runit, the app has been up for a while before the updater's next pass.
      await sleep(SETTLE_MS);
    }
  } finally {
    await load?.stop();
    await stopMoltNs(ns);
  }
  return { label, windows, samples: load.samples };
}

// ------------------------------------------------------------------ report

const NAMES = {
  seed: '(a) seed: `sv stop`; tar -x over the live release; `sv start`',
  molt: '(b) molt, app binds its own port',
  'molt-listen': '(c) molt with `listen` (molt holds the socket)',
  'molt-overlap': '(d) molt with `listen` and MOLT_HANDOVER=overlap',
};
const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : '–');
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '–');

function section(cases, meta) {
  const L = [];
  L.push('## Requests lost during updates under load (bench/listen-load.mjs)', '');
  L.push(
    `Measured ${meta.at} (molt ${meta.commit}), ${meta.cpus} CPUs, Node ${process.version}. ` +
      `hello (examples/hello, packed by its pack.sh) under ${CLIENTS} clients in a Node process, each sending GETs back to back on 127.0.0.1, ` +
      `a new connection per request (no keep-alive), ${REQUEST_TIMEOUT_MS / 1000} s timeout, ${RETRY_PAUSE_MS} ms pause after a failed request; ` +
      `${UPDATES} updates per approach (${VERSIONS[0]} -> ${VERSIONS[1]} -> ... -> ${VERSIONS.at(-1)}), ${SETTLE_MS / 1000} s of steady load before each. ` +
      'Every approach runs under `molt init` as PID 1 of a PID namespace. (a) a shell script doing what arno01/self-update\'s update loop does, with Debian\'s runit `sv` ' +
      '(its `sv stop`/`sv start` poll the status file every 420 ms); (b), (c) and (d): copies of services/app and services/updater, a `molt` wrapper on PATH, ' +
      'releases published into MOLT_DIR (tarball + SHA256SUMS), MOLT_INTERVAL=1s, MOLT_TRIAL=1s; (c) adds `listen` = `tcp 127.0.0.1:PORT http` to the app service, ' +
      'and hello serves on the inherited fd 3 (LISTEN_PID is its own pid); (d) also sets MOLT_HANDOVER=overlap. "During the updates" = requests sent between the start of an update ' +
      '(script start, or the release appearing in MOLT_DIR) and the first answer of the new version (for molt, the 1 s trial that follows is not part of it; requests during trials are in the steady state).',
    '',
  );
  L.push('| approach | requests during updates | failed (by error) | failed per update (median, max) | longest gap without an answer (ms) | latency p50 / p99 / max during updates (ms) | steady-state p50 / p99 / max (ms) |');
  L.push('|---|---:|---|---:|---:|---:|---:|');
  for (const c of cases) {
    const a = c.stats;
    const fails = Object.entries(a.failures).map(([k, n]) => `${n} ${k}`).join(', ') || '0';
    L.push(
      `| ${NAMES[c.label]} | ${a.requests} | ${a.failed === 0 ? '**0**' : `${a.failed}: ${fails}`} | ${median(a.failedPerUpdate)}, ${Math.max(...a.failedPerUpdate)} | ${f0(a.longestGap)} | ${f1(a.p50)} / ${f1(a.p99)} / ${f1(a.max)} | ${f1(a.steady.p50)} / ${f1(a.steady.p99)} / ${f1(a.steady.max)} |`,
    );
  }
  L.push('');
  const c = cases.find((x) => x.label === 'molt-listen');
  const d = cases.find((x) => x.label === 'molt-overlap');
  L.push('| target (issue 8) | measured | met? |');
  L.push('|---|---|---|');
  L.push(`| (c) molt with \`listen\` loses zero requests | ${c.stats.failed} failed of ${c.stats.requests} during ${UPDATES} updates (and ${c.stats.steady.failed} outside them); p99 ${f1(c.stats.p99)} ms, max ${f0(c.stats.max)} ms | **${c.stats.failed === 0 && c.stats.steady.failed === 0 ? 'yes' : 'no'}** |`);
  L.push(`| (d) molt with overlap loses zero requests | ${d.stats.failed} failed of ${d.stats.requests} during ${UPDATES} updates (and ${d.stats.steady.failed} outside them); p99 ${f1(d.stats.p99)} ms, max ${f0(d.stats.max)} ms | **${d.stats.failed === 0 && d.stats.steady.failed === 0 ? 'yes' : 'no'}** |`);
  L.push('');
  for (const n of meta.notes) L.push(`- ${n}`);
  L.push('');
  L.push(`Re-run: \`npx tsc -p . && node bench/listen-load.mjs --write\` (about ${meta.minutes} minutes).`);
  return L.join('\n');
}

// ------------------------------------------------------------------- main

const t0 = performance.now();
const startedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const cases = [];
cases.push(await seedCase());
cases.push(await moltCase('plain'));
cases.push(await moltCase('listen'));
cases.push(await moltCase('overlap'));
for (const c of cases) c.stats = analyse(c.samples, c.windows);

const dirty = git(['status', '--porcelain', '--', 'src']) ? ' + uncommitted changes in src/' : '';
const meta = {
  at: startedAt,
  commit: `${git(['rev-parse', '--short', 'HEAD'])}${dirty}`,
  cpus: os.cpus().length,
  minutes: Math.max(1, Math.round((performance.now() - t0) / 60_000)),
  notes: [],
};
{
  const by = Object.fromEntries(cases.map((c) => [c.label, c.stats]));
  const durations = (label) => cases.find((c) => c.label === label).windows.map((w) => w.to - w.from);
  meta.notes.push(
    `Failures are counted per request, and a client pauses ${RETRY_PAUSE_MS} ms after each, so a count is roughly the outage times ${CLIENTS} clients / ${RETRY_PAUSE_MS} ms; the longest gap is the time-based view. ` +
      `ECONNREFUSED is the window between the old version closing its socket and the new one listening; with \`listen\` that window does not exist: connections wait in the backlog (4096) of the socket molt holds, and the new version accepts them. ECONNRESET: a connection the kernel had already queued on the old version's own socket when that socket closed.`,
  );
  meta.notes.push(
    `With \`listen\` the outage becomes latency: the longest request took ${f0(by['molt-listen'].max)} ms (p99 ${f1(by['molt-listen'].p99)} ms during the updates): a connection made just after the old version stopped accepting waits in the backlog until the new one has started (Node's start-up and hello's listen on fd 3, on CPUs shared with the load). The outage lasts as long as without \`listen\`; it costs latency instead of errors. ` +
      `Without \`listen\`, (b)'s longest gap is ${f0(by.molt.longestGap)} ms and (a)'s ${f0(by.seed.longestGap)} ms.`,
  );
  const commits = (label) => cases.find((c) => c.label === label).windows.map((w) => w.committed - w.from);
  meta.notes.push(
    `Update durations, start to first answer of the new version, median: (a) ${f0(median(durations('seed')))} ms from script start; (b) ${f0(median(durations('molt')))} ms, (c) ${f0(median(durations('molt-listen')))} ms from publish (the updater polls every 1 s, then verifies, stops, swaps and starts); molt's commit follows the 1 s trial: ${f0(median(commits('molt')))} / ${f0(median(commits('molt-listen')))} ms after publish.`,
  );
  meta.notes.push(
    'Latency here is client-side on a 2-CPU machine where the two client loops, hello and molt share the CPUs, so steady-state latency is mostly queueing behind the load generator itself; compare approaches within this table, not with other machines.',
  );
  meta.notes.push(
    `(d) has no window at all: the new version starts beside the old one on the socket molt holds and both accept until the new one has passed its 1 s trial; only then does the old one get TERM (and it finishes what it accepted). Its longest request took ${f0(by['molt-overlap'].max)} ms against ${f0(by['molt-listen'].max)} ms for (c): nothing waits for a start. Its "update" window (publish to the first answer of the new version) ends before the commit, since the new version answers during its trial.`,
  );
}
const md = section(cases, meta);
process.stdout.write(md + '\n');
if (write) {
  fs.writeFileSync(
    path.join(BENCH, 'listen-load.json'),
    JSON.stringify({ meta, cases: cases.map((c) => ({ label: c.label, windowsMs: c.windows.map((w) => Math.round(w.to - w.from)), stats: c.stats })) }, null, 2) + '\n',
  );
  upsertSection(path.join(BENCH, 'RESULTS.md'), 'bench/listen-load.mjs', md);
  log('wrote bench/listen-load.json and its section of bench/RESULTS.md');
}
log(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
process.exit(0);
