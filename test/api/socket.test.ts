// Binding the API socket: stale files from a crash are replaced, a live updater is
// never displaced, and directories where others could swap the socket are refused.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startApi } from '../../src/api/server.js';
import { socketDirProblem } from '../../src/api/socket.js';
import { setLogLevel } from '../../src/common/log.js';
import { FakeUpdater } from './fake-updater.js';
import { req } from './request.js';

setLogLevel('warn');

/** A socket file with nobody behind it, as a kill -9 of the updater leaves it. */
async function staleSocket(file: string): Promise<void> {
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(file)}, () => process.kill(process.pid, 'SIGKILL'))`], { stdio: 'ignore' });
  await new Promise((r) => child.once('exit', r));
  assert.ok(fs.lstatSync(file).isSocket(), 'the killed process left its socket file');
}

describe('API socket', () => {
  let tmp: string;
  const fake = new FakeUpdater();

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-sock-'));
  });
  after(() => {
    fake.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('a stale socket left by a crash is replaced, and the new one answers', async () => {
    const file = path.join(tmp, 'stale', 'molt.sock');
    fs.mkdirSync(path.dirname(file));
    await staleSocket(file);
    const api = await startApi(fake, { socket: file });
    try {
      const r = await req({ socket: file }, 'GET', '/api/status');
      assert.equal(r.status, 200);
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    } finally {
      await api.close();
    }
    assert.equal(fs.existsSync(file), false, 'close removes the socket');
  });

  test('a live socket is refused ("already running") and keeps working', async () => {
    const file = path.join(tmp, 'live.sock');
    const other = net.createServer((c) => {
      c.on('error', () => {}); // the probe may hang up first
      c.end('still here\n');
    });
    await new Promise<void>((r) => other.listen(file, r));
    try {
      await assert.rejects(startApi(fake, { socket: file }), /already running: something answers on/);
      const got = await new Promise<string>((resolve, reject) => {
        const c = net.connect(file);
        let s = '';
        c.on('data', (d) => (s += d));
        c.on('end', () => resolve(s));
        c.on('error', reject);
      });
      assert.equal(got, 'still here\n');
    } finally {
      await new Promise((r) => other.close(r));
    }
  });

  test('a second molt on the same socket is refused while the first runs', async () => {
    const file = path.join(tmp, 'twice.sock');
    const first = await startApi(fake, { socket: file });
    try {
      await assert.rejects(startApi(fake, { socket: file }), /already running/);
      assert.equal((await req({ socket: file }, 'GET', '/healthz')).status, 200);
    } finally {
      await first.close();
    }
  });

  test('a world-writable parent without the sticky bit is refused; with it, accepted', async () => {
    const ww = path.join(tmp, 'ww');
    fs.mkdirSync(ww);
    fs.chmodSync(ww, 0o777);
    await assert.rejects(startApi(fake, { socket: path.join(ww, 'molt.sock') }), /world-writable without the sticky bit/);
    assert.deepEqual(fs.readdirSync(ww), []);
    fs.chmodSync(ww, 0o1777);
    const api = await startApi(fake, { socket: path.join(ww, 'molt.sock') });
    await api.close();
  });

  test('a file that is not a socket is never replaced', async () => {
    const file = path.join(tmp, 'plain');
    fs.writeFileSync(file, 'precious');
    await assert.rejects(startApi(fake, { socket: file }), /exists and is not a socket/);
    assert.equal(fs.readFileSync(file, 'utf8'), 'precious');
    const link = path.join(tmp, 'link.sock');
    fs.symlinkSync(file, link);
    await assert.rejects(startApi(fake, { socket: link }), /not a socket/);
    assert.equal(fs.readFileSync(file, 'utf8'), 'precious');
  });

  test('missing directories are created 0755 and the process umask is left as it was', async () => {
    const file = path.join(tmp, 'a', 'b', 'molt.sock');
    const mask = process.umask();
    const api = await startApi(fake, { socket: file });
    try {
      assert.equal(process.umask(), mask);
      assert.equal(fs.statSync(path.join(tmp, 'a', 'b')).mode & 0o777, 0o755 & ~mask);
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    } finally {
      await api.close();
    }
  });

  test('socketDirProblem: the rule as a table', () => {
    assert.equal(socketDirProblem('/run/molt', { mode: 0o40755, uid: 0 }, 0), undefined);
    assert.match(socketDirProblem('/x', { mode: 0o40777, uid: 0 }, 0)!, /world-writable/);
    assert.match(socketDirProblem('/x', { mode: 0o40772, uid: 0 }, 0)!, /world-writable/);
    assert.equal(socketDirProblem('/tmp', { mode: 0o41777, uid: 0 }, 0), undefined);
    assert.match(socketDirProblem('/home/eve', { mode: 0o40755, uid: 1001 }, 0)!, /belongs to uid 1001/);
    assert.equal(socketDirProblem('/home/me', { mode: 0o40700, uid: 1000 }, 1000), undefined);
  });
});
