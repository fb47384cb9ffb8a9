// The bound on GitHub API answers, against a real loopback server that streams
// a body with no Content-Length (the case a declared-length check cannot catch).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { boundedFetch } from '../../src/update/github/bounded-fetch.js';
import { UpdateError } from '../../src/common/errors.js';

let server: http.Server;
let base = '';
before(async () => {
  server = http.createServer((req, res) => {
    const n = Number(new URL(req.url!, 'http://x').searchParams.get('n'));
    if (req.url!.startsWith('/not-modified')) return void res.writeHead(304).end();
    res.writeHead(200, { 'content-type': 'application/json' }); // chunked: no length
    let left = n;
    const push = () => {
      while (left > 0) {
        const k = Math.min(left, 64 << 10);
        left -= k;
        if (!res.write(Buffer.alloc(k, 0x20))) return void res.once('drain', push);
      }
      res.end();
    };
    push();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

test('a streamed body within the bound is passed through whole', async () => {
  const res = await boundedFetch(1 << 20)(`${base}/ok?n=${1 << 20}`);
  assert.equal((await res.arrayBuffer()).byteLength, 1 << 20);
});

test('a streamed body past the bound is a one-line error', async () => {
  await assert.rejects(boundedFetch(1 << 20)(`${base}/big?n=${(1 << 20) + 1}`), (e: unknown) => {
    assert.ok(e instanceof UpdateError, String(e));
    assert.match(e.message, /^GitHub API answer from \/big is larger than 1048576 bytes$/);
    return true;
  });
});

test('a 304 keeps its empty body and status', async () => {
  const res = await boundedFetch(10)(`${base}/not-modified`);
  assert.equal(res.status, 304);
});
