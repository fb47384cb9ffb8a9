// The control plane against a running molt: `molt init` supervising an app and the
// real updater (`molt updater` from a local release directory), driven through the
// CLI over the socket and through the admin TCP listener with its token.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { githubSignature } from '../../src/api/auth.js';
import { connect } from '../../src/client/index.js';
import { cli, runCli, script, startMolt, tmpdir, waitFor, type Running } from '../helpers/molt.js';
import { req } from '../api/request.js';

const TOKEN = 'running-molt-token-0123456789';
const SECRET = 'running-molt-webhook-secret';

function release(dir: string, version: string): void {
  script(path.join(dir, version, 'start'), `echo "app ${version} up"\nexec sleep 1000\n`);
}

function molt(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<{ code: number | null; out: string; err: string }> {
  return runCli(args, { ...process.env, ...env }, timeoutMs);
}

describe('control plane of a running molt', () => {
  let tmp: string;
  let running: Running | undefined;
  let env: NodeJS.ProcessEnv;
  let port: number;

  before(async () => {
    tmp = tmpdir('ctl');
    const rel = path.join(tmp, 'releases');
    release(rel, '1.0.0');
    const services = path.join(tmp, 'service');
    const home = path.join(tmp, 'home');
    script(path.join(services, 'app', 'run'), `[ -x ${home}/current/start ] || exec sleep 1000\nexec ${home}/current/start\n`);
    script(path.join(services, 'updater', 'run'), `exec ${JSON.stringify(process.execPath)} ${JSON.stringify(cli)} updater\n`);
    // A free loopback port for the admin listener (the updater cannot report the one it got).
    const net = await import('node:net');
    port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as import('node:net').AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    env = {
      MOLT_SERVICES: services,
      MOLT_SOCKET: path.join(tmp, 'run', 'molt.sock'),
      MOLT_HOME: home,
      MOLT_DIR: rel,
      MOLT_VERSION_FILE: path.join(tmp, 'version'),
      MOLT_TRIAL: '1s',
      MOLT_INTERVAL: '1h',
      MOLT_ADMIN_ADDR: `127.0.0.1:${port}`,
      MOLT_ADMIN_TOKEN: TOKEN,
      MOLT_WEBHOOK_SECRET: SECRET,
      MOLT_LOG_LEVEL: 'info',
    };
    running = startMolt(['init'], { env, pidns: false });
    const c = connect({ socket: env.MOLT_SOCKET! });
    await waitFor(
      '1.0.0 installed and committed',
      async () => {
        try {
          const s = await c.status();
          return s.current === '1.0.0' && !s.trial && s.actions.every((a) => a.state !== 'running');
        } catch {
          return false;
        }
      },
      30_000,
      100,
    );
  });

  after(async () => {
    if (running) {
      await running.kill('SIGTERM');
      await running.exited;
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('molt status and molt health over the socket', async () => {
    const s = await molt(['status'], env);
    assert.equal(s.code, 0, s.err);
    assert.match(s.out, /^ {2}current {5}1\.0\.0$/m);
    assert.match(s.out, /^ {2}app +up  pid \d+/m);
    const h = await molt(['health'], env);
    assert.equal(h.code, 0, h.err + running!.err());
    assert.match(h.out, /^healthy: app up for \d+s, version 1\.0\.0\n$/);
  });

  test('molt update VERSION waits for the real update and its trial', async () => {
    release(path.join(tmp, 'releases'), '1.1.0');
    const r = await molt(['update', '1.1.0'], env);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /1\.1\.0/);
    assert.equal(fs.readFileSync(path.join(tmp, 'version'), 'utf8').trim(), '1.1.0');
    const j = JSON.parse((await molt(['status', '--json'], env)).out);
    assert.equal(j.current, '1.1.0');
    assert.equal(j.previous, '1.0.0');
  });

  test('admin TCP: token required, metrics and page served, signed webhook triggers a check', async () => {
    const t = { port };
    assert.equal((await req(t, 'GET', '/api/status')).status, 401);
    const m = await req(t, 'GET', '/metrics', { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(m.status, 200);
    assert.match(m.text, /^molt_version_info\{version="1\.1\.0"\} 1$/m);
    assert.match(m.text, /^molt_service_up\{service="app"\} 1$/m);
    const page = await req(t, 'GET', '/');
    assert.equal(page.status, 200);
    assert.match(page.text, /<title>molt<\/title>/);
    const body = '{"action":"published"}';
    const hook = await req(t, 'POST', '/api/notify', { body, headers: { 'x-hub-signature-256': githubSignature(SECRET, body), 'x-github-delivery': 'run-1', 'x-github-event': 'release' } });
    assert.equal(hook.status, 202, hook.text);
    assert.ok(['started', 'queued'].includes(hook.json.result));
    const bad = await req(t, 'POST', '/api/notify', { body, headers: { 'x-hub-signature-256': githubSignature('nope', body), 'x-github-delivery': 'run-2' } });
    assert.equal(bad.status, 401);
    assert.ok(!running!.err().includes(TOKEN) && !running!.out().includes(TOKEN), 'the token never reaches the logs');
  });
});
