#!/usr/bin/env node
// Re-exec of PID 1 (issue 15) against a container restart of the same services.
// One molt init, PID 1 of its own PID namespace, runs SERVICES services (one
// of them with log/); the bench asks it to re-execute into itself, REPS times,
// and then restarts the "container" REPS times: SIGKILL to the namespace's
// PID 1 (the kernel kills the rest), wait for it to be gone, and start a fresh
// molt init over the same service directory.
//
//   node bench/reexec.mjs            markdown on stdout
//   node bench/reexec.mjs --write    also replace this section of bench/RESULTS.md
//
// Measured, for a re-exec (from the bench's own write of the request line to
// MOLT_SERVICES/.molt-reexec):
//   answered   until the new PID 1 has adopted every service (its answer
//              `re-executed` in .molt-reexec.answer) and runit's `sv status`
//              shows every service running with the pid it had before;
//   window     PID 1's unavailability: from the old molt's last log line
//              (`re-executing`, just before execve) to that answer: meanwhile
//              PID 1 reaps nothing and reads no supervise/control;
//   sv status  runit's `sv status` run in a loop during every re-exec: how many
//              of its answers failed (the supervise/ FIFOs are handed over,
//              so it should never fail).
// For a restart (from the SIGKILL): until `sv status` shows every service
// running again (new pids); nothing answers before, so that is its window too.
// Log-line times are when the bench read them from molt's stderr pipe.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { BENCH, CLI, childrenOf, git, kill, killMoltNamespaces, killPid1, log, median, onExit, percentile, requireBins, requireBuilt, sleep, startMoltNs, stopMoltNs, waitFor, watchdog, reportSection } from './lib.mjs';

const SV = '/usr/bin/sv';
const SERVICES = 8;
const REPS = Number(process.env.BENCH_REEXEC_REPS) || 10;
const write = process.argv.includes('--write');
requireBuilt([CLI]);
requireBins([SV], 'apt-get install runit');
watchdog(2);
const started = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-bench-reexec-'));
onExit(() => {
  killMoltNamespaces();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const services = path.join(tmp, 'services');
const dirs = [];
for (let i = 0; i < SERVICES; i++) {
  const d = path.join(services, `s${i}`);
  fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(d, 'run'), '#!/bin/sh\nexec sleep 100000\n', { mode: 0o755 });
  dirs.push(d);
}
const logged = path.join(services, 'counter');
fs.mkdirSync(path.join(logged, 'log'), { recursive: true });
fs.writeFileSync(path.join(logged, 'run'), '#!/bin/sh\ni=0\nwhile :; do i=$((i+1)); echo "n $i"; sleep 0.01; done\n', { mode: 0o755 });
fs.writeFileSync(path.join(logged, 'log', 'run'), `#!/bin/sh\nexec cat > ${path.join(tmp, 'counter.log')}\n`, { mode: 0o755 });
dirs.push(logged);
const env = { MOLT_SERVICES: services, MOLT_LOG_LEVEL: 'info' };

/** runit's sv status over every service: the pids when all run, undefined otherwise (or when it fails). */
function svStatus() {
  return new Promise((resolve) => {
    execFile(SV, ['status', ...dirs], { timeout: 5000 }, (err, stdout) => {
      if (err) return resolve(undefined);
      const lines = stdout.trim().split('\n');
      if (lines.length !== dirs.length || !lines.every((l) => l.startsWith('run: '))) return resolve(undefined);
      resolve(lines.map((l) => /\(pid (\d+)\)/.exec(l)?.[1]).join(','));
    });
  });
}

/** Times (performance.now()) at which lines matching each pattern arrived on molt's stderr. */
function lineClock(ns) {
  const seen = [];
  let buf = '';
  ns.proc.stderr.on('data', (d) => {
    const t = performance.now();
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      seen.push({ t, line: buf.slice(0, nl) });
      buf = buf.slice(nl + 1);
    }
  });
  return { last: (re, after) => seen.filter((s) => s.t >= after && re.test(s.line)).at(-1)?.t };
}

/** The TAI64N stamp of supervise/status: changes when a run starts. */
const stampOf = (d) => {
  try {
    return fs.readFileSync(path.join(d, 'supervise', 'status')).subarray(0, 12).toString('hex');
  } catch {
    return '';
  }
};

const answerFile = path.join(services, '.molt-reexec.answer');
const answerId = () => {
  try {
    const st = fs.statSync(answerFile);
    return `${st.ino}:${st.mtimeMs}:${fs.readFileSync(answerFile, 'utf8').trim()}`;
  } catch {
    return '';
  }
};

