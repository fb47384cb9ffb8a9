// The image as a container, without Docker: a PID namespace (unshare --pid
// --fork --mount-proc) runs the image's ENTRYPOINT, `molt init`, as PID 1 over
// the image's layout built from docker/Dockerfile (the bundle with koffi beside
// it, the wrapper on PATH, /etc/service from services/, the image's ENV). The
// updater follows MOLT_OCI on a real docker-registry; releases are packed by
// examples/hello/pack.sh and pushed with `molt publish`, as the release workflow
// does. v1 -> v2 -> crashing v3 (rolled back and blocked) -> v4, with the app
// answering HTTP with the right version at each step; then `docker stop`: TERM
// to PID 1, exit code 0 before the runtime's 10 s would run out, molt had to
// KILL nothing, and no process of the container is left, zombie or not.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { childrenOf, descendantsOf, repoRoot, tmpdir, waitFor } from '../helpers/molt.js';
import { freePort, startRegistry, type Registry } from '../helpers/registry.js';
import type { UpdaterStatus } from '../../src/api/types.js';
import { buildLayout, type Layout } from './layout.js';

const STEP_MS = 60_000;
/** docker stop's default grace before it sends SIGKILL. */
const DOCKER_STOP_GRACE_MS = 10_000;

interface Seen {
  pid: number;
  start: string;
  comm: string;
}

/** Field 22 of /proc/PID/stat (start time in ticks): tells a pid from a later reuse of it. */
function procStart(pid: number): { start: string; state: string; comm: string } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const rest = stat.slice(close + 2).split(' ');
    return { state: rest[0]!, start: rest[19]!, comm: stat.slice(stat.indexOf('(') + 1, close) };
  } catch {
    return undefined;
  }
}

function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: 30_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function appVersion(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => {
        try {
          resolve((JSON.parse(body) as { version?: string }).version);
        } catch {
          resolve(undefined);
        }
      });
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
  });
}

