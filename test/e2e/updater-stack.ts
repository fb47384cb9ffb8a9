// A whole molt "container" for the updater's end-to-end tests: molt init as
// PID 1 of a fresh PID namespace over copies of the example services (app and
// updater), `molt` on PATH through a wrapper, a MOLT_HOME, an API socket and a
// loopback port for the app. The tests watch it from outside only: the app's
// HTTP answer, the updater's API, state.json and the symlinks on disk.
//
// Why a PID namespace: that is how molt runs in a container, PID 1 reaps and
// stops everything itself, and when a test fails the kernel kills whatever is
// left in the namespace together with its PID 1. Host pids are still found
// through /proc/<pid>/task/*/children (descendantsOf) when a test must kill -9
// the updater.
import { spawn, spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { UpdaterStatus } from '../../src/api/types.js';
import { parseJournal, type JournalState } from '../../src/update/journal.js';
import { alive, cli, descendantsOf, repoRoot, startMolt, stopAndWait, tmpdir, waitFor, type Running } from '../helpers/molt.js';
import { freePort } from '../helpers/registry.js';

export interface Reply {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
  text: string;
}

/** One HTTP request over a Unix socket or to 127.0.0.1:port; never throws for an HTTP status. */
export function request(target: { socket: string } | { port: number }, method: string, urlPath: string, body?: unknown, timeoutMs = 5000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const r = http.request(
      {
        method,
        path: urlPath,
        agent: false,
        headers: data ? { 'content-type': 'application/json', 'content-length': String(data.length) } : {},
        ...('socket' in target ? { socketPath: target.socket } : { host: '127.0.0.1', port: target.port }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, json, text });
        });
        res.on('error', reject);
      },
    );
    r.setTimeout(timeoutMs, () => r.destroy(new Error(`${method} ${urlPath}: no answer within ${timeoutMs} ms`)));
    r.on('error', reject);
    r.end(data);
  });
}

