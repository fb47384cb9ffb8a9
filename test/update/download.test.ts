// Verified streaming downloads: a file reaches its final name only when its
// digest and size match, every failure leaves no .part behind, memory stays
// flat for a 200 MB body, and a full disk is a clear 'disk-full'.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { execFileSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { downloadVerified, ensureFreeSpace, sha256File } from '../../src/update/download.js';
import { extractArchive } from '../../src/update/extract.js';
import { UpdateError } from '../../src/update/types.js';
import { tarBytes } from './fixtures-local/tarbuild.js';

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-download-'));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const payload = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256));

function chunks(buf: Buffer, size = 16_384): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size));
  return Readable.from(parts);
}

/** Nothing but `keep` in the directory: no .part, no half file. */
function assertOnly(d: string, keep: string[] = []): void {
  assert.deepEqual(fs.readdirSync(d).sort(), [...keep].sort());
}

function fresh(): string {
  return fs.mkdtempSync(path.join(dir, 'case-'));
}

/** A loopback HTTP server; `handler` decides how each response misbehaves. */
async function server(handler: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const srv = http.createServer(handler);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  };
}

function get(url: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, resolve);
    req.setTimeout(10_000, () => req.destroy(new Error('test request timeout')));
    req.on('error', reject);
  });
}

