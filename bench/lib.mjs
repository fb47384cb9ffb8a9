// What the benchmark scripts share: paths, logging, polling, /proc readers,
// statistics, cleanup on exit, and a molt under test in its own PID namespace.
// Only helpers that behave the same in every script that uses them live here;
// a script whose variant differs keeps its own (run.mjs's waitFor polls a
// synchronous probe every 2 ms; listen-load.mjs sorts its large latency arrays
// as a Float64Array). Nothing here runs at import beyond computing paths (no
// getconf, no timers): download.mjs's measured child process imports it too.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

export const BENCH = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.dirname(BENCH);
export const DIST = path.join(ROOT, 'dist');
export const CLI = path.join(DIST, 'src/cli/main.js');
export const NODE = process.execPath;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const log = (msg) => process.stderr.write(`bench: ${msg}\n`);

/** Clock ticks per second, the unit of utime and stime in /proc/<pid>/stat. */
export function clkTck() {
  return Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
}

/** Exits 2 unless every file exists (dist/ is built by `npx tsc -p .`). */
export function requireBuilt(files) {
  for (const f of files) {
    if (!fs.existsSync(f)) {
      log(`${f} is missing: run npx tsc -p . first`);
      process.exit(2);
    }
  }
}

/** Exits 2 unless every absolute path in bins exists (bare names are left to PATH); `install` says how to get them. */
export function requireBins(bins, install) {
  for (const bin of bins) {
    if (bin.startsWith('/') && !fs.existsSync(bin)) {
      log(`${bin} is needed (${install})`);
      process.exit(2);
    }
  }
}

/** `git -C ROOT ...args`, its stdout trimmed. */
export function git(args) {
  return spawnSync('git', ['-C', ROOT, ...args], { encoding: 'utf8' }).stdout.trim();
}

// ---------------------------------------------------------------- statistics

/** Nearest-rank percentile. */
export function percentile(xs, p) {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)];
}
export const median = (xs) => percentile(xs, 50);

// ---------------------------------------------------------------- polling

/** Polls the (possibly async) probe every everyMs until it returns something truthy, which it returns. */
export async function waitFor(what, probe, timeoutMs, everyMs = 20) {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------- /proc

export function readText(file) {
  try {
    return fs.readFileSync(file, 'latin1');
  } catch {
    return undefined;
  }
}

/** Direct children of pid, from every thread's `children` file. */
export function childrenOf(pid) {
  const out = [];
  let tids = [];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const text = readText(`/proc/${pid}/task/${tid}/children`) ?? '';
    for (const p of text.split(' ')) if (Number(p) > 0) out.push(Number(p));
  }
  return out;
}

/** Every descendant of pid, breadth first. */
export function descendantsOf(pid) {
  const seen = [];
  const queue = childrenOf(pid);
  while (queue.length) {
    const p = queue.shift();
    seen.push(p);
    queue.push(...childrenOf(p));
  }
  return seen;
}

/** A `kB` field of /proc/<pid>/status (VmRSS, VmHWM, ...) in KiB; NaN when unreadable. */
export function statusKiB(pid, field) {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readText(`/proc/${pid}/status`) ?? '');
  return m ? Number(m[1]) : NaN;
}

/** VmRSS in KiB. */
export const rssKiB = (pid) => statusKiB(pid, 'VmRSS');

/** utime+stime in clock ticks. */
export function cpuTicks(pid) {
  const stat = readText(`/proc/${pid}/stat`);
  if (!stat) return NaN;
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

// ---------------------------------------------------------------- cleanup

/** Sends sig (SIGKILL by default) to pid, or to a process group given as -pgid; one already gone is fine. */
export function kill(pid, sig = 'SIGKILL') {
  try {
    process.kill(pid, sig);
  } catch {}
}

/** Kills a PID namespace from the host: SIGKILL to its PID 1, the child of its `unshare` (the kernel kills the rest). */
export function killPid1(unsharePid) {
  for (const pid of childrenOf(unsharePid)) kill(pid);
}

/** cleanup() on any exit of the script; on INT, TERM or HUP, says `what` and exits 130 (which runs cleanup). */
export function onExit(cleanup, what = 'killing everything started here') {
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      log(`${sig}: ${what}`);
      process.exit(130);
    });
  }
}

