// chunks.ts and its consumers: archive bytes through reused buffers. Every reader here gets
// chunks that are scribbled over as soon as the next one is asked for, so a consumer that
// keeps a view past that point (the tar reader across a header split, the downloader between
// hashing and writing) reads garbage and the test fails. The in-place inflater must give
// zlib's bytes and zlib's errors, and must be the one in use on this Node.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import { fileChunks, gunzipChunks, inflaterKind } from '../../src/update/chunks.js';
import { readTar, type TarEntry } from '../../src/update/tarstream.js';
import { downloadVerified } from '../../src/update/download.js';
import { extractArchive } from '../../src/update/extract.js';
import { tarBytes, type RawEntry } from './fixtures-local/tarbuild.js';

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-chunks-'));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function noise(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}
/** Compressible: words from a small vocabulary. */
function words(n: number): Buffer {
  const vocab = ['alpha', 'beta', 'gamma', 'delta', 'molt', 'init', 'tar', 'blob', '\n'];
  let s = '';
  for (let i = 0; s.length < n; i++) s += vocab[(i * 7 + (i >>> 3)) % vocab.length] + ' ';
  return Buffer.from(s.slice(0, n));
}

/**
 * Chunks of `data` in uneven sizes, all in ONE buffer that is overwritten with 0xEE when the
 * next chunk is asked for: the contract of fileChunks/gunzipChunks/http1 bodies, made strict.
 */
async function* reusing(data: Buffer, sizes = [1, 511, 513, 7000, 100_000, 3]): AsyncGenerator<Buffer> {
  const buf = Buffer.allocUnsafe(Math.max(...sizes));
  let off = 0;
  for (let k = 0; off < data.length; k++) {
    const n = Math.min(sizes[k % sizes.length]!, data.length - off);
    data.copy(buf, 0, off, off + n);
    off += n;
    yield buf.subarray(0, n);
    buf.fill(0xee);
  }
}

async function collect(it: AsyncIterable<Buffer>): Promise<{ bytes: Buffer; memories: number }> {
  const out: Buffer[] = [];
  const memories = new Set<ArrayBufferLike>();
  for await (const c of it) {
    out.push(Buffer.from(c));
    memories.add(c.buffer);
  }
  return { bytes: Buffer.concat(out), memories: memories.size };
}

describe('gunzipChunks', () => {
  const plain = Buffer.concat([noise(300_000, 1), words(700_000)]);
  const gz = zlib.gzipSync(plain, { level: 6 });

  test('on this Node the in-place inflater is used (no fresh Buffer per chunk)', () => {
    assert.equal(inflaterKind(), 'in-place');
  });

  for (const forceStream of [false, true]) {
    const kind = forceStream ? 'stream fallback' : 'in-place';
    test(`${kind}: the same bytes as zlib.gunzipSync, from reused input into reused output`, async () => {
      const { bytes, memories } = await collect(gunzipChunks(reusing(gz), { bufferBytes: 4096, forceStream }));
      assert.equal(sha(bytes), sha(plain));
      if (!forceStream) assert.equal(memories, 1, 'every output chunk is a view of one buffer');
    });
    test(`${kind}: concatenated members are one stream; zero padding after the end is ignored`, async () => {
      const two = Buffer.concat([zlib.gzipSync(plain.subarray(0, 1000)), zlib.gzipSync(plain.subarray(1000, 5000)), Buffer.alloc(600)]);
      const { bytes } = await collect(gunzipChunks(reusing(two), { bufferBytes: 777, forceStream }));
      assert.equal(sha(bytes), sha(plain.subarray(0, 5000)));
    });
    test(`${kind}: damage is zlib's error: a cut stream, a bad CRC, garbage after the end, not gzip at all`, async () => {
      const isZ = (re: RegExp) => (e: unknown) => typeof (e as NodeJS.ErrnoException).code === 'string' && (e as NodeJS.ErrnoException).code!.startsWith('Z_') && re.test((e as Error).message);
      await assert.rejects(collect(gunzipChunks(reusing(gz.subarray(0, gz.length - 100)), { forceStream })), isZ(/unexpected end of file/));
      const badCrc = Buffer.from(gz);
      badCrc[badCrc.length - 6]! ^= 0xff;
      await assert.rejects(collect(gunzipChunks(reusing(badCrc), { forceStream })), isZ(/incorrect data check/));
      await assert.rejects(collect(gunzipChunks(reusing(Buffer.concat([gz, Buffer.from('trailing junk')])), { forceStream })), isZ(/incorrect header check/));
      await assert.rejects(collect(gunzipChunks(reusing(Buffer.from('plainly not gzip, just text')), { forceStream })), isZ(/incorrect header check/));
    });
  }
});

describe('fileChunks', () => {
  test('a file read through one buffer, in order', async () => {
    const data = noise(1_000_003, 9);
    const f = path.join(dir, 'file');
    fs.writeFileSync(f, data);
    const { bytes, memories } = await collect(fileChunks(f, { bufferBytes: 65_536 }));
    assert.equal(sha(bytes), sha(data));
    assert.equal(memories, 1);
  });
});

describe('consumers of reused chunks', () => {
  const entries: RawEntry[] = [
    { name: 'a/', type: '5' },
    { name: 'a/one', body: noise(5000, 2) },
    // A pax header (its body is read whole) and a long name: both cross chunk boundaries.
    { name: 'a/long', body: words(1025), pax: { path: 'a/' + 'n'.repeat(150) } },
    { name: 'a/empty', body: '' },
    { name: 'a/two', body: noise(70_001, 3) },
  ];
  const tar = tarBytes(entries);

  test('readTar: headers split across chunks are copied before the next chunk replaces them', async () => {
    const seen: { e: TarEntry; hash: string }[] = [];
    await readTar(reusing(tar), {
      async onEntry(e, body) {
        const parts: Buffer[] = [];
        for await (const c of body) parts.push(Buffer.from(c));
        seen.push({ e, hash: sha(Buffer.concat(parts)) });
      },
    });
    assert.deepEqual(
      seen.map((s) => [s.e.name, s.e.size]),
      entries.map((e) => [e.pax?.path ?? e.name, typeof e.body === 'string' ? Buffer.byteLength(e.body) : (e.body?.length ?? 0)]),
    );
    for (const [i, e] of entries.entries()) if (Buffer.isBuffer(e.body)) assert.equal(seen[i]!.hash, sha(e.body), e.name);
  });

  test('downloadVerified: each chunk is hashed and written before the next is asked for', async () => {
    const data = noise(600_001, 4);
    const dest = path.join(dir, 'blob');
    const r = await downloadVerified({ body: reusing(data), dest, expectedDigest: 'sha256:' + sha(data), expectedSize: data.length });
    assert.equal(r.size, data.length);
    assert.equal(sha(fs.readFileSync(dest)), sha(data));
  });

  test('extractArchive of a .tar.gz: every file as packed (file read and inflate through reused buffers)', async () => {
    const f = path.join(dir, 'r.tar.gz');
    fs.writeFileSync(f, zlib.gzipSync(tar));
    const out = path.join(dir, 'x');
    await extractArchive(f, out);
    for (const e of entries) if (Buffer.isBuffer(e.body)) assert.equal(sha(fs.readFileSync(path.join(out, e.pax?.path ?? e.name))), sha(e.body), e.name);
    assert.equal(fs.readFileSync(path.join(out, 'a/empty')).length, 0);
  });
});
