// BLAKE2b-512 on a worker thread (minisign's prehash beside the download's
// SHA-256): the same digest as in-thread whatever the chunking and however the
// caller reuses its buffer, backpressure past the high-water mark, slabs
// reused, and a check abandoned midway ends its worker.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { OffThreadBlake2b } from '../../src/update/trust/offthread.js';

describe('OffThreadBlake2b', () => {
  test('the digest of every chunk handed over, in order, from a reused buffer', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const h = new OffThreadBlake2b();
    const reused = Buffer.alloc(100_000);
    for (let off = 0; off < data.length; ) {
      const n = Math.min(data.length - off, 1 + ((off * 7919) % 99_999));
      data.copy(reused, 0, off, off + n);
      const wait = h.update(reused.subarray(0, n));
      reused.fill(0xa5); // reused at once: the worker must have its own copy
      if (wait) await wait;
      off += n;
    }
    assert.deepEqual(await h.digest(), createHash('blake2b512').update(data).digest());
    assert.throws(() => h.update(Buffer.from('x')), /after digest or close/);
  });

  test('past 16 MiB in flight update() asks the caller to wait, and the wait ends', async () => {
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

  test('small chunks share 1 MiB slabs that come back and are filled again: 40 MiB need at most 18', async () => {
    const chunk = randomBytes(64 * 1024);
    const h = new OffThreadBlake2b();
    const all = createHash('blake2b512');
    for (let i = 0; i < 640; i++) {
      all.update(chunk);
      const wait = h.update(chunk);
      if (wait) await wait;
    }
    assert.deepEqual(await h.digest(), all.digest());
    assert.ok(h.slabsAllocated <= 18, `${h.slabsAllocated} slabs allocated for 40 MiB`);
  });

  test('closed midway (a failed download): digest no more, no hang', () => {
    const h = new OffThreadBlake2b();
    h.update(Buffer.alloc(1024));
    h.close();
    h.close();
    assert.throws(() => h.update(Buffer.alloc(1)), /after digest or close/);
  });
});