// ---------------------------------------------------------------- re-exec
log(`re-exec: ${SERVICES + 1} services, ${REPS} re-execs`);
const ns = startMoltNs(env, 200_000);
const clock = lineClock(ns);
const pidsBefore = await waitFor('every service running', svStatus, 30_000, 20);
const reexec = [];
let svProbes = 0;
let svFailures = 0;
for (let rep = 0; rep < REPS; rep++) {
  await sleep(300);
  const before = answerId();
  let probing = true;
  const prober = (async () => {
    while (probing) {
      const r = await svStatus();
      svProbes++;
      if (r !== pidsBefore) svFailures++;
    }
  })();
  const t0 = performance.now();
  const fd = fs.openSync(path.join(services, '.molt-reexec'), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  fs.writeSync(fd, '\n');
  fs.closeSync(fd);
  const answered = await waitFor('the new molt answers', () => {
    const id = answerId();
    return id !== before && id.endsWith('re-executed: 9 service(s) adopted') && performance.now();
  }, 60_000, 1);
  const pids = await waitFor('sv status', svStatus, 10_000, 1);
  const t1 = performance.now();
  probing = false;
  await prober;
  if (pids !== pidsBefore) throw new Error(`a service changed pid across the re-exec: ${pidsBefore} -> ${pids}`);
  const execAt = clock.last(/re-executing/, t0);
  if (execAt === undefined) throw new Error(`no re-executing line: ${ns.out().slice(-2000)}`);
  reexec.push({ answered: t1 - t0, window: answered - execAt, check: execAt - t0 });
  log(`re-exec ${rep + 1}: answered ${(t1 - t0).toFixed(0)} ms, window ${(answered - execAt).toFixed(0)} ms`);
}
const lines = fs.readFileSync(path.join(tmp, 'counter.log'), 'utf8').trim().split('\n');
const gaps = lines.filter((l, i) => l !== `n ${i + 1}`).length;
await stopMoltNs(ns);

// ---------------------------------------------------------------- container restart
log(`restart: ${REPS} restarts`);
const restart = [];
let cur = startMoltNs(env, 20_000);
await waitFor('every service running', svStatus, 30_000, 20);
for (let rep = 0; rep < REPS; rep++) {
  await sleep(300);
  const stamps = dirs.map(stampOf);
  const t0 = performance.now();
  killPid1(cur.proc.pid);
  await cur.exited;
  cur = startMoltNs(env, 20_000);
  // Pids inside a new namespace repeat the old ones: a new run is told by its new status stamp.
  await waitFor('every service running again', async () => {
    const p = await svStatus();
    return p && dirs.every((d, i) => stampOf(d) !== stamps[i]);
  }, 30_000, 1);
  const t1 = performance.now();
  restart.push(t1 - t0);
  log(`restart ${rep + 1}: ${(t1 - t0).toFixed(0)} ms`);
}
await stopMoltNs(cur);
for (const pid of childrenOf(cur.proc.pid)) kill(pid);

// ---------------------------------------------------------------- report
const f = (x) => x.toFixed(0);
const answered = reexec.map((r) => r.answered);
const windows = reexec.map((r) => r.window);
const dirty = git(['status', '--porcelain', '--', 'src']) ? ' + uncommitted changes to src/' : '';
const L = [];
L.push('## Re-exec of PID 1 against a container restart (bench/reexec.mjs)');
L.push('');
L.push(`${started}, molt ${git(['rev-parse', '--short', 'HEAD'])}${dirty}, Node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), load ${os.loadavg()[0].toFixed(2)}.`);
L.push('');
L.push(`molt init as PID 1 of its own PID namespace with ${SERVICES + 1} services (${SERVICES} \`sleep\`s and a counter writing 100 lines/s into its log/). A re-exec is \`molt reexec\` into the same molt (the bench writes the request line itself): a check child (\`molt init --check-adopt\`, a whole Node start) then the exec. A container restart is SIGKILL to the namespace's PID 1 and a fresh \`molt init\` over the same service directory. Times from the request (re-exec) or the SIGKILL (restart); ${REPS} of each.`);
L.push('');
L.push('| measurement | median | p95 | min | max |');
L.push('|---|---:|---:|---:|---:|');
const row = (name, xs) => L.push(`| ${name} | ${f(median(xs))} ms | ${f(percentile(xs, 95))} ms | ${f(Math.min(...xs))} ms | ${f(Math.max(...xs))} ms |`);
row('re-exec: request → new PID 1 has adopted every service, `sv status` shows the same pids', answered);
row('of which: the check child, before the exec', reexec.map((r) => r.check));
row("re-exec: PID 1's unavailability (execve → adopted: no reaping, no control read)", windows);
row('container restart: SIGKILL → `sv status` shows every service running again', restart);
L.push('');
L.push('| ratio (re-exec / restart, medians) | value |');
L.push('|---|---:|');
L.push(`| time until \`sv status\` answers with every service running | ${(median(answered) / median(restart)).toFixed(2)} |`);
L.push(`| PID 1's unavailability window | ${(median(windows) / median(restart)).toFixed(2)} |`);
L.push('');
L.push(`During the re-execs, runit's \`sv status\` ran ${svProbes} times: ${svFailures} answered anything but every service running with its old pid (the supervise/ FIFOs and lock are handed over, so \`sv\` never finds them closed). No service was restarted by a re-exec; the logger got ${lines.length} lines, ${gaps} out of sequence. A restart stops every service (new pids) and loses what they held.`);
L.push('');
L.push('Re-run: `npx tsc -p . && node bench/reexec.mjs --write` (under 2 minutes).');
const md = L.join('\n');
reportSection('bench/reexec.mjs', md, { write, log });
process.exit(0);
