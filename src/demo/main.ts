// `molt demo` (what `npm start` runs): molt init over the example services with
// a local release directory. It publishes hello 1.0.0, then 1.1.0, then a 1.2.0
// that crashes, and narrates the update, the trial, the rollback and the block.
// It ends by itself (or on Ctrl-C) and leaves nothing behind.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { UpdaterStatus } from '../api/types.js';
import { childrenOf } from '../common/proc.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const cli = path.join(repo, 'dist/src/cli/main.js');
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const say = (s: string) => process.stdout.write(`${bold('demo:')} ${s}\n`);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

function getJson<T>(opts: http.RequestOptions): Promise<T | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ ...opts, timeout: 1000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as T);
        } catch {
          resolve(undefined);
        }
      });
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await sleep(250);
  }
}

function canUsePidNamespace(): boolean {
  if (process.getuid?.() !== 0) return false;
  return spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true'], { stdio: 'ignore' }).status === 0;
}

export async function main(): Promise<number> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-demo-'));
  const services = path.join(root, 'services');
  const releases = path.join(root, 'releases');
  const bin = path.join(root, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  fs.mkdirSync(releases);
  for (const svc of ['app', 'updater']) {
    fs.mkdirSync(path.join(services, svc), { recursive: true });
    fs.copyFileSync(path.join(repo, 'services', svc, 'run'), path.join(services, svc, 'run'));
    fs.chmodSync(path.join(services, svc, 'run'), 0o755);
  }
  // The updater's run script calls `molt`: point it at this checkout.
  fs.writeFileSync(path.join(bin, 'molt'), `#!/bin/sh\nexec "${process.execPath}" "${cli}" "$@"\n`, { mode: 0o755 });
  const port = await freePort();
  const socket = path.join(root, 'molt.sock');
  const env = {
    ...process.env,
    PATH: `${bin}:${path.dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    MOLT_SERVICES: services,
    MOLT_HOME: path.join(root, 'home'),
    MOLT_DIR: releases,
    MOLT_INTERVAL: '2s',
    MOLT_TRIAL: '4s',
    MOLT_SOCKET: socket,
    MOLT_VERSION_FILE: path.join(root, 'version'),
    MOLT_STOP_TIMEOUT: '3s',
    MOLT_LOG_LEVEL: process.env.MOLT_LOG_LEVEL ?? 'info',
    HELLO_PORT: String(port),
  };
  const pack = (version: string, behaviour = 'ok') => {
    const r = spawnSync(path.join(repo, 'examples/hello/pack.sh'), [version, releases, behaviour], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`pack.sh failed: ${r.stderr}`);
  };

  const pidns = canUsePidNamespace();
  const argv = pidns ? ['unshare', '--pid', '--fork', '--mount-proc', process.execPath, cli, 'init'] : [process.execPath, cli, 'init'];
  say(`molt init ${pidns ? 'as PID 1 of a new PID namespace' : 'as a child subreaper (not root: no PID namespace)'}; services in ${services}`);
  say(`releases come from the local directory ${releases} (MOLT_DIR); the app answers on http://127.0.0.1:${port}/`);
  pack('1.0.0');
  say('published hello 1.0.0');
  const init: ChildProcess = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'inherit', 'inherit'] });
  const initExit = new Promise<number>((resolve) => init.once('exit', (code, sig) => resolve(code ?? (sig ? 128 : 1))));

  let stopping = false;
  const stopInit = async (): Promise<number> => {
    if (stopping) return initExit;
    stopping = true;
    // unshare does not forward signals: signal molt (its child) directly.
    const kids = childrenOf(init.pid!);
    for (const pid of kids.length ? kids : [init.pid!]) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone
      }
    }
    const t = setTimeout(() => init.kill('SIGKILL'), 10_000);
    const code = await initExit;
    clearTimeout(t);
    return code;
  };
  const cleanup = () => fs.rmSync(root, { recursive: true, force: true });
  process.once('SIGINT', () => {
    say('Ctrl-C: stopping molt (services get TERM, then the grace time, then KILL)');
    void stopInit().then((code) => {
      cleanup();
      process.exit(code === 0 ? 130 : code);
    });
  });

  const appVersion = async () => (await getJson<{ version: string }>({ host: '127.0.0.1', port, path: '/' }))?.version;
  const status = () => getJson<UpdaterStatus>({ socketPath: socket, path: '/api/status' });
  let ok = false;
  try {
    await until('hello 1.0.0 to answer', async () => (await appVersion()) === '1.0.0', 30_000);
    say(`hello answers ${bold('1.0.0')}: first install done`);
    pack('1.1.0');
    say('published hello 1.1.0: the updater finds it within one interval (2s), downloads and verifies it while 1.0.0 keeps running,');
    say('then stops 1.0.0, swaps `current`, starts 1.1.0 and watches it through a 4s trial');
    const committed = await until(
      '1.1.0 to be committed',
      async () => {
        const s = await status();
        return s?.history.find((h) => h.event === 'commit' && h.version === '1.1.0') ? s : undefined;
      },
      40_000,
    );
    say(`1.1.0 passed its trial and is committed (current ${committed.current}, previous ${committed.previous}); hello answers ${bold((await appVersion()) ?? '?')}`);
    pack('1.2.0', 'crash');
    say('published hello 1.2.0, which crashes 300 ms after it starts');
    const blocked = await until(
      '1.2.0 to be rolled back and blocked',
      async () => {
        const s = await status();
        return s?.blocked.find((b) => b.version === '1.2.0') && s.phase === 'idle' ? s : undefined;
      },
      60_000,
    );
    const why = blocked.blocked.find((b) => b.version === '1.2.0')!.reason;
    const v = await until('the app to answer again', appVersion, 20_000);
    say(`1.2.0 ${why}: rolled back to ${bold(v)} and blocked (${'`molt unblock 1.2.0`'} would lift it)`);
    say('history, newest first:');
    for (const h of blocked.history.slice(0, 8)) say(`  ${h.at.slice(11, 19)} ${h.event}${h.version ? ' ' + h.version : ''}${h.from ? ' (from ' + h.from + ')' : ''}${h.detail ? ': ' + h.detail : ''}`);
    ok = v === '1.1.0';
  } catch (err) {
    say(`failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  say('stopping molt: services get TERM, loggers drain, then exit');
  const code = await stopInit();
  say(`molt exited with ${code}; removing ${root}`);
  cleanup();
  return ok && code === 0 ? 0 : 1;
}
