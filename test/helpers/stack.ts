// A container-like stack for updater tests: molt init over copies of the
// example services (app + updater), a local release directory (MOLT_DIR), a
// MOLT_HOME, a `molt` on PATH, and the hello app on a free loopback port.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { cli, repoRoot, startMolt, tmpdir, type Running } from './molt.js';
import type { UpdaterStatus } from '../../src/api/types.js';

export interface Stack {
  root: string;
  home: string;
  releases: string;
  services: string;
  socket: string;
  versionFile: string;
  port: number;
  env: NodeJS.ProcessEnv;
  molt: Running;
  /** Pack hello VERSION into the release directory. */
  publish(version: string, behaviour?: 'ok' | 'crash' | 'exit' | 'hang'): void;
  appVersion(): Promise<string | undefined>;
  status(): Promise<UpdaterStatus | undefined>;
  journal(): { phase: string; target?: { version: string } } | undefined;
  /** Start molt init again over the same home (after a stop or a kill). */
  restart(): Running;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export function httpJson<T>(opts: http.RequestOptions, body?: unknown): Promise<T | undefined> {
  return new Promise((resolve) => {
    const req = http.request({ ...opts, timeout: 2000, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => {
        try {
          resolve(JSON.parse(text) as T);
        } catch {
          resolve(undefined);
        }
      });
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

export async function makeStack(extraEnv: NodeJS.ProcessEnv = {}, opts: { pidns?: boolean } = {}): Promise<Stack> {
  const root = tmpdir('stack');
  const services = path.join(root, 'services');
  const releases = path.join(root, 'releases');
  const bin = path.join(root, 'bin');
  const home = path.join(root, 'home');
  fs.mkdirSync(releases, { recursive: true });
  fs.mkdirSync(bin);
  for (const svc of ['app', 'updater']) {
    fs.mkdirSync(path.join(services, svc), { recursive: true });
    fs.copyFileSync(path.join(repoRoot, 'services', svc, 'run'), path.join(services, svc, 'run'));
    fs.chmodSync(path.join(services, svc, 'run'), 0o755);
  }
  fs.writeFileSync(path.join(bin, 'molt'), `#!/bin/sh\nexec "${process.execPath}" "${cli}" "$@"\n`, { mode: 0o755 });
  const port = await freePort();
  const socket = path.join(root, 'molt.sock');
  const versionFile = path.join(root, 'version');
  const env: NodeJS.ProcessEnv = {
    PATH: `${bin}:${path.dirname(process.execPath)}:${process.env.PATH}`,
    MOLT_SERVICES: services,
    MOLT_HOME: home,
    MOLT_DIR: releases,
    MOLT_INTERVAL: '1s',
    MOLT_TRIAL: '2s',
    MOLT_SOCKET: socket,
    MOLT_VERSION_FILE: versionFile,
    MOLT_STOP_TIMEOUT: '3s',
    HELLO_PORT: String(port),
    ...extraEnv,
  };
  const start = () => startMolt(['init'], { env, pidns: opts.pidns ?? true });
  const stack: Stack = {
    root,
    home,
    releases,
    services,
    socket,
    versionFile,
    port,
    env,
    molt: start(),
    publish(version, behaviour = 'ok') {
      const r = spawnSync(path.join(repoRoot, 'examples/hello/pack.sh'), [version, releases, behaviour], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`pack.sh: ${r.stderr}`);
    },
    async appVersion() {
      return (await httpJson<{ version: string }>({ host: '127.0.0.1', port, path: '/' }))?.version;
    },
    status() {
      return httpJson<UpdaterStatus>({ socketPath: socket, path: '/api/status' });
    },
    journal() {
      try {
        return JSON.parse(fs.readFileSync(path.join(home, 'state.json'), 'utf8'));
      } catch {
        return undefined;
      }
    },
    restart() {
      stack.molt = start();
      return stack.molt;
    },
  };
  return stack;
}

/** Invariants that must hold at every instant once a version is installed. */
export function currentResolves(home: string): boolean {
  try {
    const target = fs.realpathSync(path.join(home, 'current'));
    return fs.existsSync(path.join(target, 'run'));
  } catch {
    return false;
  }
}

export function stagingEmpty(home: string): boolean {
  try {
    return fs.readdirSync(path.join(home, 'staging')).length === 0;
  } catch {
    return true;
  }
}
