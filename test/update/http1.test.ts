// oci/http1.ts: blob bodies read through reused buffers. The framing is checked as pure
// functions; the client against real loopback servers (plain and TLS), with a consumer that
// scribbles over every chunk it has used, so a read landing in memory still lent out would
// show up as wrong bytes, and with the faults the registry client must survive.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import {
  ChunkedDecoder,
  HttpFormatError,
  ReadSlabs,
  bodyFraming,
  parseResponseHead,
  requestHead,
  sendHttp1,
  type Http1Response,
} from '../../src/update/oci/http1.js';
import { readBody, send } from '../../src/update/oci/http.js';
import { UpdateError } from '../../src/update/types.js';
import { CERT, KEY } from './fixtures-tls/localhost.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** Bytes that differ at every offset, so a misplaced or repeated piece changes the hash. */
function payload(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >>> 11) * 7) & 0xff;
  return b;
}
const head = (s: string) => Buffer.from(s.replace(/\n/g, '\r\n'), 'latin1');
const formatError = (re: RegExp) => (e: unknown) => e instanceof HttpFormatError && re.test(e.message);
const updateError = (code: string, re: RegExp) => (e: unknown) => e instanceof UpdateError && e.code === code && re.test(e.message);

describe('parseResponseHead', () => {
  test('undefined until the blank line; then status, lower-case names, trimmed values, head length', () => {
    assert.equal(parseResponseHead(head('HTTP/1.1 200 OK\nContent-Length: 5\n')), undefined);
    const h = parseResponseHead(head('HTTP/1.1 200 OK\nContent-Length:  5 \nX-A: 1\n\nhello'));
    assert.deepEqual(h, { status: 200, headers: { 'content-length': '5', 'x-a': '1' }, length: head('HTTP/1.1 200 OK\nContent-Length:  5 \nX-A: 1\n\n').length });
  });
  test('duplicates: set-cookie a list, location the first, others joined; equal Content-Length repeats pass', () => {
    const h = parseResponseHead(head('HTTP/1.0 307 Temporary Redirect\nLocation: /a\nLocation: /b\nSet-Cookie: x=1\nSet-Cookie: y=2\nWWW-Authenticate: Basic\nWWW-Authenticate: Bearer realm="r"\nContent-Length: 0\nContent-Length: 0\n\n'))!;
    assert.equal(h.status, 307);
    assert.equal(h.headers.location, '/a');
    assert.deepEqual(h.headers['set-cookie'], ['x=1', 'y=2']);
    assert.equal(h.headers['www-authenticate'], 'Basic, Bearer realm="r"');
    assert.equal(h.headers['content-length'], '0');
  });
  test('refused: conflicting Content-Length, a folded line, a bad name, a bad status line, an endless head', () => {
    assert.throws(() => parseResponseHead(head('HTTP/1.1 200 OK\nContent-Length: 5\nContent-Length: 6\n\n')), formatError(/conflicting Content-Length/));
    assert.throws(() => parseResponseHead(head('HTTP/1.1 200 OK\nX-A: 1\n  folded\n\n')), formatError(/bad header line/));
    assert.throws(() => parseResponseHead(head('HTTP/1.1 200 OK\nBad Name: 1\n\n')), formatError(/bad header line/));
    assert.throws(() => parseResponseHead(head('HTTP/2 200\n\n')), formatError(/bad status line/));
    assert.throws(() => parseResponseHead(head('ICY 200 OK\n\n')), formatError(/bad status line/));
    assert.throws(() => parseResponseHead(Buffer.alloc(70_000, 0x41)), formatError(/larger than/));
  });
});

describe('bodyFraming', () => {
  const h = (status: number, headers: Record<string, string>) => ({ status, headers, length: 0 });
  test('no body for HEAD, 204, 304; chunked; a length; else until the connection closes', () => {
    assert.deepEqual(bodyFraming('HEAD', h(200, { 'content-length': '9' })), { kind: 'none' });
    assert.deepEqual(bodyFraming('GET', h(204, {})), { kind: 'none' });
    assert.deepEqual(bodyFraming('GET', h(304, {})), { kind: 'none' });
    assert.deepEqual(bodyFraming('GET', h(200, { 'transfer-encoding': 'Chunked' })), { kind: 'chunked' });
    assert.deepEqual(bodyFraming('GET', h(200, { 'content-length': '209800000' })), { kind: 'length', bytes: 209_800_000 });
    assert.deepEqual(bodyFraming('GET', h(200, {})), { kind: 'close' });
  });
  test('refused: a length next to a transfer coding, other codings, a bad length', () => {
    assert.throws(() => bodyFraming('GET', h(200, { 'transfer-encoding': 'chunked', 'content-length': '3' })), formatError(/both/));
    assert.throws(() => bodyFraming('GET', h(200, { 'transfer-encoding': 'gzip, chunked' })), formatError(/unsupported Transfer-Encoding/));
    assert.throws(() => bodyFraming('GET', h(200, { 'content-length': '-1' })), formatError(/bad Content-Length/));
    assert.throws(() => bodyFraming('GET', h(200, { 'content-length': '1, 1' })), formatError(/bad Content-Length/));
  });
});

