// The admin TCP listener under a slowloris: half-open connections (headers never
// finished) from one address or from many must not lock out a token holder, and a
// request whose headers never end gets its 408 near the configured deadline, not at
// Node's 30-second check. Loopback only: 127.0.0.0/8 all reaches a 127.0.0.1 listener.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startApi, type ApiHandle } from '../../src/api/server.js';
import { setLogSink } from '../../src/common/log.js';
import { FakeUpdater } from './fake-updater.js';
import { req } from './request.js';

setLogSink(() => {});

const TOKEN = 'slowloris-test-token-0123456789';
const HEADERS_TIMEOUT_MS = 1000;

/** A connection from `localAddress` that sends the start of a request and then nothing. */
function halfOpen(port: number, localAddress: string, sink: net.Socket[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress }, () => {
      s.write('GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
      resolve();
    });
    s.on('error', () => {}); // the server may drop it: that is the point
    s.once('error', reject);
    sink.push(s);
  });
}

/** GET /api/status with the token from `localAddress`, raw, bounded by `timeoutMs`. */
function tokenHolder(port: number, localAddress: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress }, () => {
      s.write(`GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`);
    });
    let text = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms (got ${JSON.stringify(text.slice(0, 80))})`));
    }, timeoutMs);
    s.on('data', (d) => (text += d.toString('utf8')));
    s.on('close', () => {
      clearTimeout(timer);
      if (text) resolve(text);
      else reject(new Error('connection closed without an answer'));
    });
    s.on('error', () => {});
  });
}

/** Hang up every attacker and wait (bounded) until the listener answers again. */
async function release(port: number, attackers: net.Socket[]): Promise<void> {
  for (const s of attackers.splice(0)) s.destroy();
  const end = performance.now() + 5000;
  for (;;) {
    const r = await req({ port }, 'GET', '/api/status', { headers: { authorization: `Bearer ${TOKEN}` } }).catch(() => undefined);
    if (r?.status === 200) return;
    if (performance.now() > end) throw new Error('the listener did not recover after the attackers hung up');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('admin API under a slowloris', () => {
  let tmp: string;
  let fake: FakeUpdater;
  let api: ApiHandle;
  let port: number;
  const attackers: net.Socket[] = [];

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-slowloris-'));
    fake = new FakeUpdater({ tickMs: 10 });
    api = await startApi(fake, {
      socket: path.join(tmp, 'molt.sock'),
      adminAddr: '127.0.0.1:0',
      adminToken: TOKEN,
      headersTimeoutMs: HEADERS_TIMEOUT_MS,
    });
    port = api.admin!.port;
  });

  after(async () => {
    for (const s of attackers.splice(0)) s.destroy();
    await api?.close();
    fake?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('200 half-open connections from 127.0.0.1 do not lock out a token holder on 127.0.0.2', async () => {
    try {
      for (let i = 0; i < 200; i++) await halfOpen(port, '127.0.0.1', attackers);
      const answer = await tokenHolder(port, '127.0.0.2', 3000);
      assert.match(answer, /^HTTP\/1\.1 200 /);
      assert.match(answer, /"current":"1\.1\.0"/);
    } finally {
      await release(port, attackers);
    }
  });

  test('200 half-open connections spread over 20 addresses: the oldest are dropped, a newcomer is answered', async () => {
    try {
      for (let i = 0; i < 200; i++) await halfOpen(port, `127.0.0.${10 + (i % 20)}`, attackers);
      const answer = await tokenHolder(port, '127.0.0.3', 3000);
      assert.match(answer, /^HTTP\/1\.1 200 /);
    } finally {
      await release(port, attackers);
    }
  });

  test("behind a proxy (one address for everyone): the attacker's oldest half-open connections make room", async () => {
    try {
      for (let i = 0; i < 200; i++) await halfOpen(port, '127.0.0.1', attackers);
      const answer = await tokenHolder(port, '127.0.0.1', 3000);
      assert.match(answer, /^HTTP\/1\.1 200 /);
    } finally {
      await release(port, attackers);
    }
  });

  test('headers never finished: 408 and closed within twice the configured deadline', async () => {
    const start = performance.now();
    const s = net.connect({ host: '127.0.0.1', port });
    let text = '';
    s.on('data', (d) => (text += d.toString('utf8')));
    s.on('error', () => {});
    s.once('connect', () => s.write('GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n'));
    // Keep trickling header bytes, as a slowloris does, so that no idle timer can save the day.
    const trickle = setInterval(() => s.writable && s.write('X-A: b\r\n'), 200);
    const closed = await Promise.race([
      new Promise<boolean>((r) => s.once('close', () => r(true))),
      new Promise<boolean>((r) => setTimeout(() => r(false), HEADERS_TIMEOUT_MS * 2)),
    ]);
    clearInterval(trickle);
    const elapsed = performance.now() - start;
    s.destroy();
    assert.ok(closed, `still open after ${Math.round(elapsed)} ms (deadline ${HEADERS_TIMEOUT_MS} ms)`);
    assert.match(text, /^HTTP\/1\.1 408 /);
  });

  test('a request that completes its headers in time is answered normally', async () => {
    const r = await req({ port }, 'GET', '/api/status', { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(r.status, 200);
  });
});
