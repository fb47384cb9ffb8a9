// BLAKE2b-512 on a worker thread (minisign's prehash beside the download's
// SHA-256): the same digest as in-thread whatever the chunking and however the
// caller reuses its buffer, backpressure when every slot of the ring is with the
// worker, reads straight into the ring (no copy) mixed with copied chunks in
// order, and a check abandoned midway ends its worker.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OffThreadBlake2b, SLOTS, SLOT_BYTES } from '../../src/update/trust/offthread.js';
import { fileChunks } from '../../src/update/chunks.js';

describe('OffThreadBlake2b', () => {
  test('the digest of every chunk handed over, in order, from a reused buffer', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const h = new OffThreadBlake2b();
    const reused = Buffer.alloc(100_000);
    for (let off = 0; off < data.length; ) {
      const n = Math.min(data.length - off, 1 + ((off * 7919) % 99_999));
      data.copy(reused, 0, off, off + n);
      const wait = h.update(reused.subarray(0, n));
      if (wait) await wait;
      reused.fill(0xa5); // reused as soon as update() is done with it: the worker must have its own copy
      off += n;
    }
    assert.deepEqual(await h.digest(), createHash('blake2b512').update(data).digest());
    assert.throws(() => h.update(Buffer.from('x')), /after digest or close/);
  });

  test('with every slot of the ring (16 MiB) in flight, update() asks the caller to wait, and the wait ends', async () => {
    const chunk = Buffer.alloc(4 * 1024 * 1024, 1);
    const h = new OffThreadBlake2b();
    let waits = 0;
    const all = createHash('blake2b512');
    for (let i = 0; i < 12; i++) {
      all.update(chunk);
      const wait = h.update(chunk);
      if (wait) {
        waits++;
        await wait;
      }
    }
    assert.ok(waits > 0, 'the caller was asked to wait at least once');
    assert.deepEqual(await h.digest(), all.digest());
  });

  test('small chunks share 1 MiB slots: 40 MiB in 64 KiB chunks cross over in 40 messages, never more than 16 slots', async () => {
    const chunk = randomBytes(64 * 1024);
    const h = new OffThreadBlake2b();
    const all = createHash('blake2b512');
    const posted: number[] = [];
    const post = (h as unknown as { post(slot: number, start: number, len: number): void }).post.bind(h);
    (h as unknown as { post: typeof post }).post = (slot, start, len) => {
      posted.push(slot);
      post(slot, start, len);
    };
    for (let i = 0; i < 640; i++) {
      all.update(chunk);
      const wait = h.update(chunk);
      if (wait) await wait;
    }
    assert.deepEqual(await h.digest(), all.digest());
    assert.equal(posted.length, 40);
    assert.ok(posted.every((s) => s >= 0 && s < SLOTS), `slots ${[...new Set(posted)].join(',')}`);
  });

  test('a file read straight into the ring (fileChunks with readBuffer) hashes right, copies nothing, and keeps order with copied chunks', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-offthread-'));
    try {
      const data = randomBytes(SLOTS * SLOT_BYTES * 2 + 12345); // more than the ring holds: slots come back and are read into again
      const file = path.join(dir, 'blob');
      fs.writeFileSync(file, data);
      const h = new OffThreadBlake2b();
      const head = randomBytes(1000); // copied (not a ring view), must come first
      const all = createHash('blake2b512').update(head).update(data);
      const before = h.update(head);
      if (before) await before;
      const ring = new Set<ArrayBufferLike>();
      let views = 0;
      for await (const chunk of fileChunks(file, { buffer: () => h.readBuffer() })) {
        ring.add(chunk.buffer);
        views++;
        const wait = h.update(chunk);
        assert.equal(wait, undefined, 'a view of the ring is posted as it is: nothing to wait for');
      }
      assert.deepEqual(await h.digest(), all.digest());
      assert.equal(ring.size, 1, 'every chunk a view of one shared ring');
      assert.ok([...ring][0] instanceof SharedArrayBuffer);
      assert.equal(views, Math.ceil(data.length / SLOT_BYTES));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('closed midway (a failed download): digest no more, no hang', () => {
    const h = new OffThreadBlake2b();
    h.update(Buffer.alloc(1024));
    h.close();
    h.close();
    assert.throws(() => h.update(Buffer.alloc(1)), /after digest or close/);
  });
});
