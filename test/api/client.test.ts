// molt/client against a running API (Unix socket and TCP with a token) backed by
// the fake updater: every method, waiting for actions, and each kind of failure.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connect, MoltError, type MoltClient, type UpdaterStatus } from '../../src/client/index.js';
import { startApi, type ApiHandle } from '../../src/api/server.js';
import { setLogLevel } from '../../src/common/log.js';
import { FakeUpdater } from './fake-updater.js';

setLogLevel('warn');
const TOKEN = 'client-test-token-0123456789';

describe('molt/client', () => {
  let tmp: string;
  let fake: FakeUpdater;
  let api: ApiHandle;
  let socket: string;
  let molt: MoltClient;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-client-'));
    socket = path.join(tmp, 'molt.sock');
    fake = new FakeUpdater({ tickMs: 10, bad: ['1.2.0'] });
    api = await startApi(fake, { socket, adminAddr: '127.0.0.1:0', adminToken: TOKEN });
    molt = connect({ socket });
  });
  after(async () => {
    await api?.close();
    fake?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('is what the package exports as molt/client', async () => {
    const spec = 'molt/client';
    const mod = (await import(spec)) as { connect: unknown; MoltError: unknown };
    assert.equal(typeof mod.connect, 'function');
    assert.equal(typeof mod.MoltError, 'function');
  });

  test('status(), blocked()', async () => {
    const s = await molt.status();
    assert.equal(s.current, '1.1.0');
    assert.equal(s.phase, 'idle');
    assert.deepEqual((await molt.blocked()).map((b) => b.version), ['1.2.1']);
    assert.equal(molt.target, socket);
  });

  test('check() then waitFor() returns the finished action', async () => {
    const a = await molt.check();
    assert.equal(a.state, 'running');
    const done = await molt.waitFor(a.id, { intervalMs: 10, timeoutMs: 5000 });
    assert.equal(done.state, 'done');
    assert.equal(done.message, '1.3.0 is available');
  });

  test('update() with progress through onStatus; a second update at once resolves refused, not thrown', async () => {
    const a = await molt.update('1.3.0');
    const refused = await molt.update();
    assert.equal(refused.state, 'failed');
    assert.match(refused.message!, /already running/);
    const seen: UpdaterStatus[] = [];
    const done = await molt.waitFor(a.id, { intervalMs: 5, onStatus: (s) => seen.push(s) });
    assert.equal(done.state, 'done');
    assert.equal(done.message, 'updated to 1.3.0 (from 1.1.0)');
    assert.ok(seen.some((s) => s.download && s.download.total === 4 * 1024 * 1024));
    assert.equal((await molt.status()).current, '1.3.0');
  });

  test('an update that fails its trial ends failed, with the reason, and is blocked', async () => {
    const a = await molt.update('1.2.0');
    const done = await molt.waitFor(a.id, { intervalMs: 5 });
    assert.equal(done.state, 'failed');
    assert.equal(done.message, '1.2.0 crashed 2 times during its trial (exit 1); rolled back to 1.3.0');
    assert.ok((await molt.blocked()).some((b) => b.version === '1.2.0'));
    assert.equal(await molt.unblock('1.2.0'), true);
    assert.equal(await molt.unblock('1.2.0'), false);
    const h = await molt.health();
    assert.equal(h.ok, false);
    assert.match(h.error!, /update to 1\.2\.0 failed/);
  });

  test('ready(): false without a trial, true during one (and the trial commits)', async () => {
    assert.equal((await molt.ready()).ready, false);
    fake.trialTicks = 100_000;
    const a = await molt.update('1.1.0');
    await molt.waitFor(a.id, { intervalMs: 5, timeoutMs: 100 }).catch(() => undefined);
    for (let i = 0; i < 200 && fake.phase !== 'trial'; i++) await new Promise((r) => setTimeout(r, 10));
    const r = await molt.ready();
    assert.deepEqual(r, { ready: true, version: '1.1.0', message: '1.1.0 is ready; trial committed' });
    assert.equal((await molt.waitFor(a.id, { intervalMs: 5 })).state, 'done');
    fake.trialTicks = 3;
  });

  test('rollback()', async () => {
    const a = await molt.rollback();
    const done = await molt.waitFor(a.id, { intervalMs: 5 });
    assert.equal(done.state, 'done');
    assert.equal((await molt.status()).current, '1.3.0');
    assert.deepEqual(await molt.health(), { ok: true });
  });

  test('over TCP with url + token; a wrong token is MoltError unauthorized', async () => {
    const url = `http://127.0.0.1:${api.admin!.port}`;
    const remote = connect({ url, token: TOKEN });
    assert.equal((await remote.status()).current, '1.3.0');
    assert.equal(remote.target, url);
    const wrong = connect({ url, token: 'not-the-token-at-all' });
    await assert.rejects(wrong.status(), (e: unknown) => e instanceof MoltError && e.code === 'unauthorized' && e.status === 401 && /Bearer/.test(e.message));
    const prev = process.env.MOLT_ADMIN_TOKEN;
    process.env.MOLT_ADMIN_TOKEN = TOKEN;
    try {
      assert.equal((await connect({ url }).status()).current, '1.3.0', 'the token defaults to MOLT_ADMIN_TOKEN');
    } finally {
      if (prev === undefined) delete process.env.MOLT_ADMIN_TOKEN;
      else process.env.MOLT_ADMIN_TOKEN = prev;
    }
  });

  test('MOLT_SOCKET is the default socket', async () => {
    const prev = process.env.MOLT_SOCKET;
    process.env.MOLT_SOCKET = socket;
    try {
      assert.equal((await connect().status()).current, '1.3.0');
    } finally {
      if (prev === undefined) delete process.env.MOLT_SOCKET;
      else process.env.MOLT_SOCKET = prev;
    }
  });

  test('not running: no socket, or a stale one', async () => {
    const missing = path.join(tmp, 'nothing-here.sock');
    await assert.rejects(connect({ socket: missing }).status(), (e: unknown) => e instanceof MoltError && e.code === 'not-running' && e.message === `updater not running (no socket at ${missing})`);
    const stale = path.join(tmp, 'stale.sock');
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    await new Promise((r) => child.once('exit', r));
    await assert.rejects(connect({ socket: stale }).check(), (e: unknown) => e instanceof MoltError && e.code === 'not-running' && /nothing listening/.test(e.message));
  });

  test('a server that never answers is a timeout; an unknown action id is not-found', async () => {
    const hang = path.join(tmp, 'hang.sock');
    const conns: net.Socket[] = [];
    const server = net.createServer((c) => {
      conns.push(c); // accepts, never answers
    });
    await new Promise<void>((r) => server.listen(hang, r));
    try {
      await assert.rejects(connect({ socket: hang, timeoutMs: 200 }).status(), (e: unknown) => e instanceof MoltError && e.code === 'timeout');
    } finally {
      for (const c of conns) c.destroy();
      await new Promise((r) => server.close(r));
    }
    await assert.rejects(molt.waitFor('update-999999'), (e: unknown) => e instanceof MoltError && e.code === 'not-found');
  });
});