async function rejectsWith(p: Promise<unknown>, code: UpdateError['code'], re?: RegExp): Promise<UpdateError> {
  let caught: unknown;
  await p.catch((e) => (caught = e));
  assert.ok(caught instanceof UpdateError, `expected UpdateError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (re) assert.match(caught.message, re);
  return caught;
}

describe('downloadVerified', () => {
  test('a body with the right digest and size lands at dest, fsynced and renamed', async () => {
    const d = fresh();
    const dest = path.join(d, 'blob');
    const seen: number[] = [];
    const r = await downloadVerified({ body: chunks(payload), dest, expectedDigest: sha(payload), expectedSize: payload.length, onProgress: (p) => seen.push(p.bytes) });
    assert.deepEqual(r, { digest: sha(payload), size: payload.length });
    assert.deepEqual(fs.readFileSync(dest), payload);
    assert.equal(seen.at(-1), payload.length);
    assertOnly(d, ['blob']);
  });

  test('uppercase hex in the expected digest is accepted', async () => {
    const d = fresh();
    await downloadVerified({ body: chunks(payload), dest: path.join(d, 'b'), expectedDigest: sha(payload).toUpperCase().replace('SHA256', 'sha256') });
    assertOnly(d, ['b']);
  });

  test('a wrong digest (corrupted in transit) is refused and leaves nothing', async () => {
    const d = fresh();
    const bad = Buffer.from(payload);
    bad[123_456] = (bad[123_456] as number) ^ 1;
    const e = await rejectsWith(downloadVerified({ body: chunks(bad), dest: path.join(d, 'blob'), expectedDigest: sha(payload) }), 'integrity', /digest mismatch for blob/);
    assert.ok(e.message.includes(sha(payload)) && e.message.includes(sha(bad)), 'both digests in the message');
    assertOnly(d);
  });

  test('a failed download never replaces an existing good file at dest', async () => {
    const d = fresh();
    const dest = path.join(d, 'blob');
    fs.writeFileSync(dest, 'previous good content');
    await rejectsWith(downloadVerified({ body: chunks(Buffer.from('evil')), dest, expectedDigest: sha(payload) }), 'integrity');
    assert.equal(fs.readFileSync(dest, 'utf8'), 'previous good content');
    assertOnly(d, ['blob']);
  });

  test('a truncated body (fewer bytes than expected) is refused', async () => {
    const d = fresh();
    await rejectsWith(downloadVerified({ body: chunks(payload.subarray(0, 200_000)), dest: path.join(d, 'blob'), expectedSize: payload.length }), 'integrity', /truncated: got 200000 of 300000/);
    assertOnly(d);
  });

  test('a body longer than expected is refused as soon as it overflows', async () => {
    const d = fresh();
    await rejectsWith(downloadVerified({ body: chunks(payload), dest: path.join(d, 'blob'), expectedSize: 1000 }), 'integrity', /longer than the expected 1000/);
    assertOnly(d);
  });

  test('maxBytes stops an endless body', async () => {
    const d = fresh();
    async function* endless() {
      const c = Buffer.alloc(65_536, 1);
      for (let i = 0; i < 1_000_000; i++) yield c; // bounded, but far past the limit
    }
    await rejectsWith(downloadVerified({ body: endless(), dest: path.join(d, 'blob'), maxBytes: 1_000_000 }), 'hostile-archive', /exceeds the limit of 1000000/);
    assertOnly(d);
  });

  test('a stale .part from an interrupted run is restarted cleanly', async () => {
    const d = fresh();
    const dest = path.join(d, 'blob');
    fs.writeFileSync(dest + '.part', Buffer.alloc(500_000, 9));
    await downloadVerified({ body: chunks(payload), dest, expectedDigest: sha(payload) });
    assert.deepEqual(fs.readFileSync(dest), payload);
    assertOnly(d, ['blob']);
  });

  test('connection reset mid-body (real loopback server) is a network error with no debris', async () => {
    const d = fresh();
    const s = await server((_req, res) => {
      res.writeHead(200, { 'content-length': String(payload.length) });
      res.write(payload.subarray(0, 100_000), () => setTimeout(() => res.socket?.destroy(), 20));
    });
    try {
      const body = await get(s.url);
      await rejectsWith(downloadVerified({ body, dest: path.join(d, 'blob'), expectedSize: payload.length }), 'network', /interrupted after \d+ bytes/);
      assertOnly(d);
    } finally {
      await s.close();
    }
  });

  test('abort midway through a stalled HTTP body ends at once with no debris', async () => {
    const d = fresh();
    const s = await server((_req, res) => {
      res.writeHead(200, { 'content-length': String(payload.length) });
      res.write(payload.subarray(0, 50_000)); // then nothing: a hanging server
    });
    try {
      const body = await get(s.url);
      const ac = new AbortController();
      const p = downloadVerified({
        body,
        dest: path.join(d, 'blob'),
        signal: ac.signal,
        onProgress: (pr) => {
          if (pr.bytes >= 50_000) setTimeout(() => ac.abort(new Error('operator gave up')), 50);
        },
      });
      await rejectsWith(p, 'aborted', /aborted: operator gave up/);
      assertOnly(d);
      assert.ok(body.destroyed, 'the response stream was released');
    } finally {
      await s.close();
    }
  });

  test('abort also ends a plain async iterable that never yields again', async () => {
    const d = fresh();
    async function* stalls() {
      yield Buffer.from('first');
      await new Promise(() => undefined); // never resolves
    }
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    await rejectsWith(downloadVerified({ body: stalls(), dest: path.join(d, 'blob'), signal: ac.signal }), 'aborted');
    assertOnly(d);
  });

  test('a 200 MB body streams through with flat memory', async (t) => {
    const d = fresh();
    const total = 200 * 1024 * 1024;
    const block = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < block.length; i++) block[i] = (i * 31) % 251;
    const expect = createHash('sha256');
    for (let i = 0; i < total / block.length; i++) expect.update(block);
    const s = await server((_req, res) => {
      res.writeHead(200, { 'content-length': String(total) });
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          sent += block.length;
          if (!res.write(block)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    try {
      const base = process.memoryUsage().rss;
      let peak = base;
      const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
      const body = await get(s.url);
      const r = await downloadVerified({ body, dest: path.join(d, 'big'), expectedDigest: 'sha256:' + expect.digest('hex'), expectedSize: total });
      clearInterval(timer);
      peak = Math.max(peak, process.memoryUsage().rss);
      const growthMb = (peak - base) / 1024 / 1024;
      t.diagnostic(`rss growth while streaming 200 MB: ${growthMb.toFixed(1)} MB (base ${(base / 1048576).toFixed(1)} MB)`);
      assert.equal(r.size, total);
      assert.ok(growthMb < 64, `RSS grew by ${growthMb.toFixed(1)} MB`);
    } finally {
      await s.close();
      fs.rmSync(path.join(d, 'big'), { force: true });
    }
  });
});

describe('sha256File', () => {
  test('hashes a file by streaming it', async () => {
    const f = path.join(fresh(), 'f');
    fs.writeFileSync(f, payload);
    assert.equal(await sha256File(f), sha(payload));
  });
});

describe('disk full (a real 2 MiB tmpfs)', () => {
  let mnt: string;
  before(() => {
    mnt = fs.mkdtempSync(path.join(dir, 'tmpfs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
  });
  after(() => {
    execFileSync('umount', [mnt]);
  });

  test('ensureFreeSpace refuses a need larger than the free space, naming dir, need and free', async () => {
    const e = await rejectsWith(ensureFreeSpace(mnt, 3 * 1024 * 1024), 'disk-full');
    assert.ok(e.message.includes(mnt), e.message);
    assert.match(e.message, /need 3145728 bytes, \d+ free/);
    const free = Number(/(\d+) free/.exec(e.message)?.[1]);
    assert.ok(free > 1_500_000 && free <= 2 * 1024 * 1024, `free=${free}`);
    await ensureFreeSpace(mnt, 512 * 1024); // fits: no throw
    await ensureFreeSpace(path.join(mnt, 'not/yet/created'), 512 * 1024); // checks the nearest existing parent
  });

  test('a download that fills the disk fails with disk-full and leaves no partial file', async () => {
    const d = fs.mkdtempSync(path.join(mnt, 'dl-'));
    const four = Buffer.alloc(4 * 1024 * 1024, 3);
    const e = await rejectsWith(downloadVerified({ body: chunks(four, 65_536), dest: path.join(d, 'blob'), expectedDigest: sha(four) }), 'disk-full', /disk full writing .*blob after \d+ bytes \(ENOSPC\)/);
    assert.ok(e.message.includes(d));
    assertOnly(d);
    // The space came back: a small download still works afterwards.
    await downloadVerified({ body: chunks(payload), dest: path.join(d, 'small'), expectedDigest: sha(payload) });
    assertOnly(d, ['small']);
    fs.rmSync(d, { recursive: true });
  });

  test('an extraction that fills the disk fails with disk-full and removes its directory', async () => {
    const archive = path.join(dir, 'fill.tar');
    fs.writeFileSync(archive, tarBytes([{ name: 'a', body: Buffer.alloc(1024 * 1024, 1) }, { name: 'b', body: Buffer.alloc(2 * 1024 * 1024, 2) }]));
    const dest = path.join(mnt, 'release');
    await rejectsWith(extractArchive(archive, dest), 'disk-full', /disk full extracting fill\.tar .*at entry "b"/);
    assertOnly(mnt);
  });
});