describe('the image as a container: molt init as PID 1 over the image layout, releases from a registry', { timeout: 420_000 }, () => {
  let work: string;
  let layout: Layout;
  let reg: Registry;
  let env: NodeJS.ProcessEnv;
  let helloPort: number;
  let releases: string;
  let proc: ChildProcess | undefined;
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  let output = '';
  let pid1 = 0;
  let sampler: NodeJS.Timeout | undefined;
  const seen = new Map<string, Seen>();
  /** pid -> when it was first seen as a zombie, while it stays one. */
  const zombieSince = new Map<string, number>();
  const lingering: string[] = [];

  const tail = () => output.slice(-3000);

  function sample(): void {
    if (!pid1) return;
    const now = Date.now();
    const present = new Set<string>();
    for (const pid of [pid1, ...descendantsOf(pid1)]) {
      const p = procStart(pid);
      if (!p) continue;
      const key = `${pid}@${p.start}`;
      present.add(key);
      if (!seen.has(key)) seen.set(key, { pid, start: p.start, comm: p.comm });
      if (p.state === 'Z') {
        const since = zombieSince.get(key) ?? now;
        zombieSince.set(key, since);
        // A zombie that nobody reaps for 5 s is a reaping bug, not a race.
        if (now - since > 5000 && !lingering.includes(key)) lingering.push(`${key} (${p.comm})`);
      }
    }
    for (const k of zombieSince.keys()) if (!present.has(k)) zombieSince.delete(k);
  }

  async function status(): Promise<UpdaterStatus | undefined> {
    const r = await exec('molt', ['status', '--json'], env);
    if (r.code !== 0) return undefined;
    try {
      return JSON.parse(r.stdout) as UpdaterStatus;
    } catch {
      return undefined;
    }
  }

  async function publish(version: string, behaviour: 'ok' | 'crash' = 'ok'): Promise<void> {
    const pack = await exec(path.join(repoRoot, 'examples/hello/pack.sh'), [version, releases, behaviour], env);
    assert.equal(pack.code, 0, pack.stderr);
    const tarball = pack.stdout.trim();
    assert.equal(tarball, path.join(releases, `${version}.tar.gz`));
    const r = await exec('molt', ['publish', `${reg.host}/hello:${version}`, tarball], env);
    assert.equal(r.code, 0, `molt publish ${version}: ${r.stderr}`);
  }

  async function settledOn(version: string): Promise<UpdaterStatus> {
    await waitFor(`the app answering ${version}\n${tail()}`, async () => (await appVersion(helloPort)) === version, STEP_MS, 200);
    return waitFor(
      `molt status: current ${version}, idle\n${tail()}`,
      async () => {
        const s = await status();
        return s && s.current === version && s.phase === 'idle' && !s.trial ? s : undefined;
      },
      STEP_MS,
      250,
    );
  }

  before(async () => {
    work = tmpdir('ship-container');
    layout = buildLayout(path.join(work, 'root'));
    releases = path.join(work, 'releases');
    reg = await startRegistry();
    helloPort = await freePort();
    // What the image's RUN step writes; the updater replaces it with the version in use.
    fs.writeFileSync(layout.at('/version'), '0.0.0-image\n');
    env = {
      PATH: layout.path,
      HOME: work, // no ~/.docker credentials of the machine
      ...layout.env,
      MOLT_SOCKET: layout.at('/run/molt/molt.sock'),
      MOLT_VERSION_FILE: layout.at('/version'),
      MOLT_OCI: `${reg.host}/hello`,
      MOLT_INTERVAL: '1s',
      MOLT_TRIAL: '3s',
      MOLT_STOP_TIMEOUT: '7s',
      HELLO_PORT: String(helloPort),
    };
  });

  after(async () => {
    if (sampler) clearInterval(sampler);
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      // Killing PID 1 of the namespace makes the kernel kill everything in it.
      for (const pid of pid1 ? [pid1] : []) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      proc.kill('SIGKILL');
      await exited;
    }
    await reg?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('v1 is installed from the registry and served; molt health passes; /version follows', async () => {
    await publish('1.0.0');
    // The image's ENTRYPOINT ["molt", "init"], found on the image's PATH, as PID 1.
    proc = spawn('unshare', ['--pid', '--fork', '--mount-proc', 'molt', 'init'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
    exited = new Promise((resolve) => proc!.once('exit', (code, signal) => resolve({ code, signal })));
    pid1 = await waitFor('PID 1 of the namespace', () => childrenOf(proc!.pid!)[0], 10_000);
    sampler = setInterval(sample, 100);
    // unshare forks, then the child execs the wrapper, which execs node: PID 1 ends up running the bundle.
    const cmdline = () => {
      try {
        return fs.readFileSync(`/proc/${pid1}/cmdline`, 'utf8');
      } catch {
        return '';
      }
    };
    await waitFor(`PID 1 running the bundle (cmdline ${JSON.stringify(cmdline())})`, () => /molt\.mjs\0init\0$/.test(cmdline()), 10_000);

    const s = await settledOn('1.0.0');
    assert.equal(s.source.includes(`${reg.host}/hello`), true, s.source);
    assert.equal(fs.readFileSync(layout.at('/version'), 'utf8'), '1.0.0\n');
    assert.match(output, /molt: init: starting pid=1 /, 'molt knows it is PID 1');
    const health = await waitFor('molt health exits 0', async () => {
      const r = await exec('molt', ['health'], env);
      return r.code === 0 ? r : undefined;
    }, STEP_MS, 500);
    assert.match(health.stdout, /healthy: app up/);
  });

  test('v2 is taken and served', async () => {
    await publish('1.1.0');
    const s = await settledOn('1.1.0');
    assert.equal(s.previous, '1.0.0');
  });

  test('a crashing v3 is tried, rolled back to v2 and blocked', async () => {
    await publish('1.2.0', 'crash');
    const s = await waitFor(
      `1.2.0 blocked\n${tail()}`,
      async () => {
        const x = await status();
        return x?.blocked.some((b) => b.version === '1.2.0') && x.phase === 'idle' ? x : undefined;
      },
      STEP_MS,
      250,
    );
    assert.equal(s.current, '1.1.0');
    assert.ok(s.history.some((h) => h.event === 'rollback' && (h.version === '1.2.0' || h.from === '1.2.0')), JSON.stringify(s.history));
    assert.match(output, /hello 1\.2\.0: crashing on purpose/, 'v3 really ran and crashed');
    // The rollback is done once v2 is started again; it answers once it listens.
    await waitFor(`v2 serving again\n${tail()}`, async () => (await appVersion(helloPort)) === '1.1.0', STEP_MS, 200);
    const blocked = await exec('molt', ['blocked'], env);
    assert.match(blocked.stdout, /1\.2\.0/);
  });

  test('v4 is taken; the blocked v3 was never tried again', async () => {
    await publish('1.3.0');
    const s = await settledOn('1.3.0');
    assert.ok(s.blocked.some((b) => b.version === '1.2.0'), 'still blocked');
    const tries = output.match(/hello 1\.2\.0 starting/g) ?? [];
    assert.ok(tries.length >= 1 && tries.length <= 2, `1.2.0 started only during its one trial (crash limit 2), not after: ${tries.length}`);
    assert.equal(fs.readFileSync(layout.at('/version'), 'utf8'), '1.3.0\n');
  });

  test('docker stop: TERM to PID 1 -> exit 0 within the grace time, nothing killed, no process left', async (t) => {
    sample();
    const running = [...seen.values()];
    assert.ok(running.some((p) => p.comm === 'node' && p.pid !== pid1), 'the app and updater were seen running');
    const started = Date.now();
    process.kill(pid1, 'SIGTERM');
    // Like docker: after the grace time, SIGKILL; the assertions below tell which happened.
    const killer = setTimeout(() => {
      try {
        process.kill(pid1, 'SIGKILL');
      } catch {
        // gone
      }
    }, DOCKER_STOP_GRACE_MS);
    const r = await exited;
    clearTimeout(killer);
    clearInterval(sampler);
    sampler = undefined;
    const took = Date.now() - started;
    assert.deepEqual(r, { code: 0, signal: null }, `molt exited by itself with 0 (after ${took} ms)\n${tail()}`);
    assert.match(output, /molt: init: signal received, stopping signal=SIGTERM/);
    assert.doesNotMatch(output, /grace time over, killing/, 'every service stopped on TERM: molt had to KILL nothing');
    assert.match(output, /molt: init: exit code=0/);
    assert.deepEqual(lingering, [], 'no zombie stayed unreaped while the container ran');
    const left = running.filter((p) => procStart(p.pid)?.start === p.start);
    assert.deepEqual(left, [], 'every process of the container has exited');
    assert.equal(await appVersion(helloPort), undefined, 'the app no longer answers');
    const comms = new Map<string, number>();
    for (const p of running) comms.set(p.comm, (comms.get(p.comm) ?? 0) + 1);
    t.diagnostic(`processes seen in the container: ${running.length} (${[...comms].map(([c, n]) => `${c}x${n}`).join(', ')}); stop took ${took} ms`);
  });
});
