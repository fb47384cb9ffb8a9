// BLAKE2b-512 of a streaming artifact on another thread. minisign's default
// (prehashed) signature is over BLAKE2b-512 of the file: a second digest of
// every byte beside the download's SHA-256. On the download's thread it would
// add a third to the time of a 200 MB install; on a worker it runs beside the
// download on another core.
//
// The caller reuses its buffer, so each chunk is copied, into a pool of 1 MiB
// slabs that go to the worker and come back (transferred, never cloned): a
// fresh copy per chunk cost the download's thread some 50 ms per 200 MB in
// allocation and page faults, a warm slab about 10; small network chunks
// share a slab (one message per MiB, not per chunk). Past MAX_SLABS with the
// worker, update() returns a promise the download awaits (bounded memory).
import { Worker } from 'node:worker_threads';

const SLAB = 1024 * 1024;
/** Slabs with the worker before the caller is asked to wait: 16 MiB in flight. */
const MAX_SLABS = 16;

// A CommonJS script (eval workers are not modules): one hash, fed in order, digested on 'end'.
const WORKER = `
const { parentPort } = require('node:worker_threads');
const h = require('node:crypto').createHash('blake2b512');
parentPort.on('message', (m) => {
  if (m === 'end') parentPort.postMessage({ digest: h.digest() });
  else { h.update(new Uint8Array(m.buf, 0, m.len)); parentPort.postMessage(m.buf, [m.buf]); }
});
`;

export class OffThreadBlake2b {
  private readonly worker: Worker;
  /** Slabs back from the worker, ready to fill again. */
  private readonly free: ArrayBuffer[] = [];
  /** The slab being filled, and how far. */
  private slab: Uint8Array | undefined;
  private fill = 0;
  /** Slabs with the worker. */
  private outstanding = 0;
  /** Slabs allocated so far: reuse keeps it near MAX_SLABS however long the artifact. */
  slabsAllocated = 0;
  private waiting: (() => void) | undefined;
  private result: ((b: Buffer) => void) | undefined;
  private failure: Error | undefined;
  private fail: ((e: Error) => void) | undefined;
  private closed = false;

  constructor() {
    this.worker = new Worker(WORKER, { eval: true });
    // Never what keeps the updater alive: an abandoned check must not hold the process.
    this.worker.unref();
    this.worker.on('message', (m: ArrayBuffer | { digest: Uint8Array }) => {
      if (m instanceof ArrayBuffer) {
        this.outstanding--;
        if (this.free.length < MAX_SLABS) this.free.push(m);
        if (this.waiting && this.outstanding <= MAX_SLABS / 2) {
          const w = this.waiting;
          this.waiting = undefined;
          w();
        }
      } else {
        this.result?.(Buffer.from(m.digest));
      }
    });
    this.worker.on('error', (e) => {
      this.failure = e;
      this.fail?.(e);
      this.waiting?.();
    });
  }

  /** Copy `chunk` into the slabs (done when this returns); a promise when the worker is MAX_SLABS behind. */
  update(chunk: Uint8Array): Promise<void> | undefined {
    if (this.closed) throw new Error('OffThreadBlake2b: update after digest or close');
    if (this.failure) throw this.failure;
    for (let off = 0; off < chunk.length; ) {
      this.slab ??= new Uint8Array(this.free.pop() ?? this.allocate());
      const n = Math.min(SLAB - this.fill, chunk.length - off);
      this.slab.set(chunk.subarray(off, off + n), this.fill);
      this.fill += n;
      off += n;
      if (this.fill === SLAB) this.post();
    }
    if (this.outstanding < MAX_SLABS) return undefined;
    return new Promise((resolve) => (this.waiting = resolve));
  }

  private allocate(): ArrayBuffer {
    this.slabsAllocated++;
    return new ArrayBuffer(SLAB);
  }

  /** Hand the current slab to the worker (its buffer moves there: no copy). */
  private post(): void {
    const buf = this.slab!.buffer as ArrayBuffer;
    this.worker.postMessage({ buf, len: this.fill }, [buf]);
    this.slab = undefined;
    this.fill = 0;
    this.outstanding++;
  }

  /** The digest of everything handed over; the worker ends. */
  async digest(): Promise<Buffer> {
    if (this.failure) throw this.failure;
    const out = new Promise<Buffer>((resolve, reject) => {
      this.result = resolve;
      this.fail = reject;
    });
    if (this.fill > 0) this.post();
    this.worker.postMessage('end');
    try {
      return await out;
    } finally {
      this.close();
    }
  }

  /** End the worker (a download that failed midway); idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.slab = undefined;
    this.free.length = 0;
    void this.worker.terminate();
  }
}
