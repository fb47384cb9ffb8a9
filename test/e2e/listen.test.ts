// molt holds the listening sockets: every start of the service gets them as
// fds 3.. with systemd's variables, and connections made while it restarts wait
// in the kernel's backlog instead of being refused.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import path from 'node:path';
import { runCli, script, sleep, startMolt, stopAndWait, tmpdir, waitFor } from '../helpers/molt.js';
import { freePort, makeStack } from '../helpers/stack.js';
import { get, load } from '../helpers/load.js';

/** An app that serves on the inherited fd 3 and reports what socket activation gave it. */
const activatedApp = `#!${process.execPath}
const http = require('node:http');
const ok = process.env.LISTEN_PID === String(process.pid);
const server = http.createServer((q, r) => r.end(JSON.stringify({ pid: process.pid, fds: process.env.LISTEN_FDS, names: process.env.LISTEN_FDNAMES, pidMatches: ok }))).listen({ fd: 3 });
// Graceful: answer what was accepted, leave the backlog to the next start.
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;
const plainApp = (port: number) => `#!${process.execPath}
const server = require('node:http').createServer((q, r) => r.end('{}')).listen(${port}, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

describe('listen: socket activation', () => {
  test('fds 3.. with LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID set to the app itself', async () => {
    const services = tmpdir('listen');
    const port = await freePort();
    script(path.join(services, 'web', 'run'), 'exec ./app.js\n');
    script(path.join(services, 'web', 'app.js'), activatedApp);
    fs.writeFileSync(path.join(services, 'web', 'listen'), `tcp 127.0.0.1:${port} http\nunix ${services}/admin.sock 0600 admin\n`);
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services }, pidns: false });
    try {
      const r = await waitFor('served', async () => {
        const x = await get(port);
        return x.ok ? x : undefined;
      }, 10_000);
      const info = JSON.parse(r.body!);
      assert.deepEqual([info.fds, info.names, info.pidMatches], ['2', 'http:admin', true]);
      const st = fs.statSync(path.join(services, 'admin.sock'));
      assert.ok(st.isSocket());
      assert.equal(st.mode & 0o777, 0o600);
    } finally {
      await stopAndWait(m);
    }
    assert.ok(!fs.existsSync(path.join(services, 'admin.sock')), 'the unix socket is removed with the service');
  });

  test('no connection is refused across restarts with listen; without it, restarts refuse connections', async () => {
    const services = tmpdir('norefuse');
    const held = await freePort();
    const plain = await freePort();
    script(path.join(services, 'held', 'run'), 'sleep 0.3\nexec ./app.js\n'); // a slow start makes the window visible
    script(path.join(services, 'held', 'app.js'), activatedApp);
    fs.writeFileSync(path.join(services, 'held', 'listen'), `tcp 127.0.0.1:${held} http\n`);
    script(path.join(services, 'plain', 'run'), 'sleep 0.3\nexec ./app.js\n');
    script(path.join(services, 'plain', 'app.js'), plainApp(plain));
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services }, pidns: false });
    try {
      await waitFor('both serving', async () => (await get(held)).ok && (await get(plain)).ok, 10_000);
      for (const [port, dir] of [[held, 'held'], [plain, 'plain']] as const) {
        const l = load(port);
        const pidFile = path.join(services, dir, 'supervise', 'pid');
        for (let i = 0; i < 3; i++) {
          await sleep(1200); // past the restart throttle
          const before = fs.readFileSync(pidFile, 'utf8').trim();
          // Not spawnSync: the load generator runs in this process and must keep running meanwhile.
          const r = await runCli(['sv', 'term', path.join(services, dir)], {}, 30_000);
          assert.equal(r.code, 0, r.err);
          await waitFor(`${dir} restarted`, () => {
            const now = fs.readFileSync(pidFile, 'utf8').trim();
            return now !== '' && now !== before ? now : undefined;
          }, 15_000);
        }
        await sleep(1500);
        const { done, failures } = await l.stop();
        if (dir === 'held') assert.deepEqual(failures, [], `listen: ${done} requests, none failed`);
        else assert.ok(failures.includes('ECONNREFUSED'), `without listen, restarts refused connections (${failures.length} of ${done})`);
      }
    } finally {
      await stopAndWait(m);
    }
  });

  test('a socket that cannot be bound is a clear error for that service; the others run', async () => {
    const services = tmpdir('busy');
    const blocker = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    const busy = (blocker.address() as net.AddressInfo).port;
    script(path.join(services, 'a', 'run'), 'exec ./app.js\n');
    script(path.join(services, 'a', 'app.js'), activatedApp);
    fs.writeFileSync(path.join(services, 'a', 'listen'), `tcp 127.0.0.1:${busy}\n`);
    script(path.join(services, 'b', 'run'), 'echo b up\nexec sleep 1000\n');
    fs.mkdirSync(path.join(services, 'c'));
    fs.writeFileSync(path.join(services, 'c', 'listen'), 'udp 1.2.3.4:53\n');
    script(path.join(services, 'c', 'run'), 'exec sleep 1000\n');
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services }, pidns: false });
    try {
      await waitFor('b up', () => m.out().includes('[b] b up'), 10_000);
      await waitFor('errors', () => /service not started service=a error="cannot listen on tcp 127.0.0.1:\d+: bind: Address already in use \(EADDRINUSE\)"/.test(m.err()) && /bad listen file; service not started service=c/.test(m.err()), 5000);
    } finally {
      blocker.close();
      await stopAndWait(m);
    }
  });

  test('an update of an app whose socket molt holds loses no request', async () => {
    const s = await makeStack({ MOLT_TRIAL: '1s' });
    const port = s.port;
    fs.writeFileSync(path.join(s.services, 'app', 'listen'), `tcp 127.0.0.1:${port} http\n`);
    try {
      s.publish('5.0.0');
      await waitFor('5.0.0', async () => (await s.appVersion()) === '5.0.0', 30_000);
      await waitFor('idle', async () => (await s.status())?.phase === 'idle', 15_000);
      const l = load(port);
      s.publish('5.1.0');
      await waitFor('5.1.0', async () => (await s.appVersion()) === '5.1.0', 30_000);
      const { done, failures } = await l.stop();
      assert.deepEqual(failures, [], `${done} requests during the update, none failed`);
    } finally {
      await stopAndWait(s.molt);
    }
  });
});