describe('ChunkedDecoder', () => {
  const wire = head('5;ext=1\nhello\n0A\n, chunked!\n0\nX-Trailer: t\n\n');
  const decode = (pieces: Buffer[]) => {
    const d = new ChunkedDecoder();
    const out: Buffer[] = [];
    for (const p of pieces) d.feed(p, (b) => out.push(Buffer.from(b)));
    return { text: Buffer.concat(out).toString(), done: d.done };
  };
  test('decodes in one piece and one byte at a time; extensions ignored, trailers skipped', () => {
    assert.deepEqual(decode([wire]), { text: 'hello, chunked!', done: true });
    assert.deepEqual(decode([...wire].map((b) => Buffer.from([b]))), { text: 'hello, chunked!', done: true });
  });
  test('refused: a bad size, data without its CRLF, a bare LF, bytes after the last chunk', () => {
    assert.throws(() => decode([head('zz\n')]), formatError(/bad chunk size/));
    assert.throws(() => decode([head('3\nabcX\n')]), formatError(/not followed by CRLF/));
    assert.throws(() => decode([Buffer.from('3\nabc\r\n', 'latin1')]), formatError(/bare LF/));
    assert.throws(() => decode([head('0\n\nmore')]), formatError(/after the last chunk/));
    assert.throws(() => decode([head('1' + '0'.repeat(13) + '\n')]), formatError(/bad chunk size/));
  });
});

describe('requestHead', () => {
  test('host from the URL, the given headers once each, Connection: close', () => {
    const text = requestHead({ method: 'GET', url: new URL('http://[::1]:5000/v2/a/blobs/x?y=1'), headers: { 'user-agent': 'molt', Host: 'evil', Authorization: 'Bearer t' } });
    assert.equal(text, 'GET /v2/a/blobs/x?y=1 HTTP/1.1\r\nhost: [::1]:5000\r\nuser-agent: molt\r\nAuthorization: Bearer t\r\nconnection: close\r\n\r\n');
  });
  test('a value that would split the head (a hostile token endpoint) is refused', () => {
    assert.throws(
      () => requestHead({ method: 'GET', url: new URL('http://h/'), headers: { authorization: 'Bearer x\r\nX-Evil: 1' } }),
      updateError('bad-input', /refusing header "authorization"/),
    );
  });
});

describe('ReadSlabs', () => {
  test('a region is never given out again while a piece of it is held, and slabs are reused', () => {
    const slabs = new ReadSlabs(1000, 300, 16);
    const held: Buffer[] = [];
    const memories = new Set<ArrayBufferLike>();
    let seed = 7;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    for (let i = 0; i < 5000; i++) {
      const region = slabs.nextRegion();
      memories.add(region.buffer);
      for (const h of held) {
        const overlap = h.buffer === region.buffer && h.byteOffset < region.byteOffset + region.length && region.byteOffset < h.byteOffset + h.length;
        assert.equal(overlap, false, `read region overlaps a held piece at step ${i}`);
      }
      const n = 1 + rand(region.length);
      slabs.landed(region, n);
      // Cut up to three pieces, as chunked framing may; hold up to 16, released in a loose order.
      let off = 0;
      for (let k = rand(3); k >= 0 && off < n; k--) {
        const len = 1 + rand(n - off);
        const piece = region.subarray(off, off + len);
        off += len;
        slabs.hold(piece);
        held.push(piece);
      }
      while (held.length > 0 && (held.length > 16 || rand(3) === 0)) slabs.release(held.splice(rand(Math.min(held.length, 4)), 1)[0]!);
    }
    // Over 2,000 slab switches; the same few slabs come back.
    assert.ok(memories.size <= 30, `${memories.size} distinct slabs for 5000 reads`);
  });
  test('a read that lands outside the region just given out is an internal error', () => {
    const slabs = new ReadSlabs(1000);
    slabs.nextRegion();
    assert.throws(() => slabs.landed(Buffer.alloc(10), 5), /outside the region/);
  });
});

