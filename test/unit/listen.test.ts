import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listenEnv, parseListen, sockaddr } from '../../src/supervise/listen.js';

test('listen lines: tcp, tcp6, unix with mode and names; comments and blanks ignored', () => {
  const specs = parseListen('# sockets\ntcp 127.0.0.1:8080 http\ntcp6 [::1]:8443\n\nunix /run/app.sock 0660 admin\ntcp :9000\n');
  assert.deepEqual(specs, [
    { kind: 'tcp', host: '127.0.0.1', port: 8080, name: 'http' },
    { kind: 'tcp6', host: '::1', port: 8443, name: 'tcp6:8443' },
    { kind: 'unix', path: '/run/app.sock', mode: 0o660, name: 'admin' },
    { kind: 'tcp', host: '0.0.0.0', port: 9000, name: 'tcp:9000' },
  ]);
});

test('a bad listen line is one error naming the line', () => {
  assert.throws(() => parseListen('tcp 127.0.0.1'), /listen line 1 "tcp 127.0.0.1": want tcp HOST:PORT/);
  assert.throws(() => parseListen('\ntcp 1.2.3.4:70000'), /listen line 2 .*port must be 1-65535/);
  assert.throws(() => parseListen('udp 1.2.3.4:53'), /unknown kind "udp"/);
  assert.throws(() => parseListen('unix relative.sock'), /want unix \/ABSOLUTE\/PATH/);
  assert.throws(() => parseListen('tcp6 [1.2.3.4]:80'), /tcp6 wants an IPv6 address/);
  assert.throws(() => parseListen('tcp :80 bad/name'), /bad socket name/);
});

test('sockaddr layouts: family host-order, port network-order, address bytes', () => {
  const v4 = sockaddr('inet', '127.0.0.1', 8080);
  assert.deepEqual([...v4.subarray(0, 8)], [2, 0, 0x1f, 0x90, 127, 0, 0, 1]);
  assert.equal(v4.length, 16);
  const v6 = sockaddr('inet6', '::1', 443);
  assert.equal(v6.length, 28);
  assert.deepEqual([...v6.subarray(0, 4)], [10, 0, 1, 0xbb]);
  assert.equal(v6[8 + 15], 1);
  assert.deepEqual([...sockaddr('inet6', 'fe80::1:2', 1).subarray(8, 24)], [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2]);
  const un = sockaddr('unix', '/tmp/x.sock', 0);
  assert.equal(un.readUInt16LE(0), 1);
  assert.equal(un.subarray(2, 13).toString(), '/tmp/x.sock');
});

test('systemd variables name the count and the names', () => {
  const env = listenEnv([
    { spec: { kind: 'tcp', host: '0.0.0.0', port: 1, name: 'http' }, fd: 10 },
    { spec: { kind: 'unix', path: '/x', name: 'admin' }, fd: 11 },
  ]);
  assert.deepEqual(env, { LISTEN_FDS: '2', LISTEN_FDNAMES: 'http:admin' });
});

test('a host name is resolved (dns loaded on demand) and the socket bound to its address', async () => {
  const { bindAll, closeAll } = await import('../../src/supervise/listen.js');
  const net = await import('node:net');
  const free = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
  const bound = await bindAll(parseListen(`tcp localhost:${free} http\n`));
  try {
    assert.equal(bound.length, 1);
    // The kernel completes a connect against the listen backlog: the socket is on 127.0.0.1.
    await new Promise<void>((resolve, reject) => {
      const c = net.connect(free, '127.0.0.1', () => {
        c.destroy();
        resolve();
      });
      c.on('error', reject);
    });
  } finally {
    closeAll(bound);
  }
});