/** Bounds the whole run: after `minutes`, exit 1 (and so the exit cleanup). */
export function watchdog(minutes) {
  const t = setTimeout(() => {
    log(`watchdog: the run took over ${minutes} minutes; killing everything`);
    process.exit(1);
  }, minutes * 60_000);
  t.unref();
  return t;
}

// ---------------------------------------------------------------- molt under test

/** The `unshare` processes of the namespaces startMoltNs started, while they run. */
const moltNamespaces = new Set();

/** molt init as PID 1 of a new PID namespace; out() is the last keepBytes of its stdout and stderr. */
export function startMoltNs(env, keepBytes) {
  const proc = spawn('unshare', ['--pid', '--fork', '--mount-proc', NODE, CLI, 'init'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d) => (out = (out + d).slice(-keepBytes));
  proc.stdout.setEncoding('utf8').on('data', keep);
  proc.stderr.setEncoding('utf8').on('data', keep);
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  moltNamespaces.add(proc);
  exited.then(() => moltNamespaces.delete(proc));
  return { proc, exited, out: () => out };
}

/** SIGTERM to the namespace's molt and wait for it to exit; onTimeout() after 10 s (by default: kill the namespace). */
export async function stopMoltNs(ns, onTimeout = () => killPid1(ns.proc.pid)) {
  const [pid1] = childrenOf(ns.proc.pid);
  if (pid1) kill(pid1, 'SIGTERM');
  const t = setTimeout(onTimeout, 10_000);
  await ns.exited;
  clearTimeout(t);
}

/** Kills every namespace startMoltNs started that still runs. */
export function killMoltNamespaces() {
  for (const proc of moltNamespaces) {
    killPid1(proc.pid);
    kill(proc.pid);
  }
}

/** root/services/<name>/run with the given content. */
function serviceDir(root, name, run) {
  const dir = path.join(root, 'services', name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'run'), run, { mode: 0o755 });
  return dir;
}

/**
 * The tree of a molt with an updater under root: copies of services/app and
 * services/updater, an empty MOLT_DIR `releases`, and bin/molt (the updater's
 * run script calls `molt`: it runs this checkout). Returns app (the app's
 * service directory), releases, socket (MOLT_SOCKET) and env: the variables
 * that place molt in this tree, to which a case adds its own.
 */
export function updaterTree(root) {
  const releases = path.join(root, 'releases');
  const bin = path.join(root, 'bin');
  fs.mkdirSync(releases, { recursive: true });
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(path.join(bin, 'molt'), `#!/bin/sh\nexec "${NODE}" "${CLI}" "$@"\n`, { mode: 0o755 });
  const app = serviceDir(root, 'app', fs.readFileSync(path.join(ROOT, 'services/app/run')));
  serviceDir(root, 'updater', fs.readFileSync(path.join(ROOT, 'services/updater/run')));
  const socket = path.join(root, 'molt.sock');
  const env = {
    PATH: `${bin}:${path.dirname(NODE)}:${process.env.PATH}`,
    MOLT_SERVICES: path.join(root, 'services'),
    MOLT_HOME: path.join(root, 'home'),
    MOLT_DIR: releases,
    MOLT_SOCKET: socket,
    MOLT_VERSION_FILE: path.join(root, 'version'),
  };
  return { app, releases, socket, env };
}

/**
 * The seed's layout under root: the release in `tarball` extracted into root/live
 * (which its update script then overwrites in place), an app service that runs
 * it, and root/update.sh holding `script`. update(args, timeoutMs) runs that
 * script with SVDIR, LIVE and WORK set, and resolves its exit code (SIGKILL at
 * the timeout). env places molt in this tree.
 */