/** Read a body as a slow consumer that scribbles over each chunk once it has used it. */
async function consume(res: Http1Response, opts: { slow?: boolean } = {}): Promise<{ bytes: Buffer; memories: number }> {
  const copies: Buffer[] = [];
  const memories = new Set<ArrayBufferLike>();
  let i = 0;
  for await (const chunk of res.body) {
    copies.push(Buffer.from(chunk));
    memories.add(chunk.buffer);
    if (opts.slow && i++ % 7 === 0) await new Promise((r) => setTimeout(r, 1));
    chunk.fill(0xee);
  }
  return { bytes: Buffer.concat(copies), memories: memories.size };
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

const REQ = { method: 'GET' as const, headers: { 'user-agent': 'molt-test' }, timeoutMs: 5000, idleMs: 5000 };

describe('sendHttp1 against loopback servers', () => {
  const big = payload(8 * 1024 * 1024 + 12_345);
  let plain: http.Server;
  let secure: tls.Server;
  let raw: net.Server;
  let plainPort = 0;
  let securePort = 0;
  let rawPort = 0;
  /** What the raw server answers, by request path. */
  const rawAnswers = new Map<string, (s: net.Socket) => void>();
  const sockets = new Set<net.Socket>();

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.url === '/length') {
      res.writeHead(200, { 'content-length': String(big.length) });
      res.end(big);
    } else if (req.url === '/chunked') {
      // Chunks of uneven sizes, so chunk boundaries fall anywhere in a read.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      let off = 0;
      let k = 0;
      const step = () => {
        while (off < big.length) {
          const n = Math.min(big.length - off, 1 + ((k++ * 7919) % 70_000));
          const ok = res.write(big.subarray(off, off + n));
          off += n;
          if (!ok) return void res.once('drain', step);
        }
        res.end();
      };
      step();
    } else if (req.url === '/headers') {
      res.writeHead(200, { 'content-length': '0', 'x-seen-ua': String(req.headers['user-agent']), 'x-seen-connection': String(req.headers.connection) });
      res.end();
    } else {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"BLOB_UNKNOWN"}]}');
    }
  };

  before(async () => {
    plain = http.createServer(handler);
    secure = tls.createServer({ key: KEY, cert: CERT }, (s) => http.createServer(handler).emit('connection', s));
    raw = net.createServer((s) => {
      s.once('data', (d) => {
        const path = /^GET (\S+)/.exec(d.toString('latin1'))?.[1] ?? '';
        const answer = rawAnswers.get(path);
        if (answer) answer(s);
        else s.destroy();
      });
    });
    for (const srv of [plain, secure, raw] as net.Server[]) srv.on('connection', (s: net.Socket) => (sockets.add(s), s.on('close', () => sockets.delete(s))));
    secure.on('secureConnection', (s: net.Socket) => (sockets.add(s), s.on('close', () => sockets.delete(s))));
    plainPort = await listen(plain);
    securePort = await listen(secure);
    rawPort = await listen(raw);
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all([plain, secure, raw].map((s) => new Promise((r) => (s as net.Server).close(r))));
  });

  test('a Content-Length body arrives intact through a handful of reused buffers', async () => {
    const res = await sendHttp1({ ...REQ, url: new URL(`http://127.0.0.1:${plainPort}/length`) });
    assert.equal(res.status, 200);
    const { bytes, memories } = await consume(res, { slow: true });
    assert.equal(sha(bytes), sha(big));
    // Reads of at most 256 KiB, so 33 or more; the buffers are the read-ahead's worth (512 KiB) and a few spares.
    assert.ok(memories <= 8, `${memories} buffers for ${big.length} bytes`);
    assert.equal(res.body.readableEnded, true);
  });

  test('a chunked body with boundaries anywhere, read through tiny buffers, arrives intact', async () => {
    const res = await sendHttp1({ ...REQ, url: new URL(`http://127.0.0.1:${plainPort}/chunked`), bufferBytes: 4096 });
    const { bytes } = await consume(res, { slow: true });
    assert.equal(sha(bytes), sha(big));
  });

  test('over TLS (which keeps delivering after a pause) a slow consumer still gets every byte right', async () => {
    for (const path of ['/length', '/chunked']) {
      const res = await sendHttp1({ ...REQ, url: new URL(`https://localhost:${securePort}${path}`), ca: CERT });
      const { bytes } = await consume(res, { slow: true });
      assert.equal(sha(bytes), sha(big), path);
    }
  });

  test('TLS checks the certificate: an untrusted one is a network error', async () => {
    await assert.rejects(sendHttp1({ ...REQ, url: new URL(`https://localhost:${securePort}/length`) }), updateError('network', /SELF_SIGNED|CERT|certificate/i));
  });

  test('sends our headers once, with Connection: close', async () => {
    const res = await sendHttp1({ ...REQ, url: new URL(`http://127.0.0.1:${plainPort}/headers`) });
    assert.equal(res.headers['x-seen-ua'], 'molt-test');
    assert.equal(res.headers['x-seen-connection'], 'close');
    assert.deepEqual((await consume(res)).bytes.length, 0);
  });

  test('through send(reuseBuffer): an error body is read whole by readBody (chunks copied)', async () => {
    const res = await send({ method: 'GET', url: new URL(`http://127.0.0.1:${plainPort}/missing`), reuseBuffer: true, timeoutMs: 5000, idleMs: 5000 });
    assert.equal(res.status, 404);
    assert.equal((await readBody(res, 1024, 'error body')).toString(), '{"errors":[{"code":"BLOB_UNKNOWN"}]}');
  });

  test('a body read until the connection closes, after an interim 100 answer', async () => {
    rawAnswers.set('/close', (s) => {
      s.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nContent-Type: x\r\n\r\n');
      s.end(big.subarray(0, 300_000));
    });
    const res = await sendHttp1({ ...REQ, url: new URL(`http://127.0.0.1:${rawPort}/close`), bufferBytes: 8192 });
    assert.equal(res.status, 200);
    assert.equal(sha((await consume(res, { slow: true })).bytes), sha(big.subarray(0, 300_000)));
  });

  test('a body cut short of its Content-Length is a network error, not a short success', async () => {
    rawAnswers.set('/cut', (s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n');
      s.end(big.subarray(0, 40_000));
    });
    const res = await sendHttp1({ ...REQ, url: new URL(`http://127.0.0.1:${rawPort}/cut`) });
    await assert.rejects(consume(res), updateError('network', /closed mid-body/));
  });

  test('a chunked body cut before its last chunk is a network error', async () => {
    rawAnswers.set('/cut-chunked', (s) => {
      s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    });
    const res = await sendHttp1({ ...REQ, url: new URL(`http://127.0.0.1:${rawPort}/cut-chunked`) });
    await assert.rejects(consume(res), updateError('network', /closed mid-body/));
  });

  test('a malformed answer is a network error naming the problem', async () => {
    rawAnswers.set('/garbage', (s) => s.end('SSH-2.0-OpenSSH\r\n\r\n'));
    await assert.rejects(sendHttp1({ ...REQ, url: new URL(`http://127.0.0.1:${rawPort}/garbage`) }), updateError('network', /malformed response: bad status line/));
    rawAnswers.set('/smuggle', (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n'));
    await assert.rejects(sendHttp1({ ...REQ, url: new URL(`http://127.0.0.1:${rawPort}/smuggle`) }), updateError('network', /both Transfer-Encoding and Content-Length/));
  });

  test('silence: no head within the deadline, or a body that stalls past the idle time', async () => {
    rawAnswers.set('/mute', () => undefined);
    await assert.rejects(sendHttp1({ ...REQ, url: new URL(`http://127.0.0.1:${rawPort}/mute`), timeoutMs: 300 }), updateError('network', /no response within/));
    rawAnswers.set('/stall', (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
    const res = await sendHttp1({ ...REQ, url: new URL(`http://127.0.0.1:${rawPort}/stall`), idleMs: 300 });
    await assert.rejects(consume(res), updateError('network', /idle/));
  });

  test('the signal aborts a body being read, and a refused connection is a network error', async () => {
    rawAnswers.set('/slow', (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab'));
    const ac = new AbortController();
    const res = await sendHttp1({ ...REQ, url: new URL(`http://127.0.0.1:${rawPort}/slow`), signal: ac.signal });
    const reading = consume(res);
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(reading, updateError('aborted', /aborted/));
    const closed = net.createServer();
    const port = await listen(closed);
    await new Promise((r) => closed.close(r));
    await assert.rejects(sendHttp1({ ...REQ, url: new URL(`http://127.0.0.1:${port}/x`) }), updateError('network', /ECONNREFUSED/));
  });
});
