// Test fixtures for the OCI source: Debian's real `docker-registry` (distribution 2.8) on a free
// loopback port with its own storage and config, and small loopback servers to put faults in
// front of it (a proxy that can rewrite, delay, cut or reset any answer).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export interface Registry {
  /** host:port as a reference prefix, e.g. 127.0.0.1:41234 */
  host: string;
  url: string;
  /** The registry's storage root (blobs live under docker/registry/v2/blobs). */
  root: string;
  blobFile(digest: string): string;
  stop(): Promise<void>;
}

function ensureInstalled(): void {
  if (fs.existsSync(REGISTRY_BIN)) return;
  // The package is what CI installs too; install on first use so a fresh machine runs the tests.
  const r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'docker-registry'], { stdio: 'ignore', timeout: 300_000 });
  if (r.status !== 0 || !fs.existsSync(REGISTRY_BIN)) throw new Error(`${REGISTRY_BIN} is missing and apt-get install docker-registry failed`);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitReady(url: string, proc: ChildProcess, stderr: () => string, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    if (proc.exitCode !== null) throw new Error(`docker-registry exited with ${proc.exitCode}: ${stderr().slice(-500)}`);
    try {
      const r = await fetch(url + '/v2/', { signal: AbortSignal.timeout(1000) });
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`docker-registry did not answer on ${url} within ${deadlineMs} ms: ${stderr().slice(-500)}`);
}

/** Start a registry with a fresh storage directory; stop() kills it by pid and removes the directory. */
export async function startRegistry(): Promise<Registry> {
  ensureInstalled();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-registry-'));
  const root = path.join(dir, 'data');
  for (let tries = 0; ; tries++) {
    const port = await freePort();
    const config = path.join(dir, 'config.yml');
    fs.writeFileSync(
      config,
      [
        'version: 0.1',
        'log: {level: error}',
        'storage:',
        `  filesystem: {rootdirectory: ${root}}`,
        '  delete: {enabled: true}',
        '  maintenance: {uploadpurging: {enabled: false}}',
        `http: {addr: "127.0.0.1:${port}"}`,
        '',
      ].join('\n'),
    );
    let err = '';
    const proc = spawn(REGISTRY_BIN, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr!.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
    });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitReady(url, proc, () => err, 15_000);
    } catch (e) {
      proc.kill('SIGKILL');
      // Another process may have taken the port between freePort() and the bind: try another.
      if (tries < 2 && /address already in use/.test(err)) continue;
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    return {
      host: `127.0.0.1:${port}`,
      url,
      root,
      blobFile: (digest) => {
        const hex = digest.replace(/^sha256:/, '');
        return path.join(root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
      },
      stop: async () => {
        if (proc.exitCode === null && proc.signalCode === null) {
          const exited = new Promise<void>((r) => proc.once('exit', () => r()));
          proc.kill('SIGTERM');
          const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
          await exited;
          clearTimeout(t);
        }
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}

export interface TestServer {
  port: number;
  url: string;
  /** Requests seen, in order (method, path with query, authorization header). */
  log: { method: string; url: string; authorization?: string }[];
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1:<free port> that records every request. */
export function startServer(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>): Promise<TestServer> {
  const log: TestServer['log'] = [];
  const server = http.createServer((req, res) => {
    log.push({ method: req.method ?? '', url: req.url ?? '', ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
    Promise.resolve(handler(req, res)).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(599);
      res.end(String(e));
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      resolve({
        port,
        url: `http://127.0.0.1:${port}`,
        log,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}

export interface Upstream {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

/** Send the request on to `upstream` (e.g. the registry) and buffer its answer (test blobs are small). */
export async function forward(upstream: string, req: http.IncomingMessage, opts: { path?: string; dropAuth?: boolean; body?: Buffer } = {}): Promise<Upstream> {
  // `body`: the request body when the caller has read it already (to look at it).
  const body = opts.body ?? (await readAll(req));
  // Host is kept, as real proxies do: the registry builds its Location URLs from it.
  const headers = { ...req.headers };
  if (opts.dropAuth) delete headers.authorization;
  return new Promise((resolve, reject) => {
    const r = http.request(new URL(opts.path ?? req.url ?? '/', upstream), { method: req.method, headers }, (res) => {
      readAll(res).then((b) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b }), reject);
    });
    r.on('error', reject);
    r.end(body);
  });
}

/** Write an upstream answer back, optionally with a replaced body (Content-Length follows the body). */
export function reply(res: http.ServerResponse, up: Upstream, body: Buffer = up.body): void {
  const headers = { ...up.headers };
  delete headers['transfer-encoding'];
  delete headers.connection;
  if (res.req.method !== 'HEAD') headers['content-length'] = String(body.length);
  res.writeHead(up.status, headers);
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** A plain pass-through proxy in front of `upstream`. */
export async function passThrough(upstream: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  reply(res, await forward(upstream, req));
}

/** A proxy in front of `upstream` that reads as it does and refuses every write (403 DENIED), as a read-only credential would. */
export function readOnlyProxy(upstream: string): Promise<TestServer> {
  return startServer(async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      req.resume();
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] }));
      return;
    }
    await passThrough(upstream, req, res);
  });
}
