// `molt publish` as users and CI run it: the real CLI against the real docker-registry.
// Exit codes (0 ok, 1 failed, 2 usage), the digest printed, blobs the registry has skipped,
// and pushing through a Bearer-token registry.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startRegistry, startServer, passThrough, type Registry, type TestServer } from '../helpers/registry.js';
import { OciSource } from '../../src/update/sources/oci.js';
import { sha256Hex } from '../../src/update/oci/client.js';
import { setLogLevel } from '../../src/common/log.js';

setLogLevel('error');

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

function molt(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, MOLT_OCI_USER: '', DOCKER_CONFIG: '/nonexistent', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d));
    p.stderr.on('data', (d: Buffer) => (stderr += d));
    const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

let reg: Registry;
let tmp: string;
let app: string;
let tgz: string;

before(async () => {
  reg = await startRegistry();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-publish-'));
  app = path.join(tmp, 'app');
  fs.writeFileSync(app, '#!/bin/sh\necho hello\n');
  // A tiny valid .tar.gz made by the system tar: publish must label it tar+gzip.
  fs.mkdirSync(path.join(tmp, 'tree'));
  fs.writeFileSync(path.join(tmp, 'tree', 'README'), 'inside the tarball\n');
  tgz = path.join(tmp, 'bundle.tgz');
  const { spawnSync } = await import('node:child_process');
  assert.equal(spawnSync('tar', ['-czf', tgz, '-C', path.join(tmp, 'tree'), 'README']).status, 0);
});
after(async () => {
  await reg?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('molt publish', () => {
  test('pushes an artifact, prints the manifest digest the registry serves, exit 0', async () => {
    const r = await molt(['publish', `${reg.host}/cli/app:v1.4.0`, app, tgz, '--annotation', 'org.opencontainers.image.source=https://example.invalid/app']);
    assert.equal(r.code, 0, r.stderr);
    const digest = r.stdout.trim();
    assert.match(digest, /^sha256:[0-9a-f]{64}$/);
    const head = await fetch(`${reg.url}/v2/cli/app/manifests/v1.4.0`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    const body = Buffer.from(await head.arrayBuffer());
    assert.equal(head.headers.get('docker-content-digest'), digest);
    assert.equal(sha256Hex(body), digest);
    const m = JSON.parse(body.toString());
    assert.equal(m.artifactType, 'application/vnd.molt.release.v1');
    assert.equal(m.config.mediaType, 'application/vnd.oci.empty.v1+json');
    assert.equal(m.annotations['org.opencontainers.image.version'], '1.4.0');
    assert.equal(m.annotations['org.opencontainers.image.source'], 'https://example.invalid/app');
    assert.deepEqual(m.layers.map((l: { mediaType: string; annotations: Record<string, string> }) => [l.mediaType, l.annotations['org.opencontainers.image.title']]), [
      ['application/octet-stream', 'app'],
      ['application/vnd.oci.image.layer.v1.tar+gzip', 'bundle.tgz'],
    ]);
    // And molt's own source reads it back: semver tag v1.4.0 -> version 1.4.0.
    const src = new OciSource(`${reg.host}/cli/app`);
    const [rel] = (await src.list()).releases;
    assert.equal(rel!.version, '1.4.0');
    const root = fs.mkdtempSync(path.join(tmp, 'staging-'));
    const got = await src.fetch(rel!, root);
    assert.equal(fs.readFileSync(path.join(got.dir, 'README'), 'utf8'), 'inside the tarball\n');
    assert.equal(fs.readFileSync(path.join(got.dir, 'app'), 'utf8'), '#!/bin/sh\necho hello\n');
    assert.ok(fs.statSync(path.join(got.dir, 'app')).mode & 0o100, 'a bare file is installed executable');
  });

  test('blobs the registry already has are not uploaded again', async () => {
    const proxy: TestServer = await startServer((req, res) => passThrough(reg.url, req, res));
    try {
      const first = await molt(['publish', `127.0.0.1:${proxy.port}/cli/skip:1.0.0`, app]);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(proxy.log.filter((e) => e.method === 'POST').length, 2); // config + app
      proxy.log.length = 0;
      const second = await molt(['publish', `127.0.0.1:${proxy.port}/cli/skip:1.0.1`, app]);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(proxy.log.filter((e) => e.method === 'POST' || e.method === 'PATCH').length, 0);
      assert.equal(proxy.log.filter((e) => e.method === 'HEAD').length, 2);
      assert.equal(proxy.log.filter((e) => e.method === 'PUT').length, 1); // the manifest only
    } finally {
      await proxy.close();
    }
  });

  test('pushes through a Bearer-token registry, asking for push scope with MOLT_OCI_USER/PASSWORD', async () => {
    const scopes: string[] = [];
    const proxy: TestServer = await startServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (url.pathname === '/token') {
        scopes.push(url.searchParams.getAll('scope').join(' '));
        const ok = req.headers.authorization === 'Basic ' + Buffer.from('ci:secret').toString('base64');
        res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
        res.end(ok ? '{"access_token":"push-token"}' : '{}');
        return;
      }
      if (req.headers.authorization !== 'Bearer push-token') {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${proxy.port}/token",service="t",scope="repository:cli/tok:pull,push"` });
        res.end();
        return;
      }
      return passThrough(reg.url, req, res);
    });
    try {
      const ok = await molt(['publish', `127.0.0.1:${proxy.port}/cli/tok:2.0.0`, app], { MOLT_OCI_USER: 'ci', MOLT_OCI_PASSWORD: 'secret' });
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual([...new Set(scopes)], ['repository:cli/tok:pull,push']);
      assert.ok(!ok.stderr.includes('push-token') && !ok.stderr.includes('secret'), 'no secret in the logs');
      const denied = await molt(['publish', `127.0.0.1:${proxy.port}/cli/tok:2.0.1`, app], { MOLT_OCI_USER: 'ci', MOLT_OCI_PASSWORD: 'nope' });
      assert.equal(denied.code, 1);
      assert.match(denied.stderr, /refused the credentials/);
    } finally {
      await proxy.close();
    }
  });

  test('failures exit 1 with one line naming the problem', async () => {
    const missing = await molt(['publish', `${reg.host}/cli/x:1.0.0`, path.join(tmp, 'no-such-file')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^molt: publish: cannot read .*no-such-file: ENOENT\n$/);
    const dir = await molt(['publish', `${reg.host}/cli/x:1.0.0`, tmp]);
    assert.equal(dir.code, 1);
    assert.match(dir.stderr, /is not a regular file/);
  });

  for (const [args, re] of [
    [[], /missing REF/],
    [[`127.0.0.1:1/cli/x:1.0.0`], /missing FILE/],
    [['not a ref', 'f'], /bad OCI reference/],
    [[`127.0.0.1:1/cli/x`, 'f'], /has no tag/],
    [[`127.0.0.1:1/cli/x:1.0.0`, 'f', '--frobnicate'], /unknown option '--frobnicate'/],
    [[`127.0.0.1:1/cli/x:1.0.0`, 'f', '--sign'], /--sign needs a value/],
    [[`127.0.0.1:1/cli/x:1.0.0`, 'f', '--sign', '/nonexistent/key.pem'], /--sign \/nonexistent\/key\.pem: cannot read \(ENOENT\)/],
    [[`127.0.0.1:1/cli/x:1.0.0`, 'f', '--sign', '/etc/hostname'], /--sign \/etc\/hostname: not a minisign secret key/],
  ] as [string[], RegExp][]) {
    test(`usage error exits 2: publish ${args.join(' ') || '(nothing)'}`, async () => {
      const r = await molt(['publish', ...args]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
      assert.equal(r.stdout, '');
    });
  }
});