export function seedTree(root, tarball, script) {
  const live = path.join(root, 'live');
  fs.mkdirSync(live, { recursive: true });
  spawnSync('tar', ['-C', live, '-xzf', tarball]);
  const file = path.join(root, 'update.sh');
  fs.writeFileSync(file, script, { mode: 0o755 });
  serviceDir(root, 'app', `#!/bin/sh\nexec 2>&1\ncd "${live}" || exit 111\nexec ./run\n`);
  const update = (args, timeoutMs) =>
    new Promise((resolve) => {
      const p = spawn(file, args, {
        env: { ...process.env, SVDIR: path.join(root, 'services'), LIVE: live, WORK: root, SVWAIT: '7' },
        stdio: 'ignore',
      });
      const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
      p.on('exit', (code) => {
        clearTimeout(t);
        resolve(code);
      });
    });
  const env = { PATH: `${path.dirname(NODE)}:${process.env.PATH}`, MOLT_SERVICES: path.join(root, 'services') };
  return { update, env };
}

function sha256(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/**
 * Makes a release tarball visible in MOLT_DIR: its SHA256SUMS line first, then
 * the file by one rename. With move the file itself is renamed in; otherwise a
 * copy, so the same tarball can be published again.
 */
export function publishToDir(file, dir, { move = false } = {}) {
  const name = path.basename(file);
  const sums = path.join(dir, 'SHA256SUMS');
  const lines = (readText(sums) ?? '').split('\n').filter((l) => l && !l.endsWith(`  ${name}`));
  lines.push(`${sha256(file)}  ${name}`);
  fs.writeFileSync(`${sums}.tmp`, lines.join('\n') + '\n');
  fs.renameSync(`${sums}.tmp`, sums);
  if (move) {
    fs.renameSync(file, path.join(dir, name));
  } else {
    fs.copyFileSync(file, path.join(dir, `.${name}.tmp`));
    fs.renameSync(path.join(dir, `.${name}.tmp`), path.join(dir, name));
  }
}

// ---------------------------------------------------------------- RESULTS.md

/** Replaces (or appends) the block between `<!-- id: begin -->` and `<!-- id: end -->` in file, by one rename. */
export function upsertSection(file, id, md) {
  const begin = `<!-- ${id}: begin -->`;
  const end = `<!-- ${id}: end -->`;
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const block = `${begin}\n${md}\n${end}`;
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  const next = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.replace(/\n*$/, '\n\n')}${block}\n`;
  fs.writeFileSync(`${file}.tmp`, next);
  fs.renameSync(`${file}.tmp`, file);
}

/** Print a bench's section; with `write`, also its JSON (name → data) under bench/ and its section of RESULTS.md. */
export function reportSection(id, md, { write, log, json } = {}) {
  process.stdout.write(md + '\n');
  if (!write) return;
  const bench = path.dirname(fileURLToPath(import.meta.url));
  if (json) fs.writeFileSync(path.join(bench, json.name), JSON.stringify(json.data, null, 2) + '\n');
  upsertSection(path.join(bench, 'RESULTS.md'), id, md);
  log?.(`wrote ${json ? `bench/${json.name} and ` : ''}its section of bench/RESULTS.md`);
}

/**
 * The options the 200 MB release benches share (download.mjs, trust.mjs): --quick (a 20 MB
 * release, 2 reps, nothing written), --write, --reps N (1..50, default 5).
 */
export function releaseBenchOptions(args) {
  const quick = args.includes('--quick');
  const write = args.includes('--write') && !quick;
  const repsArg = args.indexOf('--reps');
  const reps = repsArg >= 0 ? Number(args[repsArg + 1]) : quick ? 2 : 5;
  if (!Number.isInteger(reps) || reps < 1 || reps > 50) {
    process.stderr.write('bench: --reps wants 1..50\n');
    process.exit(2);
  }
  return { quick, write, reps, files: quick ? 5 : 50, fileMb: 4 };
}