/** Run a command without blocking the event loop (molt's pipes keep draining), bounded. */
export function runAsync(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** hello's own packer: OUT/<version>.tar.gz plus its SHA256SUMS line. */
export function packHello(version: string, out: string, behaviour: 'ok' | 'crash' | 'hang' = 'ok'): string {
  const r = spawnSync(path.join(repoRoot, 'examples/hello/pack.sh'), [version, out, behaviour], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`pack.sh ${version} failed: ${r.stderr}`);
  return path.join(out, `${version}.tar.gz`);
}

/**
 * What a scripted test app does (written as behaviour.json next to it):
 * - listen: answer GET / with {"app":"hello","version"} on HELLO_PORT (default true);
 * - ready: run `molt ready` once listening (MOLT_READY=explicit);
 * - exitAfterMs/exitCode: exit with exitCode that long after starting;
 * - crashIfExists: exit 1 at once (before listening) while this file exists;
 * - exit42If: exit 42 (ask for the staged update) when this file appears (it is removed first).
 */
export interface AppBehaviour {
  listen?: boolean;
  ready?: boolean;
  exitAfterMs?: number;
  exitCode?: number;
  crashIfExists?: string;
  exit42If?: string;
}

const APP_SOURCE = `// molt's scripted test app (test/e2e/updater-stack.ts).
import http from 'node:http';
import fs from 'node:fs';
import { execFile } from 'node:child_process';
const here = new URL('.', import.meta.url).pathname;
const version = fs.readFileSync(here + 'VERSION', 'utf8').trim();
const b = JSON.parse(fs.readFileSync(here + 'behaviour.json', 'utf8'));
const say = (s) => console.log('testapp ' + version + ': ' + s);
say('starting ' + JSON.stringify(b));
if (b.crashIfExists && fs.existsSync(b.crashIfExists)) { say('crash flag present: exit 1'); process.exit(1); }
if (b.exitAfterMs !== undefined) setTimeout(() => { say('exiting ' + (b.exitCode ?? 1)); process.exit(b.exitCode ?? 1); }, b.exitAfterMs);
if (b.exit42If) setInterval(() => { if (fs.existsSync(b.exit42If)) { fs.rmSync(b.exit42If, { force: true }); say('exit 42: restart me into the staged update'); process.exit(42); } }, 50);
let server;
if (b.listen !== false) {
  server = http.createServer((req, res) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ app: 'hello', version }) + '\\n'); });
  server.listen(Number(process.env.HELLO_PORT), '127.0.0.1', () => {
    say('listening');
    if (b.ready) execFile('molt', ['ready'], (err, stdout, stderr) => say('molt ready: ' + (err ? 'failed ' + stderr.trim() : stdout.trim())));
  });
} else {
  setInterval(() => {}, 1000);
}
const stop = () => { say('TERM'); if (server) server.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
`;

/** Write a directory release of the scripted app at dir/<version>, atomically (built beside it, then renamed in). */
export function writeAppRelease(dir: string, version: string, b: AppBehaviour = {}): string {
  const work = path.join(dir, `.build-${version}-${process.pid}`);
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  fs.writeFileSync(path.join(work, 'app.mjs'), APP_SOURCE);
  fs.writeFileSync(path.join(work, 'VERSION'), `${version}\n`);
  fs.writeFileSync(path.join(work, 'behaviour.json'), JSON.stringify(b));
  fs.writeFileSync(path.join(work, 'run'), `#!/bin/sh\nexec "${process.execPath}" ./app.mjs\n`, { mode: 0o755 });
  const dest = path.join(dir, version);
  fs.renameSync(work, dest);
  return dest;
}

export interface StackOptions {
  /** Release source and any other updater settings (MOLT_DIR, MOLT_OCI, MOLT_GITHUB, MOLT_TRIAL...). */
  env: Record<string, string>;
  label: string;
}

export class Stack {
  readonly root: string;
  readonly services: string;
  readonly home: string;
  readonly socket: string;
  readonly versionFile: string;
  readonly bin: string;
  port = 0;
  m: Running | undefined;
  /** Every molt run, kept for diagnostics when a test fails. */
  private readonly runs: Running[] = [];

  private constructor(private readonly opts: StackOptions) {
    this.root = tmpdir(opts.label);
    this.services = path.join(this.root, 'services');
    this.home = path.join(this.root, 'home');
    this.socket = path.join(this.root, 'molt.sock');
    this.versionFile = path.join(this.root, 'version');
    this.bin = path.join(this.root, 'bin');
    for (const svc of ['app', 'updater']) {
      fs.mkdirSync(path.join(this.services, svc), { recursive: true });
      fs.copyFileSync(path.join(repoRoot, 'services', svc, 'run'), path.join(this.services, svc, 'run'));
      fs.chmodSync(path.join(this.services, svc, 'run'), 0o755);
    }
    fs.mkdirSync(this.bin);
    // services/updater/run says `exec molt updater`: molt must be on PATH.
    fs.writeFileSync(path.join(this.bin, 'molt'), `#!/bin/sh\nexec "${process.execPath}" "${cli}" "$@"\n`, { mode: 0o755 });
  }

  static async create(opts: StackOptions): Promise<Stack> {
    const s = new Stack(opts);
    s.port = await freePort();
    return s;
  }

  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
      ...process.env,
      PATH: `${this.bin}:${path.dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      MOLT_SERVICES: this.services,
      MOLT_HOME: this.home,
      MOLT_SOCKET: this.socket,
      MOLT_VERSION_FILE: this.versionFile,
      MOLT_INTERVAL: '1s',
      MOLT_TRIAL: '3s',
      MOLT_STOP_TIMEOUT: '3s',
      MOLT_MAX_BACKOFF: '2s',
      HELLO_PORT: String(this.port),
      ...this.opts.env,
      ...extra,
    };
  }

  /** Start molt init (PID 1 of a new PID namespace) over app + updater. */
  start(extra: Record<string, string> = {}): Running {
    if (this.m && this.m.proc.exitCode === null && this.m.proc.signalCode === null) throw new Error('molt is already running');
    this.m = startMolt(['init'], { env: this.env(extra) });
    this.runs.push(this.m);
    return this.m;
  }

  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
    if (!this.m) return undefined;
    return stopAndWait(this.m);
  }

  /** Stop molt if it runs and remove everything. */
  async dispose(): Promise<void> {
    await this.stop();
    fs.rmSync(this.root, { recursive: true, force: true });
  }

  /** molt's output of every run so far (for a failing assertion's message). */
  logs(): string {
    return this.runs.map((r, i) => `--- molt run ${i + 1} stdout ---\n${r.out()}\n--- stderr ---\n${r.err()}`).join('\n');
  }

  api(method: string, urlPath: string, body?: unknown): Promise<Reply> {
    return request({ socket: this.socket }, method, urlPath, body);
  }

  async status(): Promise<UpdaterStatus | undefined> {
    try {
      const r = await this.api('GET', '/api/status');
      return r.status === 200 ? (r.json as UpdaterStatus) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Wait for the updater's status to satisfy `pred`; returns that status. */
  waitStatus(what: string, pred: (s: UpdaterStatus) => boolean, timeoutMs = 30_000): Promise<UpdaterStatus> {
    return waitFor(
      what,
      async () => {
        const s = await this.status();
        return s && pred(s) ? s : undefined;
      },
      timeoutMs,
      100,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.logs().slice(-6000)}`);
    });
  }

  /** The version the app answers with on HELLO_PORT, or undefined when nothing answers. */
  async appVersion(): Promise<string | undefined> {
    try {
      const r = await request({ port: this.port }, 'GET', '/', undefined, 1000);
      return r.status === 200 ? (r.json as { version?: string } | undefined)?.version : undefined;
    } catch {
      return undefined;
    }
  }

  waitAppVersion(version: string, timeoutMs = 30_000): Promise<string> {
    return waitFor(`the app to answer ${version}`, async () => ((await this.appVersion()) === version ? version : undefined), timeoutMs, 100).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.logs().slice(-6000)}`);
    });
  }

  /** The version `current` resolves to (undefined when there is no current). */
  current(): string | undefined {
    try {
      return path.basename(fs.realpathSync(path.join(this.home, 'current')));
    } catch {
      return undefined;
    }
  }

  versionFileText(): string | undefined {
    try {
      return fs.readFileSync(this.versionFile, 'utf8').trim();
    } catch {
      return undefined;
    }
  }

  /** state.json parsed and validated by the journal's own parser (throws when invalid). */
  state(): JournalState {
    return parseJournal(fs.readFileSync(path.join(this.home, 'state.json'), 'utf8'));
  }

  installedVersions(): string[] {
    try {
      return fs.readdirSync(path.join(this.home, 'versions')).sort();
    } catch {
      return [];
    }
  }

  stagingEntries(): string[] {
    try {
      return fs.readdirSync(path.join(this.home, 'staging'));
    } catch {
      return [];
    }
  }

  /** Host pid of the running `molt updater` process, if any. */
  async updaterPid(): Promise<number | undefined> {
    if (!this.m) return undefined;
    const root = await this.m.moltPid();
    for (const pid of descendantsOf(root)) {
      try {
        const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
        if (argv.includes(cli) && argv[argv.length - 1] === 'updater') return pid;
      } catch {
        // gone
      }
    }
    return undefined;
  }

  /** Run the molt CLI against this stack's socket (PATH, MOLT_SOCKET...). */
  cli(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return runAsync(process.execPath, [cli, ...args], this.env(), timeoutMs);
  }
}

/**
 * The end-to-end path every source must pass, as the issue states it: v1 runs; v2 is
 * taken at the next poll; v3 crashes at once and is rolled back to v2 and blocked, and
 * the block survives a kill -9 of the updater; v4 is taken. `publish` makes a release
 * of hello VERSION (pack.sh behaviour ok|crash) visible at the source.
 */
export async function oneToFour(stack: Stack, publish: (version: string, behaviour: 'ok' | 'crash') => Promise<void>, source: RegExp, label: string): Promise<void> {
  await publish('1.0.0', 'ok');
  stack.start();
  await stack.waitAppVersion('1.0.0', 60_000);
  let s = await stack.waitStatus('1.0.0 committed', (x) => x.phase === 'idle' && x.history.some((h) => h.event === 'commit' && h.version === '1.0.0'));
  assert.equal(s.current, '1.0.0');
  assert.equal(stack.versionFileText(), '1.0.0');
  assert.match(s.source, source);

  // v2: the next poll (MOLT_INTERVAL=1s) finds it; the old version answers until the swap.
  const published2 = Date.now();
  await publish('2.0.0', 'ok');
  await stack.waitAppVersion('2.0.0', 30_000);
  const took = Date.now() - published2;
  s = await stack.waitStatus('2.0.0 committed', (x) => x.phase === 'idle' && x.history.some((h) => h.event === 'commit' && h.version === '2.0.0'));
  assert.equal(s.current, '2.0.0');
  assert.equal(s.previous, '1.0.0');
  assert.equal(stack.versionFileText(), '2.0.0');
  const dl = s.history.find((h) => h.event === 'download' && h.version === '2.0.0');
  assert.ok(dl, 'the download of 2.0.0 is in the history');
  assert.match(dl.detail ?? '', /verified sha256:[0-9a-f]{64}/, 'the artifact was verified by its digest');
  // Diagnostic only (no timed assertions): publish -> new version answering.
  console.log(`${label}: 2.0.0 answered ${took} ms after it was published (interval 1 s, stop + start of the app included)`);

  // v3 crashes 300 ms after each start: two deaths in its trial -> rollback to v2 + block.
  await publish('3.0.0', 'crash');
  s = await stack.waitStatus('3.0.0 blocked', (x) => x.blocked.some((b) => b.version === '3.0.0') && x.phase === 'idle', 60_000);
  await stack.waitAppVersion('2.0.0');
  assert.equal(s.current, '2.0.0');
  assert.equal(stack.current(), '2.0.0', 'current resolves to 2.0.0 on disk');
  assert.equal(stack.versionFileText(), '2.0.0', 'MOLT_VERSION_FILE is back at 2.0.0');
  assert.ok(
    s.history.some((h) => h.event === 'rollback' && h.from === '3.0.0' && h.version === '2.0.0'),
    'the history records the rollback from 3.0.0 to 2.0.0',
  );
  const blocked = await stack.api('GET', '/api/blocked');
  assert.equal(blocked.status, 200);
  const entry = (blocked.json as { version: string; reason: string }[]).find((b) => b.version === '3.0.0');
  assert.ok(entry, 'GET /api/blocked lists 3.0.0');
  assert.match(entry.reason, /crashed 2 times during its trial/);
  assert.ok(
    stack.state().blocked.some((b) => b.version === '3.0.0' && /crashed/.test(b.reason)),
    'state.json holds the block with its reason',
  );

  // Kill -9 the updater: the supervisor restarts it, and the block survives in state.json.
  const oldPid = await waitFor('the updater process', () => stack.updaterPid(), 5000);
  process.kill(oldPid, 'SIGKILL');
  await waitFor('the killed updater to be gone', () => !alive(oldPid), 5000);
  const newPid = await waitFor('a new updater process', async () => {
    const p = await stack.updaterPid();
    return p && p !== oldPid ? p : undefined;
  }, 20_000);
  assert.notEqual(newPid, oldPid);
  // Its API answers, and it has polled the source (3.0.0 is still the newest tag) at least twice.
  const first = await stack.waitStatus('the restarted updater to poll', (x) => x.lastCheck?.ok === true && Date.parse(x.lastCheck.at) > Date.now() - 60_000 && x.releases.some((r) => r.version === '3.0.0'));
  await stack.waitStatus('a second poll', (x) => x.lastCheck !== undefined && x.lastCheck.at !== first.lastCheck!.at, 15_000);
  s = await stack.waitStatus('a third poll', (x) => x.lastCheck !== undefined && Date.parse(x.lastCheck.at) > Date.parse(first.lastCheck!.at) + 1500, 15_000);
  const blockedAfter = await stack.api('GET', '/api/blocked');
  assert.ok((blockedAfter.json as { version: string }[]).some((b) => b.version === '3.0.0'), 'still blocked after the updater restart');
  assert.equal(s.current, '2.0.0');
  assert.equal(s.available, undefined, 'nothing to take: 3.0.0 is the newest and it is blocked');
  assert.equal(s.releases.find((r) => r.version === '3.0.0')?.blocked, true);
  assert.equal(stack.state().history.filter((h) => h.event === 'update' && h.version === '3.0.0').length, 1, '3.0.0 was tried exactly once');
  assert.equal(await stack.appVersion(), '2.0.0');

  // v4 clears the way.
  await publish('4.0.0', 'ok');
  await stack.waitAppVersion('4.0.0', 30_000);
  s = await stack.waitStatus('4.0.0 committed', (x) => x.phase === 'idle' && x.history.some((h) => h.event === 'commit' && h.version === '4.0.0'));
  assert.equal(s.current, '4.0.0');
  assert.equal(s.previous, '2.0.0');
  assert.equal(stack.versionFileText(), '4.0.0');
  assert.ok(s.blocked.some((b) => b.version === '3.0.0'), '3.0.0 stays blocked');
  assert.equal(s.phase, 'idle');
  assert.deepEqual(stack.stagingEntries(), [], 'no staging debris');

}
